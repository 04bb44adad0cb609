"""Model sharding end to end: publish with max_shard_size to the local hub, load with from_pretrained, transcribe."""
import json
import torch
from pathlib import Path

import pytest
from huggingface_hub import snapshot_download

from conftest import ALICE_WRITE

REPO = "alice/voxtral-sharded"


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    "A private toolkit cache (hash cache and sharded folders) for this test."
    monkeypatch.setenv("VOXTRAL_DEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_sharded_publish_loads_and_transcribes_like_unsharded(hub, api, tiny_model_dir, clip_path, tmp_path, cache_env):
    from voxtral_deploy.inference import Transcriber
    from voxtral_deploy.publish import HuggingFacePusher
    push = lambda size: HuggingFacePusher(tiny_model_dir, REPO, api=api, progress=False, max_shard_size=size).push_model()
    first = push("100kB")
    assert first.committed
    files = set(api.list_repo_files(REPO))
    shards = sorted(f for f in files if f.startswith("model-"))
    assert len(shards) >= 3 and "model.safetensors.index.json" in files and "model.safetensors" not in files
    index = json.loads(Path(api.hf_hub_download(REPO, "model.safetensors.index.json", cache_dir=tmp_path / "dl")).read_text())
    assert sorted(set(index["weight_map"].values())) == shards
    sizes = {f.path: f.size for f in api.list_repo_tree(REPO) if f.path in shards}
    assert index["metadata"]["total_size"] < sum(sizes.values())  # the data plus one header per shard

    again = push("100kB")  # unchanged model, same size: nothing is sent, no commit
    assert not again.committed and again.bytes_sent == 0
    import shutil; shutil.rmtree(cache_env / "shards")  # even rebuilt from scratch the shards are the same bytes
    assert not push("100kB").committed

    snap = snapshot_download(REPO, endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "snap")
    sharded_tr, plain_tr = Transcriber.from_pretrained(snap), Transcriber.from_pretrained(tiny_model_dir)
    plain_weights = plain_tr.model.state_dict()
    assert all(torch.equal(t, plain_weights[k]) for k, t in sharded_tr.model.state_dict().items())  # the very same weights
    sharded = sharded_tr.transcribe(str(clip_path), max_new_tokens=12)
    plain = plain_tr.transcribe(str(clip_path), max_new_tokens=12)
    assert sharded.text == plain.text and [t for t, _ in sharded.token_confidences] == [t for t, _ in plain.token_confidences]
    # the probabilities agree to float32 rounding: the same weights at other memory addresses may take another SIMD
    # path (a clean-clone run once differed in the 9th digit)
    assert sharded.token_confidences and all(abs(a - b) <= 1e-6 * max(a, b) for (_, a), (_, b) in zip(sharded.token_confidences, plain.token_confidences))

    back = push(None)  # publishing unsharded again replaces the shards by one file
    assert back.committed and "model.safetensors" in back.files_uploaded
    assert not [f for f in api.list_repo_files(REPO) if f.startswith("model-") or f.endswith(".index.json")]


def test_bad_shard_size_is_refused_before_any_write(hub, api, tiny_model_dir, cache_env):
    from voxtral_deploy.core import InvalidInputError
    from voxtral_deploy.publish import HuggingFacePusher
    with pytest.raises(InvalidInputError, match="not a size"):
        HuggingFacePusher(tiny_model_dir, REPO, api=api, progress=False, max_shard_size="huge").push_model()
    assert not api.repo_exists(REPO)
