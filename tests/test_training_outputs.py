"""Real training output in, a card people trust out: the CLI against a local hub on folders made by transformers'
`Trainer` and peft (`trained_run`, `lora_run` in conftest), never by writing their layout by hand.

Every case runs `voxtral-deploy` (its entry point, `cli.main`) and reads back what the hub holds: the files, the card
(`ModelCard.load`), the training-curves PNG, TensorBoard's event files, pull requests and organisation repos.
"""
import contextlib, hashlib, io, json, os, shutil, sys
from types import SimpleNamespace
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from conftest import ALICE_WRITE, BOB_WRITE

pytestmark = pytest.mark.slow  # real training runs and a live hub
DAVE_WRITE = "hf_FakeDaveWriteToken00000000000000004"
BASE_ID = "mistralai/Voxtral-Mini-3B-2507"
TOKENS = {"tokens": {ALICE_WRITE: {"user": "alice", "role": "write"}, BOB_WRITE: {"user": "bob", "role": "write"},
                     DAVE_WRITE: {"user": "dave", "role": "write"}},
          "orgs": {"acme": {"fullname": "Acme Speech", "members": {"alice": "write", "dave": "read"}}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    "One local hub for the module; token files for alice, bob (no org) and dave (read role in acme)."
    from voxtral_deploy.localhub import LocalHub
    d = tmp_path_factory.mktemp("hub")
    files = {}
    for who, tok in (("alice", ALICE_WRITE), ("bob", BOB_WRITE), ("dave", DAVE_WRITE)):
        files[who] = d / f"{who}.token"; files[who].write_text(tok + "\n")
    with LocalHub(d / "root", tokens=TOKENS) as hub:
        yield {"hub": hub, "endpoint": hub.endpoint, "tokens": files, "api": HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)}


def cli(served, *args, who="alice", check=True):
    "`voxtral-deploy ARGS --json` through the CLI's entry point, in this process (the subprocess start costs seconds on a busy CI box)."
    from voxtral_deploy.cli import main
    out, err = io.StringIO(), io.StringIO()
    argv = [*map(str, args), "--endpoint", served["endpoint"], "--token-file", str(served["tokens"][who]), "--json"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main(argv)
    r = SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    if check: assert rc == 0, f"{args}: rc={rc}\n{r.stderr[-3000:]}"
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def card_of(served, repo_id, revision=None) -> ModelCard:
    return ModelCard.load(hf_hub_download(repo_id, "README.md", revision=revision, endpoint=served["endpoint"], token=ALICE_WRITE))


def files_of(served, repo_id, revision=None) -> set[str]:
    return set(served["api"].list_repo_files(repo_id, revision=revision))


def sha(p: Path) -> str: return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_trainer_output_folder_results_curves_and_tensorboard(served, trained_run):
    out = trained_run.output_dir
    assert not (out / "trainer_state.json").exists() and len(trained_run.checkpoints) == 3  # the recipe's layout
    _, res = cli(served, "publish", out, "--repo-id", "alice/voxtral-ft", "--results", out, "--base-model", BASE_ID, "--language", "en")
    used = str(trained_run.trainer_state.resolve())
    assert f"results read from {used}" in res["notes"]  # says which file: the latest checkpoint's (by global step)
    files = files_of(served, "alice/voxtral-ft")
    tb = [f for f in files if f.startswith("runs/") and "events.out.tfevents." in f]
    assert len(tb) == 1 and {"training_curves.png", "tekken.json", "processor_config.json", "model.safetensors"} <= files
    assert not any(f.endswith((".pt", ".pth", ".bin")) or f.startswith("checkpoint-") for f in files)
    tr = json.loads(Path(hf_hub_download("alice/voxtral-ft", "training_results.json", endpoint=served["endpoint"])).read_text())
    assert tr["sources"] == ["checkpoint-6/trainer_state.json"] and tr["steps"] == 6 and tr["wer"] is not None
    card = card_of(served, "alice/voxtral-ft")
    assert card.data.base_model == BASE_ID and card.data.language == ["en"]
    assert "![Training and evaluation loss over steps](training_curves.png)" in card.text and "| step |" in card.text  # picture and table
    png = Path(hf_hub_download("alice/voxtral-ft", "training_curves.png", endpoint=served["endpoint"])).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    _, again = cli(served, "publish", out, "--repo-id", "alice/voxtral-ft", "--results", out, "--base-model", BASE_ID, "--language", "en")
    assert again["committed"] is False  # the same run, the same bytes (the PNG included): no commit
    _, notb = cli(served, "publish", out, "--repo-id", "alice/voxtral-ft", "--results", out, "--base-model", BASE_ID, "--language", "en",
                  "--no-tensorboard")
    assert notb["files_deleted"] == tb and not any(f.startswith("runs/") for f in files_of(served, "alice/voxtral-ft"))


def test_checkpoint_last_best_and_step(served, trained_run):
    out, cks = trained_run.output_dir, trained_run.checkpoints
    _, r2 = cli(served, "publish", out, "--checkpoint", "2", "--repo-id", "alice/voxtral-ck", "--base-model", BASE_ID, "--language", "en")
    assert r2["hashes"]["model.safetensors"] == sha(cks[0] / "model.safetensors") != sha(out / "model.safetensors")
    assert {"tekken.json", "processor_config.json"} <= set(r2["hashes"])  # the processor from the output folder: the checkpoint lacks it
    assert any(n.startswith("publishing checkpoint-2 of ") for n in r2["notes"])
    best = json.loads(trained_run.trainer_state.read_text())["best_model_checkpoint"]
    _, rb = cli(served, "publish", out, "--checkpoint", "best", "--repo-id", "alice/voxtral-ck", "--base-model", BASE_ID, "--language", "en")
    assert rb["hashes"]["model.safetensors"] == sha(out / Path(best).name / "model.safetensors")
    _, rl = cli(served, "publish", out, "--checkpoint", "last", "--repo-id", "alice/voxtral-ck", "--base-model", BASE_ID, "--language", "en",
                "--dry-run")
    assert any("checkpoint-6" in n for n in rl["notes"])
    r, err = cli(served, "publish", out, "--checkpoint", "5", "--repo-id", "alice/voxtral-ck", check=False)
    assert r.returncode == 1 and "No checkpoint at step 5" in err["error"] and "checkpoint-4 (step 4)" in err["error"]


def test_lora_adapter_on_a_local_base(served, lora_run, tmp_path):
    out = lora_run.output_dir
    acfg = json.loads((out / "adapter_config.json").read_text())
    assert acfg["task_type"] == "SEQ_2_SEQ_LM" and not acfg["base_model_name_or_path"].lower().count("voxtral")  # a local folder
    r, plan = cli(served, "publish", out, "--repo-id", "alice/voxtral-lora", "--dry-run")  # recognised: the base folder's config.json
    assert any("--base-model" in w for w in plan["warnings"])
    _, res = cli(served, "publish", out, "--repo-id", "alice/voxtral-lora", "--results", out, "--base-model", BASE_ID, "--language", "en")
    card = card_of(served, "alice/voxtral-lora")
    assert card.data.base_model == BASE_ID and card.data.library_name == "peft" and "lora" in card.data.tags
    assert acfg["base_model_name_or_path"] not in card.content  # peft's README named the local folder: dropped
    assert any(n.startswith("README.md in the folder merged into the card") for n in res["notes"])
    # the Space needs the base's Hub id: without one, deploy refuses before publishing anything
    r, err = cli(served, "deploy", out, "--repo-id", "alice/voxtral-lora-2", check=False)
    assert r.returncode == 1 and "base model" in err["error"] and not served["api"].repo_exists("alice/voxtral-lora-2")
    # nothing says Voxtral: the base is a Hub id of another model and no config is at hand
    other = tmp_path / "other"; shutil.copytree(out, other, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    (other / "adapter_config.json").write_text(json.dumps({**acfg, "base_model_name_or_path": "someone/whisper-small"}))
    r, err = cli(served, "publish", other, "--repo-id", "alice/other", check=False)
    assert r.returncode == 1 and "Nothing says this adapter is for Voxtral" in err["error"]
    _, ok = cli(served, "publish", other, "--repo-id", "alice/other", "--base-model", BASE_ID, "--dry-run")  # the user says it is
    assert ok["plan"]["add"]


def test_users_readme_is_merged_and_plan_says_so(served, trained_run, tmp_path):
    model = tmp_path / "voxtral-mine"; shutil.copytree(trained_run.output_dir, model, ignore=shutil.ignore_patterns("checkpoint-*"))
    (model / "README.md").write_text("---\nlicense: mit\ndatasets:\n- alice/my-clips\ntags:\n- kitchen\n---\n\n# My model\n\n"
                                     "## Acknowledgements\n\nThanks to the speakers who lent their voices.\n\n"
                                     "## Training details\n\nold text\n")
    _, plan = cli(served, "publish", model, "--repo-id", "alice/voxtral-mine", "--base-model", BASE_ID, "--language", "en", "--dry-run")
    note = next(n for n in plan["notes"] if n.startswith("README.md in the folder merged"))
    assert "kept sections: Acknowledgements" in note and "updated: Training details" in note and "datasets" in note
    cli(served, "publish", model, "--repo-id", "alice/voxtral-mine", "--base-model", BASE_ID, "--language", "en", "--license", "apache-2.0")
    card = card_of(served, "alice/voxtral-mine")
    assert "Thanks to the speakers who lent their voices." in card.text and "old text" not in card.text
    assert card.data.datasets == ["alice/my-clips"] and "kitchen" in card.data.tags and "voxtral" in card.data.tags
    assert card.data.license == "apache-2.0"  # ours updated


def test_warnings_unrecognised_keys_and_dataset_split(served, trained_run, tmp_path):
    out = trained_run.output_dir
    _, plan = cli(served, "publish", out, "--repo-id", "alice/voxtral-warn", "--dry-run")
    warn = " ".join(plan["warnings"])
    assert "[More Information Needed]" in warn and "base model (--base-model ID)" in warn and "languages (--language CODE)" in warn
    state = json.loads(trained_run.trainer_state.read_text())
    state["log_history"][-1]["eval_bleu"] = 12.5  # a metric compute_metrics could return that the card does not show
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    (tmp_path / "train.json").write_text(json.dumps({"dataset_name": "mozilla-foundation/common_voice_17_0", "dataset_config_name": "en",
                                                    "eval_split_name": "validation", "learning_rate": 1e-3}))
    _, res = cli(served, "publish", out, "--repo-id", "alice/voxtral-split", "--results", tmp_path / "trainer_state.json",
                 "--training-config", tmp_path / "train.json", "--base-model", BASE_ID, "--language", "en")
    assert any(n.startswith("results keys not recognised") and "eval_bleu" in n for n in res["notes"])
    card = card_of(served, "alice/voxtral-split")
    wer = next(r for r in card.data.eval_results if r.metric_type == "wer")
    assert (wer.dataset_type, wer.dataset_split, wer.dataset_config) == ("mozilla-foundation/common_voice_17_0", "validation", "en")


def test_pull_request_then_space_plan_from_its_revision(served, trained_run):
    out, api = trained_run.output_dir, served["api"]
    cli(served, "publish", out, "--repo-id", "alice/voxtral-pr", "--base-model", BASE_ID, "--language", "en")
    r, denied = cli(served, "publish", out, "--repo-id", "alice/voxtral-pr", "--language", "fr", who="bob", check=False)
    assert r.returncode == 1 and "cannot write to the namespace 'alice'" in denied["error"]
    _, pr = cli(served, "publish", out, "--repo-id", "alice/voxtral-pr", "--base-model", BASE_ID, "--language", "fr", "--create-pr", who="bob")
    assert pr["pr_num"] and pr["pr_url"].endswith(f"/alice/voxtral-pr/discussions/{pr['pr_num']}") and pr["pr_revision"] == f"refs/pr/{pr['pr_num']}"
    d = api.get_discussion_details("alice/voxtral-pr", pr["pr_num"])
    assert d.is_pull_request and d.status == "open" and d.author == "bob" and not d.conflicting_files  # mergeable
    assert card_of(served, "alice/voxtral-pr", revision=pr["pr_revision"]).data.language == ["fr"]
    assert card_of(served, "alice/voxtral-pr").data.language == ["en"]  # main is untouched until the owner merges
    _, sp = cli(served, "space", "--model-id", "alice/voxtral-pr", "--model-revision", pr["pr_revision"], "--dry-run")
    assert sp["variables"]["set"]["MODEL_REVISION"] == pr["commit_oid"]  # the Space would serve the PR, pinned to its commit
    api.merge_pull_request("alice/voxtral-pr", pr["pr_num"])
    assert card_of(served, "alice/voxtral-pr").data.language == ["fr"]


def test_organisation_namespace_member_and_non_member(served, trained_run):
    out = trained_run.output_dir
    _, ok = cli(served, "publish", out, "--repo-id", "acme/voxtral-ft", "--base-model", BASE_ID, "--language", "en")
    assert ok["repo_id"] == "acme/voxtral-ft" and served["api"].repo_info("acme/voxtral-ft").sha == ok["commit_oid"]
    r, reader = cli(served, "publish", out, "--repo-id", "acme/voxtral-ft", "--language", "fr", who="dave", check=False)
    assert r.returncode == 1 and "read role in the organization 'acme'" in reader["error"] and [l for l in r.stderr.splitlines() if l.startswith("error")] == ["error: " + reader["error"]]
    r, outsider = cli(served, "publish", out, "--repo-id", "acme/voxtral-other", "--language", "fr", who="bob", check=False)
    assert r.returncode == 1 and "cannot write to the namespace 'acme'" in outsider["error"]
    assert not served["api"].repo_exists("acme/voxtral-other")
