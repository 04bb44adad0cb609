"""Every `voxtral-deploy` subcommand through a real subprocess, against a local hub served by `voxtral-deploy hub serve`.

Each call asserts what the command printed (one JSON object with --json; one line on stderr for errors)
and what it changed on the hub. A fake canary token used throughout must never appear in any output or
in any file written under the test's folder.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi

from voxtral_deploy.testing import assert_no_secrets

EXE = str(Path(sys.executable).with_name("voxtral-deploy"))
CANARY = "hf_FakeCliCanaryToken000000000000000077"
READER = "hf_FakeCliReadToken0000000000000000078"
OUTPUTS: list[str] = []  # everything the commands printed, scanned at the end
pytestmark = pytest.mark.slow  # every test runs the command in a subprocess, most against a live hub


def run(*args, check=True, timeout=600, env=None):
    r = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "HF_HUB_DISABLE_XET": "1", **(env or {})})
    OUTPUTS.extend([r.stdout, r.stderr])
    if check: assert r.returncode == 0, f"{args}: rc={r.returncode}\n{r.stderr[-3000:]}"
    return r


def run_json(*args, **kw) -> dict:
    r = run(*args, "--json", **kw)
    return json.loads(r.stdout)  # stdout is exactly one JSON object


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def served(work):
    "`voxtral-deploy hub serve` in the background; its first stdout line tells where it listens."
    tokens = work / "tokens.json"
    tokens.write_text(json.dumps({CANARY: {"user": "carol", "role": "write"}, READER: {"user": "carol", "role": "read"}}))
    proc = subprocess.Popen([EXE, "hub", "serve", "--root", work / "hub", "--tokens", tokens, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env={**os.environ, "HF_HUB_DISABLE_XET": "1"})
    info = json.loads(proc.stdout.readline())
    (work / "token").write_text(CANARY + "\n")
    yield {"endpoint": info["endpoint"], "token_file": work / "token", "api": HfApi(endpoint=info["endpoint"], token=CANARY)}
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    OUTPUTS.extend([out, err])
    assert proc.returncode == 0, err[-2000:]


@pytest.fixture(scope="module")
def model(work):
    d = run_json("make-tiny-model", work / "model")
    return Path(d["model_dir"])


def hub_args(served): return ["--endpoint", served["endpoint"], "--token-file", served["token_file"]]


def test_help_lists_every_subcommand():
    out = run("--help").stdout
    for cmd in ("quickstart", "deploy", "inspect", "card", "publish", "space", "evaluate", "status", "batch", "ci-init", "hub",
                "make-tiny-model"):
        assert f"    {cmd}" in out
    assert run("--version").stdout.startswith("voxtral-deploy ")


def test_inspect_and_card(model, work, training_fixtures):
    info = run_json("inspect", model)
    assert info["kind"] == "full" and "model.safetensors" in info["files"]
    card = run_json("card", model, "--training-config", training_fixtures["training_config"], "--results", training_fixtures["trainer_state"],
                    "--repo-id", "carol/voxtral-cli", "--language", "fr", "-o", work / "README.md")
    text = (work / "README.md").read_text()
    assert card["card"] == text and "pipeline_tag: automatic-speech-recognition" in text and "carol/voxtral-cli" in text
    r = run("card", model, "--language", "xx", check=False)
    assert r.returncode == 1 and r.stderr.startswith("error: Unknown language code 'xx'") and "Traceback" not in r.stderr


def test_publish_dry_run_then_publish_then_unchanged(served, model, trained_run):
    api = served["api"]
    plan = run_json("publish", model, "--repo-id", "voxtral-cli", "--dry-run", *hub_args(served))
    assert plan["dry_run"] and plan["plan"]["repo_id"] == "carol/voxtral-cli" and not api.repo_exists("carol/voxtral-cli")
    # results: a real Trainer output folder, whose trainer_state.json is in its latest checkpoint
    res = run_json("publish", model, "--repo-id", "voxtral-cli", "--results", trained_run.output_dir, "--tag", "v1", *hub_args(served))
    assert res["committed"] and res["commit_oid"] == api.model_info("carol/voxtral-cli").sha
    assert f"results read from {trained_run.trainer_state.resolve()}" in res["notes"] and "training_curves.png" in res["files_uploaded"]
    assert "v1" in [t.name for t in api.list_repo_refs("carol/voxtral-cli").tags]
    again = run_json("publish", model, "--repo-id", "voxtral-cli", "--results", trained_run.output_dir, *hub_args(served))
    assert not again["committed"] and again["bytes_sent"] == 0


def test_publish_refuses_a_read_token(served, model, work):
    (work / "read-token").write_text(READER)
    r = run("publish", model, "--repo-id", "voxtral-ro", "--endpoint", served["endpoint"], "--token-file", work / "read-token", check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]  # progress lines come before it
    assert r.returncode == 1 and len(errors) == 1 and "read" in errors[0].lower() and "Traceback" not in r.stderr
    assert not served["api"].repo_exists("carol/voxtral-ro")


@pytest.mark.space
def test_space_then_status(served, model):
    res = run_json("space", "--model-id", "carol/voxtral-cli", "--timeout", "300", *hub_args(served))
    assert res["stage"] == "RUNNING" and res["smoke"]["matched_local"] is True
    assert res["model_revision"] == served["api"].model_info("carol/voxtral-cli").sha
    st = run_json("status", res["space_id"], "--space", *hub_args(served))
    assert st["stage"] == "RUNNING" and st["health"]["ok"] is True and st["health"]["latency_ms"] >= 0
    st = run_json("status", "carol/voxtral-cli", *hub_args(served))
    assert st["sha"] == res["model_revision"] and st["files"]
    plan = run_json("space", "--model-id", "carol/voxtral-cli", "--dry-run", *hub_args(served))
    assert plan["commit"] is False  # an unchanged Space: nothing to commit


@pytest.mark.space
def test_deploy_dry_run_and_deploy(served, model, training_fixtures, trained_run, work):
    api = served["api"]
    pl = run_json("deploy", model, "--repo-id", "voxtral-cli-deploy", "--dry-run", *hub_args(served))
    assert pl["repo_id"] == "carol/voxtral-cli-deploy" and not api.repo_exists("carol/voxtral-cli-deploy")
    rec = run_json("deploy", model, "--repo-id", "voxtral-cli-deploy", "--training-config", training_fixtures["training_config"],
                   "--results", trained_run.output_dir, "--record-dir", work / "records", "--timeout", "300", *hub_args(served))
    assert rec["status"] == "ok" and rec["model"]["commit"] == api.model_info("carol/voxtral-cli-deploy").sha
    assert rec["space"]["stage"] == "RUNNING" and list((work / "records").glob("*.json"))


def test_deploy_space_variant_needs_quantize(served, model):
    r = run("deploy", model, "--repo-id", "voxtral-cli-variant", "--space-variant", "int4", *hub_args(served), check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert r.returncode == 1 and len(errors) == 1 and "quantize='int4'" in errors[0] and "Traceback" not in r.stderr
    assert not served["api"].repo_exists("carol/voxtral-cli-variant")


def test_deploy_failure_says_what_was_published(served, model, work):
    bad = work / "bad-config.yaml"
    bad.write_text(yaml.safe_dump({"model_dir": str(model), "repo_id": "voxtral-cli-bad", "hardware": "cpu-basic",
                                   "space_id": "carol/../evil", "record_dir": str(work / "records-bad")}))
    r = run("deploy", "--config", bad, "--json", *hub_args(served), check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert r.returncode == 1 and len(errors) == 1 and "space_id 'carol/../evil' is not a valid repo id" in errors[0]
    out = json.loads(r.stdout)
    assert out["type"] == "PipelineError" and out["record"]["status"] == "failed"
    assert not served["api"].repo_exists("carol/voxtral-cli-bad")  # refused before anything was published


@pytest.mark.space
def test_space_failure_after_publish_says_what_was_published(served, model, work):
    import shutil
    broken = work / "broken-model"; shutil.copytree(model, broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["text_config"]["intermediate_size"] = 96  # inspects and publishes, but the Space cannot load it
    (broken / "config.json").write_text(json.dumps(cfg))
    r = run("deploy", broken, "--repo-id", "voxtral-cli-broken", "--timeout", "300", "--record-dir", work / "records-broken",
            *hub_args(served), check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    sha = served["api"].model_info("carol/voxtral-cli-broken").sha
    assert r.returncode == 1 and len(errors) == 1
    assert f"is published at commit {sha[:12]}" in errors[0] and "NOT deployed" in errors[0]  # one line says both
    assert str(served["api"].get_space_runtime("carol/voxtral-cli-broken-demo").stage) == "PAUSED"  # a failed first deploy is paused


def test_batch_and_ci_init(served, model, work):
    batch = work / "batch.yaml"
    batch.write_text(yaml.safe_dump({"defaults": {"endpoint": served["endpoint"], "token_file": str(served["token_file"]), "space": False},
                                     "deployments": [{"model_dir": str(model), "repo_id": "voxtral-batch-ok"},
                                                     {"model_dir": str(work / "missing"), "repo_id": "voxtral-batch-bad"}]}))
    r = run("batch", batch, "--parallel", "2", "--report-dir", work / "batch-report", "--json", check=False)
    assert r.returncode == 1  # one entry failed
    rep = json.loads(r.stdout)
    status = {e["name"] if "name" in e else e["entry"]: e["status"] for e in rep["entries"]}
    assert sorted(status.values()) == ["failed", "ok"]
    assert served["api"].repo_exists("carol/voxtral-batch-ok") and not served["api"].repo_exists("carol/voxtral-batch-bad")
    assert len(list((work / "batch-report").rglob("*.ipynb"))) == 2
    wf = run_json("ci-init", "--output", work / "wf" / "deploy.yml")
    doc = yaml.safe_load(Path(wf["path"]).read_text())
    assert "jobs" in doc and "secrets.HF_TOKEN" in Path(wf["path"]).read_text()


@pytest.mark.space
def test_quickstart_exit_after_check(work):
    res = run_json("quickstart", "--workdir", work / "qs", "--exit-after-check", timeout=900)
    assert res["transcription"] is not None and res["space_url"] and res["model_url"]


def _audiofolder(root: Path, texts=("one two", "three", "four five six")) -> Path:
    "A small eval set in the audiofolder layout, split folder `test/`."
    from voxtral_deploy.testing import make_eval_audiofolder
    make_eval_audiofolder(root / "test", texts)
    return root


def test_evaluate_json_and_files(model, work):
    "The random tiny model on a small audiofolder: about every word wrong; the JSON on stdout, the table on stderr, the files written."
    pytest.importorskip("jiwer")
    eval_set = _audiofolder(work / "digits")
    out = work / "eval-out"
    r = run("evaluate", model, "--dataset", eval_set, "--language", "en", "--no-base", "--batch-size", "2", "--output", out, "--json")
    d = json.loads(r.stdout)
    assert d["wer"] >= 90 and d["dataset"]["num_samples"] == 3 and d["dataset"]["split"] == "test" and d["base"] is None
    assert d["normalizer"] == "whisper-english" and d["rtfx"] > 0 and d["settings"]["batch_size"] == 2
    assert json.loads((out / "eval_results.json").read_text())["wer"] == d["wer"]
    assert len((out / "eval" / "predictions.jsonl").read_text().splitlines()) == 3
    assert "| fine-tuned |" in r.stderr and str(out / "eval_results.json") in r.stderr


@pytest.mark.parametrize("case", ["column", "split", "empty"])
def test_evaluate_bad_inputs_are_one_line(model, work, case):
    root = _audiofolder(work / f"bad-{case}")
    args = {"column": ["--text-column", "sentence"], "split": ["--split", "validation"], "empty": []}[case]
    if case == "empty": (root / "test" / "metadata.jsonl").write_text("")
    r = run("evaluate", model, "--dataset", root, *args, "--output", work / f"out-{case}", check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    expected = {"column": "has no column 'sentence': its columns are file_name, text", "split": "has no split 'validation': it has test",
                "empty": "has no rows: nothing to evaluate on"}[case]
    assert r.returncode == 1 and len(errors) == 1 and expected in errors[0] and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (work / f"out-{case}").exists()


def test_deploy_eval_flags_fail_before_publishing(served, model, work):
    root = _audiofolder(work / "deploy-eval")
    r = run("deploy", model, "--repo-id", "voxtral-cli-eval", "--no-space", "--eval-dataset", root, "--eval-split", "dev",
            "--record-dir", work / "records-eval", *hub_args(served), check=False)
    errors = [l for l in r.stderr.splitlines() if l.startswith("error: ")]
    assert r.returncode == 1 and len(errors) == 1 and "evaluate step" in errors[0] and "has no split 'dev': it has test" in errors[0]
    assert not served["api"].repo_exists("carol/voxtral-cli-eval")


def test_canary_token_never_leaks(work, served):
    "Runs last in this module: no output of any command and no file written under the test folder holds the token."
    keep_out = lambda p: p.name in ("token", "tokens.json") or ".localhub" in p.parts  # where the token belongs
    assert_no_secrets(work, *OUTPUTS, secrets=[CANARY], ignore=keep_out)
