"""deploy.ipynb run headless by papermill, and run_batch: parallel processes, one failing entry, no token anywhere."""
import json
from pathlib import Path

import pytest

from conftest import TOKENS
from voxtral_deploy.testing import assert_no_secrets

CANARY = "hf_FakeCanaryToken0000000000000000099"


@pytest.fixture
def canary_hub(tmp_path):
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path / "hub", tokens={**TOKENS, CANARY: {"user": "carol", "role": "write"}}) as h:
        yield h


def _scan(root: Path, *texts):
    "The canary is in no file under `root` (except the token file itself and the hub's storage) and in none of `texts`."
    keep_out = lambda p: p.name == "canary-token" or p.relative_to(root).parts[:1] == ("hub",)
    assert_no_secrets(root, *texts, secrets=[CANARY], ignore=keep_out)


def _audiofolder(root: Path, texts=("one two", "three", "four five six")) -> Path:
    "A small eval set in the audiofolder layout."
    from voxtral_deploy.testing import make_eval_audiofolder
    return make_eval_audiofolder(root, texts)


def _outputs(nb: dict) -> str:
    out = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            out.append(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", [])))
            for v in (o.get("data") or {}).values(): out.append(v if isinstance(v, str) else "".join(v))
    return "\n".join(out)


def test_notebook_parameters_cell():
    import nbformat
    from voxtral_deploy.batch import notebook_path
    nb = nbformat.read(notebook_path(), as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and first.metadata.get("tags") == ["parameters"]
    names = [l.split(":")[0] for l in first.source.splitlines() if l.strip()]
    assert {"model_dir", "repo_id", "endpoint", "token_file", "config_file", "eval_dataset", "eval_split", "eval_max_samples"} <= set(names)
    assert not any("token" == n or n.endswith("_token") for n in names)  # never a token parameter
    for line in first.source.splitlines():  # literal-only `name: type = default  # help`
        assert " = " in line and "  # " in line, line
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.space
def test_papermill_end_to_end(canary_hub, tiny_model_dir, training_fixtures, tmp_path, capfd):
    import papermill as pm
    from voxtral_deploy.batch import notebook_path
    from huggingface_hub import HfApi
    tok = tmp_path / "canary-token"; tok.write_text(CANARY + "\n")
    out = tmp_path / "report" / "deploy-out.ipynb"; out.parent.mkdir()
    pm.execute_notebook(str(notebook_path()), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                        parameters=dict(model_dir=str(tiny_model_dir), repo_id="voxtral-pm", endpoint=canary_hub.endpoint,
                                        token_file=str(tok), training_config=str(training_fixtures["training_config"]),
                                        results=str(training_fixtures["trainer_state"]), model_name="Voxtral papermill",
                                        languages="fr", record_dir=str(tmp_path / "report" / "records"), timeout=300.0,
                                        eval_dataset=str(_audiofolder(tmp_path / "digits")), eval_max_samples=2))
    nb = json.loads(out.read_text())
    text = _outputs(nb)
    assert "model.safetensors" in text                            # the inspection summary
    assert "signed in as carol" in text or "'user': 'carol'" in text
    assert "pipeline_tag: automatic-speech-recognition" in text or "Voxtral papermill" in text  # the card
    assert "carol/voxtral-pm" in text and "RUNNING" in text      # publish and Space results
    assert "deployment ok" in text                                 # the record
    assert "| fine-tuned |" in text and "evaluation: WER" in text  # the evaluate step's table, and the record's line
    recs = list((tmp_path / "report" / "records").glob("*.json"))
    assert len(recs) == 1
    rec = json.loads(recs[0].read_text())
    assert rec["status"] == "ok" and rec["space"]["stage"] == "RUNNING"
    assert rec["evaluation"]["dataset"]["num_samples"] == 2 and rec["evaluation"]["wer"] >= 0  # eval_max_samples=2 of 3
    assert "eval_results.json" in HfApi(endpoint=canary_hub.endpoint, token=CANARY).list_repo_files("carol/voxtral-pm")
    assert HfApi(endpoint=canary_hub.endpoint, token=CANARY).model_info("carol/voxtral-pm").sha == rec["model"]["commit"]
    captured = capfd.readouterr()
    _scan(tmp_path, captured.out, captured.err)


@pytest.mark.slow
def test_papermill_failure_is_readable(canary_hub, tmp_path):
    import papermill as pm
    from voxtral_deploy.batch import notebook_path
    tok = tmp_path / "canary-token"; tok.write_text(CANARY + "\n")
    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError) as ei:
        pm.execute_notebook(str(notebook_path()), str(out), kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                            parameters=dict(model_dir=str(tmp_path / "missing"), repo_id="x", endpoint=canary_hub.endpoint,
                                            token_file=str(tok), record_dir=str(tmp_path / "records")))
    assert "does not exist" in str(ei.value.evalue)
    # a model folder that does not exist gets no deployment record (nothing was deployed; issue 14)
    assert not list((tmp_path / "records").glob("*.json"))
    _scan(tmp_path, str(ei.value))


@pytest.mark.slow
def test_batch_three_entries_one_bad(canary_hub, tiny_model_dir, training_fixtures, tmp_path, monkeypatch, capfd):
    import yaml
    from voxtral_deploy.batch import run_batch
    from huggingface_hub import HfApi
    monkeypatch.setenv("HF_TOKEN", CANARY)   # the kernels inherit it; no entry names a token
    batch = tmp_path / "batch.yaml"
    batch.write_text(yaml.safe_dump({
        "defaults": {"endpoint": canary_hub.endpoint, "space": False, "training_config": str(training_fixtures["training_config"])},
        "deployments": [
            {"name": "first", "model_dir": str(tiny_model_dir), "repo_id": "carol/batch-one"},
            {"name": "broken", "model_dir": str(tmp_path / "no-such-model"), "repo_id": "carol/batch-bad"},
            {"name": "third", "model_dir": str(tiny_model_dir), "repo_id": "carol/batch-three", "metadata": {"name": "Third"}},
        ]}))
    report = run_batch(batch, parallel=2, report_dir=tmp_path / "reports")
    assert not report.ok and report.exit_code == 1
    by = {e.name: e for e in report.entries}
    assert [e.name for e in report.entries] == ["first", "broken", "third"]
    assert by["first"].status == "ok" and by["third"].status == "ok" and by["broken"].status == "failed"
    assert "does not exist" in by["broken"].error
    api = HfApi(endpoint=canary_hub.endpoint, token=CANARY)
    for n in ("first", "third"):
        assert by[n].model_url.endswith(f"carol/batch-{'one' if n == 'first' else 'three'}")
        assert api.model_info(f"carol/batch-{'one' if n == 'first' else 'three'}").sha
        assert Path(by[n].notebook).exists() and Path(by[n].record).exists()
    assert Path(by["broken"].notebook).exists()  # the failing run's notebook is the readable report of what went wrong
    assert not api.repo_exists("carol/batch-bad")
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert summary.count("\n| ") == 4 and "❌ failed" in summary and summary.count("✅ ok") == 2
    assert json.loads((tmp_path / "reports" / "summary.json").read_text())["ok"] is False
    assert "2/3 ok" in report.summary()
    captured = capfd.readouterr()
    _scan(tmp_path, captured.out, captured.err, report.summary(), json.dumps(report.to_dict()))


@pytest.mark.slow
def test_batch_invalid_entry_does_not_stop_others(hub, tiny_model_dir, tmp_path, monkeypatch):
    from voxtral_deploy.batch import run_batch
    from conftest import ALICE_WRITE
    tok = tmp_path / "tok"; tok.write_text(ALICE_WRITE)
    report = run_batch([{"model_dir": str(tiny_model_dir), "repo_id": "alice/ok-one", "endpoint": hub.endpoint,
                         "token_file": str(tok), "space": False},
                        {"model_dir": str(tiny_model_dir), "repo_id": "alice/typo", "endpont": hub.endpoint}],
                       parallel=2, report_dir=tmp_path / "r")
    assert [e.status for e in report.entries] == ["ok", "failed"]
    assert "Unknown deploy config key(s): endpont" in report.entries[1].error
