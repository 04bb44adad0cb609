"""End-to-end tests of `voxtral_deploy.publish` with the real huggingface_hub client against the local hub."""
import json, logging, os, shutil
from pathlib import Path

import pytest

from conftest import ALICE_READ, ALICE_WRITE, BOB_WRITE

from huggingface_hub import HfApi, snapshot_download, CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from voxtral_deploy import publish, publish_files
from voxtral_deploy.publish import HuggingFacePusher, PushResult, plan_push
from voxtral_deploy.core import (InvalidInputError, InvalidModelError, PublishError, TokenPermissionError, VoxtralDeployError,
                                 MASK, PrintProgress)
from voxtral_deploy.artifacts import make_fake_voxtral_folder, write_safetensors_stub
from voxtral_deploy.testing import assert_no_secrets


REPO = "alice/voxtral-test"


@pytest.fixture
def cache_file(tmp_path) -> Path:
    return tmp_path / "cache" / "hashes.json"


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    "A private copy of the tiny model (tests may change it)."
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    return d


def pusher(hub, model, repo=REPO, token=ALICE_WRITE, cache=None, **kw):
    kw.setdefault("progress", False)
    return HuggingFacePusher(model, repo, token=token, endpoint=hub.endpoint, hash_cache=cache or False, **kw)


def head(api, repo=REPO):
    try: return api.repo_info(repo).sha
    except RepositoryNotFoundError: return None


def n_commits(api, repo=REPO):
    return len(api.list_repo_commits(repo))


def remote_files(api, repo=REPO):
    return set(api.list_repo_files(repo))


# -- the full round trip ----------------------------------------------------------------------------

def test_full_publish_then_download_load_transcribe(hub, api, model_copy, training_fixtures, clip_path, tmp_path, cache_file):
    r = pusher(hub, model_copy, cache=cache_file).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"])
    assert isinstance(r, PushResult) and r and r.committed
    assert r.repo_id == REPO and r.url == f"{hub.endpoint}/{REPO}" and r.commit_oid == head(api)
    files = remote_files(api)
    for f in ("README.md", "config.json", "model.safetensors", "tekken.json", "training_config.json", "training_results.json"):
        assert f in files
    assert n_commits(api) == 2  # the repo's initial commit + ONE publish commit
    assert r.bytes_sent > 0 and r.bytes_sent == sum(r.plan.sizes[f] for f in r.files_uploaded)
    assert set(r.timings) >= {"inspect", "access", "hash", "remote", "card", "plan", "upload"}
    json.dumps(r.to_dict())
    assert "Committed" in r._repr_markdown_()
    results = json.loads((Path(api.hf_hub_download(REPO, "training_results.json", cache_dir=tmp_path / "dl"))).read_text())
    assert "wer" in results and "loss_curve" in results

    snap = snapshot_download(REPO, endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "snap")
    from voxtral_deploy.inference import Transcriber
    t = Transcriber.from_pretrained(snap)
    out = t.transcribe(str(clip_path))
    assert isinstance(out.text, str)
    # the published weights are byte-identical to the local ones
    assert (Path(snap) / "model.safetensors").read_bytes() == (model_copy / "model.safetensors").read_bytes()


def test_republish_unchanged_makes_no_commit_and_sends_nothing(hub, api, model_copy, training_fixtures, cache_file):
    p = pusher(hub, model_copy, cache=cache_file)
    first = p.push_model(training_fixtures["training_config"], training_fixtures["trainer_state"])
    before = n_commits(api)
    again = pusher(hub, model_copy, cache=cache_file).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"])
    assert again and not again.committed and again.bytes_sent == 0 and again.files_uploaded == []
    assert again.commit_oid == first.commit_oid == head(api) and n_commits(api) == before
    assert set(again.files_unchanged) == set(first.files_uploaded)


def test_hash_cache_spares_rehashing_large_files(hub, api, model_copy, cache_file, monkeypatch):
    monkeypatch.setattr(publish_files, "_SNAPSHOT_BYTES", 0)  # stream every file from disk (the path large checkpoints take)
    p = pusher(hub, model_copy, cache=cache_file)
    p.push_model(card=False)
    assert p.cache.misses == 5 and cache_file.exists()
    p2 = pusher(hub, model_copy, cache=cache_file)
    r = p2.push_model(card=False)
    assert not r.committed and p2.cache.misses == 0 and p2.cache.hits == 5


def test_first_publish_reads_each_large_file_once_for_hashing(hub, api, model_copy, cache_file, monkeypatch):
    monkeypatch.setattr(publish_files, "_SNAPSHOT_BYTES", 0)  # every model file takes the large-file path
    p = pusher(hub, model_copy, cache=cache_file)
    r = p.push_model(card=False)
    sizes = {f: (model_copy / f).stat().st_size for f in r.hashes}
    assert r.committed and p.cache.misses == len(sizes) == 5
    assert p.cache.bytes_hashed == sum(sizes.values())  # one read per file: no second hash, no git blob id
    again = pusher(hub, model_copy, cache=cache_file)
    assert not again.push_model(card=False).committed and again.cache.misses == 0  # no sha256 computed again
    in_git = [e.path for e in api.list_repo_tree(REPO) if getattr(e, "lfs", None) is None and e.path in sizes]
    assert again.cache.bytes_hashed == sum(sizes[f] for f in in_git)  # only git blob ids, of files the Hub keeps outside LFS


def test_result_carries_hashes_card_and_revision(hub, api, model_copy, training_fixtures):
    import hashlib
    r = pusher(hub, model_copy).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"])
    assert set(r.hashes) == set(publish.inspect_model(model_copy).files)
    for f, sha in r.hashes.items():
        assert sha == hashlib.sha256((model_copy / f).read_bytes()).hexdigest()
    assert r.revision == "main" and r.card == Path(api.hf_hub_download(REPO, "README.md")).read_text()
    assert json.loads(json.dumps(r.to_dict()))["hashes"] == r.hashes


def test_handed_forward_artifacts_identity_and_card_are_used(hub, api, model_copy):
    art = publish.inspect_model(model_copy)
    me = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE).whoami()
    text = pusher(hub, model_copy).push_model(dry_run=True).card.replace("\n# ", "\n<!-- rendered by the caller -->\n# ", 1)
    # the folder no longer inspects (a llama config), but the caller's inspection is used and not redone
    (model_copy / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(InvalidModelError):
        pusher(hub, model_copy).push_model(card=False, dry_run=True)
    fault = hub.inject_fault("whoami", "503", times=100)  # whoami is not asked again either
    r = pusher(hub, model_copy, artifacts=art, identity=me).push_model(card_text=text)
    assert r.committed and fault.hits == 0 and r.card == text
    hub.faults.clear()
    assert Path(api.hf_hub_download(REPO, "README.md")).read_text() == text
    with pytest.raises(InvalidInputError, match="inspection of this folder"):
        pusher(hub, model_copy.parent, artifacts=art).push_model(dry_run=True)
    with pytest.raises(InvalidInputError, match="card_text"):
        pusher(hub, model_copy, artifacts=art).push_model(card=False, card_text=text)


def test_one_changed_file_only_it_is_sent(hub, api, model_copy, cache_file):
    pusher(hub, model_copy, cache=cache_file).push_model(card=False)
    gc = model_copy / "generation_config.json"
    d = json.loads(gc.read_text()); d["max_new_tokens"] = 99; gc.write_text(json.dumps(d))
    r = pusher(hub, model_copy, cache=cache_file).push_model(card=False)
    assert r.committed and r.files_uploaded == ["generation_config.json"] and r.files_deleted == []
    assert r.bytes_sent == gc.stat().st_size
    assert "model.safetensors" in r.files_unchanged


def test_removed_shards_are_deleted_in_the_same_commit(hub, api, tiny_model_dir, tmp_path, cache_file):
    from transformers import VoxtralForConditionalGeneration
    sharded = tmp_path / "sharded"; shutil.copytree(tiny_model_dir, sharded)
    (sharded / "model.safetensors").unlink()
    m = VoxtralForConditionalGeneration.from_pretrained(tiny_model_dir)
    m.save_pretrained(sharded, max_shard_size="100KB")
    shards = sorted(f.name for f in sharded.glob("model-*.safetensors"))
    assert len(shards) >= 2
    pusher(hub, sharded, cache=cache_file).push_model(card=False)
    assert set(shards) | {"model.safetensors.index.json"} <= remote_files(api)
    # the user adds a file of their own on the Hub: it must survive
    api.upload_file(path_or_fileobj=b"my notes", path_in_repo="notes.md", repo_id=REPO)
    before = n_commits(api)
    r = pusher(hub, tiny_model_dir, cache=cache_file).push_model(card=False)
    assert r.committed and n_commits(api) == before + 1
    assert set(r.files_deleted) == set(shards) | {"model.safetensors.index.json"}
    files = remote_files(api)
    assert "model.safetensors" in files and "notes.md" in files and not any(f.startswith("model-") for f in files)


def test_dry_run_writes_nothing(hub, api, model_copy, training_fixtures):
    r = pusher(hub, model_copy).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"], dry_run=True)
    assert r and r.dry_run and not r.committed and head(api) is None
    assert "model.safetensors" in r.plan.add and r.plan.bytes_to_send > 0 and not r.plan.repo_exists
    plan = plan_push(model_copy, REPO, token=ALICE_WRITE, endpoint=hub.endpoint)
    json.dumps(plan.to_dict()); assert "README.md" in plan.add
    assert head(api) is None


def test_tag(hub, api, model_copy):
    r = pusher(hub, model_copy).push_model(card=False, tag="v1")
    assert r.tag == "v1"
    tags = {t.name: t.target_commit for t in api.list_repo_refs(REPO).tags}
    assert tags["v1"] == r.commit_oid
    # same version again, same tag: fine; a changed model under an existing tag: refused before writing
    pusher(hub, model_copy).push_model(card=False, tag="v1")
    (model_copy / "generation_config.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="already exists"):
        pusher(hub, model_copy).push_model(card=False, tag="v1")
    assert head(api) == r.commit_oid


# -- faults ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route,kind", [("commit", "429"), ("commit", "500"), ("commit", "503"), ("preupload", "503"),
                                        ("lfs-upload", "drop"), ("lfs-batch", "500"), ("commit", "drop")])
def test_transient_faults_are_retried(hub, api, model_copy, route, kind):
    pusher(hub, model_copy).push_model(card=False)
    (model_copy / "model.safetensors").write_bytes((model_copy / "model.safetensors").read_bytes())  # same bytes, new mtime
    write_safetensors_stub(model_copy / "extra.safetensors", {"x": ("F32", [64])})
    before = n_commits(api)
    fault = hub.inject_fault(route, kind, times=1, retry_after=1 if kind == "429" else None)
    r = pusher(hub, model_copy).push_model(card=False)
    assert fault.hits >= 1 and fault.times == 0  # the fault did happen
    assert r.committed and "extra.safetensors" in remote_files(api)
    assert n_commits(api) == before + 1  # never a double commit, even when the commit's answer was lost


@pytest.mark.parametrize("route", ["whoami", "info", "tree", "create", "validate"])
def test_one_503_on_any_hub_call_is_retried(hub, api, model_copy, route):
    pattern = r"^POST /api/validate-yaml" if route == "validate" else route
    fault = hub.inject_fault(pattern, "503", times=1)
    write_safetensors_stub(model_copy / "extra.safetensors", {"x": ("F32", [64])})
    r = pusher(hub, model_copy).push_model(card=route == "validate")
    assert fault.hits == 1 and fault.times == 0 and r.committed and "extra.safetensors" in remote_files(api)


@pytest.mark.parametrize("case", ["401 on whoami", "404 on repo_info"])
def test_permanent_errors_are_not_retried(hub, api, model_copy, case):
    counter = hub.inject_fault("whoami" if case.startswith("401") else "info", "stall", times=10, stall_s=0)  # counts requests
    if case.startswith("401"):
        with pytest.raises(TokenPermissionError, match="rejected the token"):
            pusher(hub, model_copy, token="hf_FakeUnknownToken0000000000000000009").push_model(card=False)
    else:
        assert not pusher(hub, model_copy).push_model(card=False, dry_run=True).plan.repo_exists
    assert counter.hits == 1


def test_persistent_faults_fail_cleanly(hub, api, model_copy):
    first = pusher(hub, model_copy).push_model(card=False)
    write_safetensors_stub(model_copy / "extra.safetensors", {"x": ("F32", [64])})
    hub.inject_fault("commit", "503", times=1000)
    with pytest.raises(HfHubHTTPError) as ei:
        pusher(hub, model_copy, retry_total_s=2).push_model(card=False)
    assert "previous commit" in str(ei.value) and ei.value.response.status_code == 503
    hub.faults.clear()
    assert head(api) == first.commit_oid and "extra.safetensors" not in remote_files(api)


def test_failed_first_publish_leaves_no_empty_repo(hub, api, model_copy):
    hub.inject_fault("commit", "503", times=1000)
    with pytest.raises(HfHubHTTPError):
        pusher(hub, model_copy, retry_total_s=2).push_model(card=False)
    hub.faults.clear()
    assert not api.repo_exists(REPO)  # the repo this push created was removed with the failure


def test_card_links_the_demo_space(hub, api, model_copy):
    r = pusher(hub, model_copy).push_model(space_id="alice/tiny-demo")
    card = (Path(api.hf_hub_download(REPO, "README.md"))).read_text()
    assert "alice/tiny-demo" in card and r.committed


def test_401_fails_at_once(hub, api, model_copy):
    with pytest.raises(TokenPermissionError, match="rejected the token"):
        pusher(hub, model_copy, token="hf_FakeUnknownToken0000000000000000009").push_model(card=False)


# -- permissions and visibility --------------------------------------------------------------------

def test_read_only_token_refused_before_any_upload(hub, api, model_copy):
    with pytest.raises(TokenPermissionError, match="read-only"):
        pusher(hub, model_copy, token=ALICE_READ).push_model()
    assert not api.repo_exists(REPO)


def test_foreign_namespace_refused_before_any_upload(hub, api, model_copy):
    with pytest.raises(TokenPermissionError, match="cannot write to the namespace 'bob'"):
        pusher(hub, model_copy, repo="bob/stolen").push_model()
    assert not HfApi(endpoint=hub.endpoint, token=BOB_WRITE).repo_exists("bob/stolen")


def test_bare_repo_name_gets_the_token_user(hub, api, model_copy):
    r = pusher(hub, model_copy, repo="just-a-name").push_model(card=False)
    assert r.repo_id == "alice/just-a-name" and api.repo_exists("alice/just-a-name")


def test_private_repo_is_invisible_anonymously(hub, api, model_copy):
    pusher(hub, model_copy, private=True).push_model(card=False)
    assert api.repo_info(REPO).private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=False).repo_info(REPO)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=BOB_WRITE).repo_info(REPO)


# -- a file that changes under our feet, a repo that moves -----------------------------------------

@pytest.mark.parametrize("stream,name", [(False, "generation_config.json"), (True, "generation_config.json"),
                                         (False, "model.safetensors"), (True, "model.safetensors")])
def test_file_modified_between_hashing_and_upload_is_an_error(hub, api, model_copy, monkeypatch, stream, name):
    if stream: monkeypatch.setattr(publish_files, "_SNAPSHOT_BYTES", 0)
    first = pusher(hub, model_copy).push_model(card=False)
    target = model_copy / name
    with open(target, "ab") as f: f.write(b" ")  # a change to publish
    def meddle(ev):
        if ev.data.get("step") == "planned":
            with open(target, "ab") as f: f.write(b" ")
    with pytest.raises(PublishError, match="changed on disk"):
        pusher(hub, model_copy, progress=meddle).push_model(card=False)
    assert head(api) == first.commit_oid


def test_repo_moved_meanwhile_is_a_clear_error(hub, api, model_copy):
    first = pusher(hub, model_copy).push_model(card=False)
    (model_copy / "generation_config.json").write_text('{"b": 2}')
    other = {}
    def someone_else(ev):
        if ev.data.get("step") == "planned":
            other["oid"] = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE).upload_file(
                path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=REPO).oid
    with pytest.raises(PublishError, match="moved"):
        pusher(hub, model_copy, progress=someone_else).push_model(card=False)
    assert head(api) == other["oid"] != first.commit_oid


# -- bad inputs: error and nothing on the hub changed ----------------------------------------------

def _bad_empty(d, tmp): shutil.rmtree(d); d.mkdir(); return {}
def _bad_no_config(d, tmp): (d / "config.json").unlink(); return {}
def _bad_llama(d, tmp): (d / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})); return {}
def _bad_truncated(d, tmp):
    p = d / "model.safetensors"; b = p.read_bytes(); p.write_bytes(b[: len(b) // 2]); return {}
def _bad_missing_shard(d, tmp):
    shutil.rmtree(d); make_fake_voxtral_folder(d, sparse_bytes=4096, shards=2); (d / "model-00002-of-00002.safetensors").unlink(); return {}
def _bad_outside_symlink(d, tmp):
    outside = tmp / "outside.json"; outside.write_text("{}"); (d / "chat_template.json").symlink_to(outside); return {}
def _bad_no_tekken(d, tmp): (d / "tekken.json").unlink(); return {}
def _bad_yaml(d, tmp):
    p = tmp / "cfg.yaml"; p.write_text("a: [1, 2\nb: :"); return {"training_config": p}
def _bad_json(d, tmp):
    p = tmp / "results.json"; p.write_text('{"eval_wer": 0.1,'); return {"results": p}
def _bad_nan(d, tmp):
    p = tmp / "results.json"; p.write_text('{"eval_wer": NaN}'); return {"results": p}

@pytest.mark.parametrize("make_bad", [_bad_empty, _bad_no_config, _bad_llama, _bad_truncated, _bad_missing_shard,
                                      _bad_outside_symlink, _bad_no_tekken, _bad_yaml, _bad_json, _bad_nan])
@pytest.mark.parametrize("existing", [False, True])
def test_bad_inputs_change_nothing_on_the_hub(hub, api, model_copy, tmp_path, make_bad, existing):
    before = pusher(hub, model_copy).push_model(card=False).commit_oid if existing else None
    kwargs = make_bad(model_copy, tmp_path)
    with pytest.raises((InvalidModelError, InvalidInputError)):
        pusher(hub, model_copy).push_model(**kwargs)
    assert head(api) == before


def test_results_as_objects_and_nan_objects(hub, api, model_copy, training_fixtures):
    from voxtral_deploy.artifacts import load_training_results, load_training_config
    res = load_training_results(training_fixtures["trainer_state"])
    r = pusher(hub, model_copy).push_model(load_training_config(training_fixtures["training_config"]), res, dry_run=True)
    assert "training_results.json" in r.plan.add
    res.metrics["eval_wer"] = float("nan")
    with pytest.raises(InvalidInputError, match="nan"):
        pusher(hub, model_copy).push_model(None, res)
    with pytest.raises(InvalidInputError):
        pusher(hub, model_copy).push_model(None, {"eval_wer": float("inf")})
    assert head(api) is None


# -- the 4-bit variant ---------------------------------------------------------------------------------

@pytest.mark.slow  # quantizes, publishes, downloads and transcribes with the 4-bit model
def test_int4_variant_round_trip(hub, api, tmp_path, clip_path, training_fixtures):
    pytest.importorskip("bitsandbytes")
    from voxtral_deploy.testing import make_tiny_voxtral
    model = make_tiny_voxtral(tmp_path / "q-model", quantizable=True)
    r = pusher(hub, model).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"], quantize="int4")
    assert r.committed and r.quantized and r.quantized[0]["subfolder"] == "int4" and r.quantized[0]["size"] > 0
    files = remote_files(api)
    assert {"int4/config.json", "int4/model.safetensors", "int4/tekken.json"} <= files and "model.safetensors" in files
    assert n_commits(api) == 2  # one commit for everything
    assert "int4" in r.card
    snap = Path(snapshot_download(REPO, endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "snap"))
    cfg = json.loads((snap / "int4" / "config.json").read_text())
    assert cfg["quantization_config"]["bnb_4bit_quant_type"] == "nf4" and cfg["quantization_config"]["bnb_4bit_use_double_quant"]
    from transformers import VoxtralForConditionalGeneration
    m = VoxtralForConditionalGeneration.from_pretrained(snap, subfolder="int4", device_map="cpu")
    assert any(type(mod).__name__ == "Linear4bit" for mod in m.modules())
    assert not any(type(mod).__name__ == "Linear4bit" for mod in m.model.audio_tower.modules())
    from voxtral_deploy.inference import Transcriber
    out = Transcriber.from_pretrained(snap, subfolder="int4").transcribe(str(clip_path))
    assert isinstance(out.text, str)
    # unchanged weights: the variant is reused, not re-made, and nothing is committed
    again = pusher(hub, model).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"], quantize="int4")
    assert not again.committed and "quantize" not in again.timings
    # without quantize, the stale variant goes
    r3 = pusher(hub, model).push_model(training_fixtures["training_config"], training_fixtures["trainer_state"])
    assert r3.committed and all(f.startswith("int4/") or f == "README.md" for f in r3.files_deleted + r3.files_uploaded)
    assert not any(f.startswith("int4/") for f in remote_files(api))


def test_missing_bitsandbytes_is_missing_extra(hub, model_copy, monkeypatch):
    import builtins
    from voxtral_deploy.core import MissingExtraError
    real = builtins.__import__
    def no_bnb(name, *a, **k):
        if name == "bitsandbytes" or name.startswith("bitsandbytes."): raise ImportError("no bitsandbytes")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_bnb)
    with pytest.raises(MissingExtraError, match=r"voxtral-deploy\[quant\]"):
        pusher(hub, model_copy).push_model(quantize="int4")


# -- the canary ----------------------------------------------------------------------------------------

def test_token_never_written_or_printed(hub, api, model_copy, training_fixtures, tmp_path, cache_file, capsys, caplog, monkeypatch):
    monkeypatch.setattr(publish_files, "_SNAPSHOT_BYTES", 0)
    caplog.set_level(logging.DEBUG)
    cfg = json.loads(Path(training_fixtures["training_config"]).read_text()) if str(training_fixtures["training_config"]).endswith(".json") else {}
    cfg.update(hub_token=ALICE_WRITE, note=f"pushed with {ALICE_WRITE}")
    events = []
    p = pusher(hub, model_copy, cache=cache_file, progress=lambda ev: events.append(str(ev)) or PrintProgress()(ev))
    r = p.push_model(cfg, training_fixtures["trainer_state"])
    hub.inject_fault("commit", "500", times=1)
    (model_copy / "generation_config.json").write_text("{}")
    pusher(hub, model_copy, cache=cache_file, progress=PrintProgress()).push_model(cfg, training_fixtures["trainer_state"])
    with pytest.raises(TokenPermissionError) as ei:
        pusher(hub, model_copy, repo="bob/x").push_model()
    snap = Path(snapshot_download(REPO, endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "snap"))
    out = capsys.readouterr()
    texts = [out.out, out.err, caplog.text, "\n".join(events), str(ei.value), repr(r), json.dumps(r.to_dict()), r._repr_markdown_()]
    assert cache_file.exists() and json.loads((snap / "training_config.json").read_text())["hub_token"] == MASK
    assert snap.is_relative_to(tmp_path)  # the downloaded files are scanned with the rest of tmp_path (all but the hub's own storage)
    assert_no_secrets(*texts, tmp_path, secrets=[ALICE_WRITE, "hf_FakeAlice"], ignore=lambda f: f.relative_to(tmp_path).parts[:1] == ("hub",))


def test_progress_reports_steps_and_bytes(hub, api, model_copy, monkeypatch):
    monkeypatch.setattr(publish_files, "_SNAPSHOT_BYTES", 0)
    events = []
    r = pusher(hub, model_copy, progress=events.append).push_model(card=False)
    steps = [e.data.get("step") for e in events if e.data.get("step")]
    assert steps[:2] == ["hashing", "hashed"] and "planned" in steps and "committing" in steps
    byte_events = [e for e in events if e.status == "progress"]
    assert byte_events and byte_events[-1].total == r.plan.bytes_to_send and byte_events[-1].current > 0
    assert events[0].status == "start" and events[-1].status == "done" and events[-1].data["commit"] == r.commit_oid


# -- a measured evaluation ---------------------------------------------------------------------------

def _besides_missing_info(warnings: list[str]) -> list[str]:
    "The warnings other than the one naming what the card leaves as [More Information Needed]."
    return [w for w in warnings if not w.startswith("The card will say [More Information Needed]")]


def test_publish_with_evaluation_then_download_results(hub, api, model_copy, training_fixtures, tmp_path, cache_file):
    pytest.importorskip("jiwer"); pytest.importorskip("whisper_normalizer")
    import dataclasses
    from huggingface_hub import ModelCard
    from test_evaluate import TEXTS, _audiofolder
    from voxtral_deploy.evaluate import EVAL_RESULTS_FILE, PREDICTIONS_FILE, evaluate
    cfg, state = training_fixtures["training_config"], training_fixtures["trainer_state"]
    ev = evaluate(model_copy, _audiofolder(tmp_path / "words"), language="en", batch_size=2, max_new_tokens=8)
    eval_files = {EVAL_RESULTS_FILE, PREDICTIONS_FILE}
    planned = plan_push(model_copy, REPO, cfg, state, token=ALICE_WRITE, endpoint=hub.endpoint, evaluation=ev)
    assert eval_files <= set(planned.add) and head(api) is None
    with pytest.raises(InvalidInputError, match="EvalResult that evaluate"):
        pusher(hub, model_copy).push_model(cfg, state, evaluation={"wer": 12.0})
    assert head(api) is None
    r = pusher(hub, model_copy, cache=cache_file).push_model(cfg, state, evaluation=ev)
    assert r.committed and eval_files <= set(r.files_uploaded) and n_commits(api) == 2 and not _besides_missing_info(r.warnings)
    dl = lambda f, d="dl": Path(api.hf_hub_download(REPO, f, cache_dir=tmp_path / d)).read_bytes()
    saved = ev.save(tmp_path / "saved")  # the published files are the bytes `save` writes
    assert dl(EVAL_RESULTS_FILE) == saved[0].read_bytes() and dl(PREDICTIONS_FILE) == saved[1].read_bytes()
    results = json.loads(dl(EVAL_RESULTS_FILE))
    assert results["wer"] == ev.wer and results["dataset"]["num_samples"] == len(TEXTS) and results["rtfx"] > 0
    assert [json.loads(l)["reference"] for l in dl(PREDICTIONS_FILE).decode().splitlines()] == TEXTS
    card = ModelCard.load(api.hf_hub_download(REPO, "README.md", cache_dir=tmp_path / "dl"))
    assert "## Evaluation" in card.text and {e.metric_type for e in card.data.eval_results} == {"wer", "cer"}
    assert card.data.eval_results[0].source_url == f"{hub.endpoint}/{REPO}/blob/main/{EVAL_RESULTS_FILE}"
    # the same evaluation again: no commit, nothing sent
    again = pusher(hub, model_copy, cache=cache_file).push_model(cfg, state, evaluation=ev)
    assert not again.committed and again.bytes_sent == 0 and n_commits(api) == 2 and eval_files <= set(again.files_unchanged)
    # without an evaluation: the eval files stay (only the card changes), no warning since the model is unchanged
    plain = pusher(hub, model_copy, cache=cache_file).push_model(cfg, state)
    assert plain.committed and plain.files_uploaded == ["README.md"] and plain.files_deleted == [] and not _besides_missing_info(plain.warnings)
    assert eval_files <= remote_files(api) and "## Evaluation" not in plain.card
    # a new evaluation replaces them
    newer = dataclasses.replace(ev, created="2030-01-01T00:00:00Z")
    r2 = pusher(hub, model_copy, cache=cache_file).push_model(cfg, state, evaluation=newer)
    assert sorted(r2.files_uploaded) == ["README.md", EVAL_RESULTS_FILE]  # the predictions did not change
    assert json.loads(dl(EVAL_RESULTS_FILE, "dl2"))["created"] == "2030-01-01T00:00:00Z"
    # the model changes and no evaluation comes with it: the old results stay, and the result says they are stale
    gen = json.loads((model_copy / "generation_config.json").read_text())
    (model_copy / "generation_config.json").write_text(json.dumps({**gen, "max_new_tokens": 77}))
    stale = pusher(hub, model_copy, cache=cache_file).push_model(cfg, state)
    assert "generation_config.json" in stale.files_uploaded and stale.files_deleted == [] and eval_files <= remote_files(api)
    assert any("measured an earlier version" in w and EVAL_RESULTS_FILE in w for w in stale.warnings)
