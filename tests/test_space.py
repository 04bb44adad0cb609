"""DemoSpaceDeployer end to end: a tiny Voxtral published to a local hub, the demo Space created, built and run
by the hub's local Space runtime (real child processes), smoke-checked through gradio_client and compared with
the same model run here; failures rolled back, paused or refused.
"""
import json
import shutil
from pathlib import Path

import pytest

from conftest import ALICE_READ, ALICE_WRITE, TOKENS

MODEL = "alice/tiny-voxtral"
SPACE = "alice/tiny-voxtral-demo"
TIMEOUT = 240  # seconds a Space may take to build and start on a busy 2-core machine

pytestmark = [pytest.mark.timeout(900), pytest.mark.space, pytest.mark.slow]


@pytest.fixture(scope="session")
def tiny_model_b_dir(tmp_path_factory) -> Path:
    "A second tiny Voxtral with other random weights (seed 1): same shapes, different words."
    from voxtral_deploy.testing import make_tiny_voxtral
    return make_tiny_voxtral(tmp_path_factory.mktemp("tiny-b") / "tiny-voxtral-b", seed=1)


def _publish(api, folder, repo_id=MODEL, private=False) -> str:
    api.create_repo(repo_id, private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="tiny voxtral").oid


def _deployer(api, events=None, **kw):
    from voxtral_deploy.space import DemoSpaceDeployer
    return DemoSpaceDeployer(api=api, model_id=kw.pop("model_id", MODEL), progress=events.append if events is not None else None, **kw)


def _template(tmp_path, **files) -> Path:
    "A template_dir whose files replace the rendered ones."
    d = tmp_path / "template"
    d.mkdir(exist_ok=True)
    for name, text in files.items(): (d / name.replace("__", ".")).write_text(text)
    return d


def _commits(api, repo_id=SPACE) -> list[str]:
    return [c.commit_id for c in api.list_repo_commits(repo_id, repo_type="space")]


def _no_tokens(*texts):
    from voxtral_deploy.testing import assert_no_secrets
    assert_no_secrets(*texts, secrets=TOKENS)


# ---- A first deploy runs and passes the smoke check; the same deploy again changes nothing -----------
def test_first_deploy_then_unchanged_redeploy(hub, api, tiny_model_dir):
    sha = _publish(api, tiny_model_dir)
    events = []
    d = _deployer(api, events)
    plan = d.plan()
    assert plan.space_id == SPACE and not plan.exists and plan.diff and plan.changed
    assert plan.hardware == "cpu-basic" and plan.model.revision == sha
    assert plan.set_variables["MODEL_REVISION"] == sha and plan.to_dict()["secrets"] == []
    assert plan.to_dict()["commit"] is True and SPACE in plan.summary()
    with pytest.raises(Exception):  # plan() wrote nothing
        api.space_info(SPACE)
    from voxtral_deploy.core import SubfolderNotFoundError
    with pytest.raises(SubfolderNotFoundError) as ei:  # int4/ was never published: a typed condition, not a text
        _deployer(api, subfolder="int4").plan()
    assert (ei.value.repo_id, ei.value.subfolder, ei.value.revision) == (MODEL, "int4", sha)

    r = d.deploy(timeout=TIMEOUT)
    assert r and r.stage == "RUNNING" and r.created and r.committed
    assert r.model_revision == sha and r.hardware == "cpu-basic" and r.host.startswith("http://127.0.0.1:")
    assert r.smoke.matched_local is True and r.smoke.text == r.smoke.expected and r.smoke.served_commit == sha
    assert {"plan", "configure", "commit", "build", "smoke", "total"} <= set(r.timings)
    files = {f for f in api.list_repo_files(SPACE, repo_type="space")}
    assert {"app.py", "inference.py", "README.md", "requirements.txt", ".voxtral-deploy.json"} <= files
    assert {k: v.value for k, v in api.get_space_variables(SPACE).items()}["MODEL_REVISION"] == sha
    assert api.get_space_secrets(SPACE) == {}  # a public model needs no token in the Space
    stages = [e.data.get("stage") for e in events if e.stage == "build"]
    assert stages[-1] == "RUNNING" and any(s in ("BUILDING", "APP_STARTING") for s in stages)
    doc = json.dumps(r.to_dict())
    _no_tokens(doc, r._repr_markdown_(), *map(str, events))

    commits, gen, host = _commits(api), hub.space(SPACE).gen, r.host
    r2 = _deployer(api).deploy(timeout=TIMEOUT)
    assert r2 and not r2.committed and not r2.created and r2.commit_oid == r.commit_oid
    assert r2.changes["files"] == {"add": [], "update": [], "delete": []} and r2.changes["variables"]["set"] == []
    assert _commits(api) == commits                      # no commit
    assert hub.space(SPACE).gen == gen and r2.host == host  # no restart: the same app process answered
    assert r2.smoke.matched_local is True
    assert not _deployer(api).plan().changed  # and a plan made now has nothing to do


# ---- A broken app: RUNTIME_ERROR with its logs, rolled back to the previous revision, which runs again ---
def test_broken_app_is_rolled_back(hub, api, tiny_model_dir, tmp_path):
    from voxtral_deploy.core import SpaceBuildError
    _publish(api, tiny_model_dir)
    good = _deployer(api).deploy(timeout=TIMEOUT)
    good_app = Path(api.hf_hub_download(SPACE, "app.py", repo_type="space")).read_bytes()
    before = _commits(api)

    broken = _template(tmp_path, app__py='raise RuntimeError("broken on purpose: the app fails at import")\n')
    with pytest.raises(SpaceBuildError) as ei:
        _deployer(api, template_dir=broken).deploy(timeout=TIMEOUT)
    e = ei.value
    assert e.stage == "RUNTIME_ERROR" and e.rolled_back is True and e.space_id == SPACE
    assert "\n" not in e.summary and "rolled back to the previous revision" in e.summary  # one line, no logs
    assert any("broken on purpose" in l for l in e.logs)          # the failed revision's run log
    assert "broken on purpose" in str(e) and "rolled back to the previous revision" in str(e)
    after = _commits(api)
    assert len(after) == len(before) + 2 and e.failed_commit == after[1]  # the failed commit, then the restoring one
    rt = api.get_space_runtime(SPACE)
    assert rt.stage == "RUNNING" and rt.raw["sha"] == after[0]
    assert Path(api.hf_hub_download(SPACE, "app.py", repo_type="space", revision=after[0])).read_bytes() == good_app
    from voxtral_deploy.space import smoke_check
    assert smoke_check(rt.raw["host"], _clip(tmp_path), expected=good.smoke.text).matched_local


def _clip(tmp_path) -> Path:
    from voxtral_deploy.testing import make_clip
    return make_clip(tmp_path / "smoke.wav", seconds=2.0)


# ---- An unsatisfiable requirement: BUILD_ERROR naming it; a failed first deploy is paused or deleted ---
@pytest.mark.parametrize("on_failure", ["rollback", "delete"])
def test_unsatisfiable_requirement_is_build_error(hub, api, tiny_model_dir, tmp_path, on_failure):
    from huggingface_hub.errors import RepositoryNotFoundError
    from voxtral_deploy.core import SpaceBuildError
    _publish(api, tiny_model_dir)
    bad = _template(tmp_path, requirements__txt="numpy\nvoxtral-no-such-package==9.9.9\n")
    with pytest.raises(SpaceBuildError) as ei:
        _deployer(api, template_dir=bad).deploy(timeout=TIMEOUT, on_failure=on_failure)
    e = ei.value
    assert e.stage == "BUILD_ERROR" and "voxtral-no-such-package" in str(e)
    assert any("voxtral-no-such-package" in l for l in e.logs)
    assert e.rolled_back is False  # a first deploy has no previous revision: paused or deleted instead
    if on_failure == "rollback":
        assert "paused" in str(e) and api.get_space_runtime(SPACE).stage == "PAUSED"
    else:
        assert "deleted" in str(e)
        with pytest.raises(RepositoryNotFoundError): api.space_info(SPACE)


# ---- Tokens: a write token is refused as the Space secret; a private model with a read token works -----
def test_write_token_is_refused_for_the_space(hub, api, tiny_model_dir):
    from huggingface_hub.errors import RepositoryNotFoundError
    from voxtral_deploy.core import TokenPermissionError
    _publish(api, tiny_model_dir, private=True)
    for kw in ({}, {"space_token": ALICE_WRITE}):  # the deploy token itself, or a write token passed explicitly
        with pytest.raises(TokenPermissionError) as ei:
            _deployer(api, **kw).deploy(timeout=TIMEOUT)
        msg = str(ei.value)
        assert "write token" in msg and "read" in msg and "settings/tokens" in msg
        _no_tokens(msg, repr(ei.value))
        with pytest.raises(TokenPermissionError): _deployer(api, **kw).plan()
    with pytest.raises(RepositoryNotFoundError): api.space_info(SPACE)  # refused before anything was created


def test_private_model_with_read_token(hub, api, tiny_model_dir):
    _publish(api, tiny_model_dir, private=True)
    events = []
    d = _deployer(api, events, space_token=ALICE_READ)
    assert sorted(d.plan().secrets) == ["HF_TOKEN"] and ALICE_READ not in json.dumps(d.plan().to_dict())
    r = d.deploy(timeout=TIMEOUT)
    assert r and r.private and r.smoke.matched_local is True
    assert api.space_info(SPACE).private and set(api.get_space_secrets(SPACE)) == {"HF_TOKEN"}
    assert "HF_TOKEN" not in {k for k in api.get_space_variables(SPACE)}
    assert r.changes["secrets"] == ["HF_TOKEN"]
    from voxtral_deploy.space import fetch_space_logs
    logs = fetch_space_logs(api, SPACE, "run") + fetch_space_logs(hub.endpoint, SPACE, "build", token=ALICE_WRITE)
    space_files = [Path(api.hf_hub_download(SPACE, f, repo_type="space")).read_text(errors="replace")
                   for f in api.list_repo_files(SPACE, repo_type="space")]
    _no_tokens(json.dumps(r.to_dict()), r._repr_markdown_(), *map(str, events), *logs, *space_files)
    # A redeploy does not touch the secret (it can't be read back; it is only re-set when space_token is passed).
    r2 = _deployer(api).deploy(timeout=TIMEOUT)
    assert not r2.committed and r2.changes["secrets"] == []
    # A public Space in front of the private model is allowed, with a warning.
    plan = _deployer(api, private=False, space_name="public-demo", space_token=ALICE_READ).plan()
    assert any("private but the Space" in w for w in plan.warnings)


# ---- A Space serving another model than the one published fails the smoke check (and is rolled back) ---
def test_space_serving_another_model_fails_smoke_check(hub, api, tiny_model_dir, tiny_model_b_dir, tmp_path):
    from voxtral_deploy.core import SmokeCheckError
    from voxtral_deploy.inference import Transcriber
    from voxtral_deploy.space import smoke_check
    sha_a = _publish(api, tiny_model_dir)
    sha_b = _publish(api, tiny_model_b_dir)  # a later push: main now holds other weights
    clip = _clip(tmp_path)
    text_a = Transcriber.from_pretrained(tiny_model_dir).transcribe(str(clip), max_new_tokens=64).text
    text_b = Transcriber.from_pretrained(tiny_model_b_dir).transcribe(str(clip), max_new_tokens=64).text
    assert text_a != text_b  # otherwise this test could not tell the models apart

    good = _deployer(api, model_revision=sha_a).deploy(timeout=TIMEOUT)
    assert good.model_revision == sha_a and good.smoke.text == text_a
    # An app that ignores MODEL_REVISION and loads whatever main is now: it serves model B.
    real_app = Path(api.hf_hub_download(SPACE, "app.py", repo_type="space")).read_text()
    tampered = _template(tmp_path, real_app__py=real_app, app__py=(
        'import os, runpy\nos.environ["MODEL_REVISION"] = "main"\nrunpy.run_path("real_app.py", run_name="__main__")\n'))
    with pytest.raises(SmokeCheckError) as ei:
        _deployer(api, model_revision=sha_a, template_dir=tampered).deploy(timeout=TIMEOUT)
    e = ei.value
    assert "different model than the one published" in str(e) and sha_b in str(e) and e.rolled_back is True
    rt = api.get_space_runtime(SPACE)
    assert rt.stage == "RUNNING"
    assert "real_app.py" not in api.list_repo_files(SPACE, repo_type="space")  # the tampered files are gone
    # The text comparison on its own: the rolled-back Space answers model A's words, not model B's.
    assert smoke_check(rt.raw["host"], clip, expected=text_a).matched_local
    with pytest.raises(SmokeCheckError, match="different model than the one published"):
        smoke_check(SPACE, clip, expected=text_b, api=api)


# ---- Hub faults during a deploy are retried ---------------------------------------------------------
def test_hub_faults_are_retried(hub, api, tiny_model_dir):
    _publish(api, tiny_model_dir)
    faults = [hub.inject_fault("create", "503", times=1, retry_after=0),
              hub.inject_fault("info", "429", times=2, retry_after=0),
              hub.inject_fault("preupload", "500", times=1),
              hub.inject_fault("commit", "drop", times=1),
              hub.inject_fault("runtime", "503", times=3),
              hub.inject_fault("tree", "drop", times=1)]
    r = _deployer(api).deploy(timeout=TIMEOUT)
    assert r and r.stage == "RUNNING" and r.smoke.matched_local is True
    assert all(f.hits >= 1 for f in faults), [(f.pattern, f.hits) for f in faults]
    commits = _commits(api)
    assert commits[0] == r.commit_oid
    # the dropped commit was not made twice: exactly one deploy commit on top of the initial one
    assert sum(1 for c in api.list_repo_commits(SPACE, repo_type="space") if c.title.startswith("Deploy the demo")) == 1


# ---- Variants: the int4 folder and a LoRA adapter on its base, each served by a live Space ---------------
def _space_text(api, name: str, space=SPACE) -> str:
    return Path(api.hf_hub_download(space, name, repo_type="space")).read_text()


def _space_card(api, space: str):
    from huggingface_hub import RepoCard
    return RepoCard(_space_text(api, "README.md", space))


def _model_info(host: str) -> dict:
    from gradio_client import Client
    return Client(host, verbose=False).predict(api_name="/model_info")


def test_int4_variant_demo(hub, api, tmp_path):
    from voxtral_deploy.publish import HuggingFacePusher
    from voxtral_deploy.testing import make_tiny_voxtral
    model = make_tiny_voxtral(tmp_path / "q-model", quantizable=True)
    res = HuggingFacePusher(model, MODEL, token=ALICE_WRITE, endpoint=hub.endpoint, hash_cache=False, progress=False).push_model(quantize="int4")
    assert res.quantized and res.quantized[0]["subfolder"] == "int4"
    d = _deployer(api, subfolder="int4", space_name="tiny-voxtral-int4")
    plan = d.plan()
    assert plan.model.kind == "quantized" and plan.set_variables["MODEL_SUBFOLDER"] == "int4"
    r = d.deploy(timeout=TIMEOUT)
    space = "alice/tiny-voxtral-int4"
    assert r.stage == "RUNNING" and r.smoke.matched_local is True and r.smoke.served_commit == res.commit_oid
    reqs = _space_text(api, "requirements.txt", space)
    assert "bitsandbytes==" in reqs and "accelerate==" in reqs and "peft" not in reqs
    info = _model_info(r.host)
    assert info["subfolder"] == "int4" and info["commit"] == res.commit_oid and info["base_commit"] is None
    preload = _space_card(api, space).data.preload_from_hub
    assert len(preload) == 1 and "int4/model.safetensors" in preload[0] and "int4/config.json" in preload[0]


def test_lora_adapter_demo(hub, api, tiny_model_dir, tmp_path, clip_path):
    from huggingface_hub.errors import RepositoryNotFoundError
    peft = pytest.importorskip("peft")
    from transformers import VoxtralForConditionalGeneration
    from voxtral_deploy.core import InvalidInputError
    from voxtral_deploy.inference import Transcriber
    base_sha = _publish(api, tiny_model_dir)
    base = VoxtralForConditionalGeneration.from_pretrained(tiny_model_dir)
    adapter_dir = tmp_path / "adapter"
    # init_lora_weights=False: random B, so the adapter really changes what the model says
    peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter_dir)
    lora, space = "alice/tiny-voxtral-lora", "alice/tiny-voxtral-lora-demo"
    # As peft saved it, the adapter names the local folder it was trained from: refused before anything is written.
    api.create_repo(lora)
    api.upload_folder(repo_id=lora, folder_path=adapter_dir)
    with pytest.raises(InvalidInputError, match="local path the Space can't download"):
        _deployer(api, model_id=lora).deploy(timeout=TIMEOUT)
    with pytest.raises(RepositoryNotFoundError): api.space_info(space)
    # Named by its Hub id, the base is pinned and preloaded, peft is required, and the live Space says the adapter's words.
    cfg_path = adapter_dir / "adapter_config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "base_model_name_or_path": MODEL}))
    lora_sha = api.upload_folder(repo_id=lora, folder_path=adapter_dir).oid
    r = _deployer(api, model_id=lora).deploy(timeout=TIMEOUT)
    assert r.stage == "RUNNING" and r.smoke.matched_local is True and r.smoke.served_commit == lora_sha
    assert {k: v.value for k, v in api.get_space_variables(space).items()}["BASE_MODEL_REVISION"] == base_sha
    assert "peft==" in _space_text(api, "requirements.txt", space)
    card = _space_card(api, space)
    assert card.data.models == [lora, MODEL] and card.data.preload_from_hub[1].endswith(f" {base_sha}")
    info = _model_info(r.host)
    assert info["commit"] == lora_sha and info["base_commit"] == base_sha
    adapted = Transcriber.from_pretrained(lora, revision=lora_sha, endpoint=hub.endpoint, device="cpu")
    plain = Transcriber.from_pretrained(tiny_model_dir, device="cpu")
    assert adapted.base_revision == base_sha
    assert adapted.transcribe(str(clip_path), max_new_tokens=16).text != plain.transcribe(str(clip_path), max_new_tokens=16).text
