"""The evaluation stage end to end: eval sets from an audiofolder, a saved dataset and a dataset repo on the local hub
(loaded with `datasets` through the real huggingface_hub client), a real tiny Voxtral, WER checked against jiwer."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import ALICE_WRITE

jiwer = pytest.importorskip("jiwer")
from voxtral_deploy.core import InvalidInputError
from voxtral_deploy.evaluate import EvalResult, evaluate, load_eval_set, text_normalizer
from voxtral_deploy.testing import audiofolder_parquet as _parquet_bytes, make_eval_audiofolder

TEXTS = ["one two", "three", "four five six", "seven", "eight nine"]


def _audiofolder(root: Path, texts=TEXTS) -> Path:
    return make_eval_audiofolder(root, texts)


@pytest.fixture(scope="module")
def audiofolder(tmp_path_factory):
    return _audiofolder(tmp_path_factory.mktemp("eval") / "digits")


def test_audiofolder_saved_and_hub_dataset_give_the_same_set(audiofolder, hub, api, tmp_path):
    datasets = pytest.importorskip("datasets")
    from huggingface_hub import CommitOperationAdd
    api.create_repo("alice/digits-eval", repo_type="dataset")
    commit = api.create_commit("alice/digits-eval", [CommitOperationAdd("data/test-00000-of-00001.parquet", _parquet_bytes(audiofolder))],
                               commit_message="eval set", repo_type="dataset")
    from_hub = load_eval_set("alice/digits-eval", split="test", endpoint=hub.endpoint, token=ALICE_WRITE)
    assert (from_hub.source, from_hub.split, from_hub.revision) == ("hub", "test", commit.oid)
    local = load_eval_set(audiofolder)
    assert [c.reference for c in from_hub.clips] == [c.reference for c in local.clips] == TEXTS
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(from_hub.clips, local.clips))
    # the same data saved with `datasets` (what a training script often does)
    ds = datasets.load_dataset(str(Path(api.snapshot_download("alice/digits-eval", repo_type="dataset"))), split="test")
    ds.save_to_disk(str(tmp_path / "saved"))
    saved = load_eval_set(tmp_path / "saved", max_samples=3)
    assert saved.source == "saved" and [c.reference for c in saved.clips] == TEXTS[:3]
    # what is wrong, named with what exists
    with pytest.raises(InvalidInputError, match="has no split 'validation': it has test"):
        load_eval_set("alice/digits-eval", split="validation", endpoint=hub.endpoint, token=ALICE_WRITE)
    with pytest.raises(InvalidInputError, match="has no column 'text': its columns are audio, sentence"):
        load_eval_set("alice/digits-eval", text_column="text", endpoint=hub.endpoint, token=ALICE_WRITE)
    with pytest.raises(InvalidInputError, match="No dataset 'alice/missing'"):
        load_eval_set("alice/missing", endpoint=hub.endpoint, token=ALICE_WRITE)


def test_bad_eval_sets_fail_with_one_line(audiofolder, tmp_path):
    bad = _audiofolder(tmp_path / "bad", texts=["one", "two", "three"])
    (bad / "clip1.wav").write_bytes(b"not audio at all")
    with pytest.raises(InvalidInputError, match=r"1 of 3 rows could not be decoded \(clip1.wav\)"):
        load_eval_set(bad)
    assert load_eval_set(bad, max_failed_share=0.5).failed == ["clip1.wav"]
    (bad / "metadata.jsonl").write_text('{"file_name": "clip0.wav", "text": ""}\n')
    with pytest.raises(InvalidInputError, match="empty transcript"):
        load_eval_set(bad)
    (bad / "metadata.jsonl").write_text("")
    with pytest.raises(InvalidInputError, match="no rows"):
        load_eval_set(bad)
    with pytest.raises(InvalidInputError, match="longer than the 0.5 s cap"):
        load_eval_set(audiofolder, max_seconds=0.5)


def test_reported_wer_is_jiwers_on_the_saved_predictions(audiofolder, tiny_model_dir, tmp_path):
    res = evaluate(tiny_model_dir, audiofolder, language="en", batch_size=2, max_new_tokens=8)
    assert isinstance(res, EvalResult) and res.model.rtfx > 0
    out = res.save(tmp_path / "results")
    saved = json.loads(out[0].read_text())
    preds = [json.loads(l) for l in out[1].read_text().splitlines()]
    assert res.files() == {p.relative_to(tmp_path / "results").as_posix(): p.read_bytes() for p in out}  # what the publisher commits
    assert [p["reference"] for p in preds] == TEXTS and len(preds) == saved["dataset"]["num_samples"]
    norm = text_normalizer("en")
    assert saved["wer"] == round(100 * jiwer.wer([norm(p["reference"]) for p in preds], [norm(p["hypothesis"]) for p in preds]), 2)
    assert saved["wer_raw"] == round(100 * jiwer.wer([p["reference"] for p in preds], [p["hypothesis"] for p in preds]), 2)
    assert saved["wer"] >= 90  # random weights: text unrelated to the audio
    # batching changes nothing (greedy): batch 1 gives the same hypotheses
    again = evaluate(tiny_model_dir, load_eval_set(audiofolder), language="en", batch_size=1, max_new_tokens=8)
    assert again.model.hypotheses == res.model.hypotheses
    idx = res.model_index()
    assert {e["metric_type"] for e in idx} == {"wer", "cer"} and idx[0]["dataset_name"] == "digits"
