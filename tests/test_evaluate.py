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


# --- the trained tiny Voxtral on its held-out set ----------------------------------------------------------------

# The script measured 7.14% (language en; 7.14% auto) on all 120 clips; `evaluate` measures 7.14% raw and 7.79% with
# the leaderboard's English normaliser (which writes spelled numbers as digits: "four eight" -> "48", so one wrong digit
# costs the whole number), the unseen voice 15.05%. The goal is <= 10%, and this guards it.
TRAINED_WER_BOUND = 10.0
UNSEEN_VOICE_WER_BOUND = 20.0

@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    "All 120 held-out clips (40 per group, one group in a voice never trained on), rendered with espeak-ng."
    import shutil
    if shutil.which("espeak-ng") is None: pytest.skip("the held-out speech clips need espeak-ng")
    from voxtral_deploy.speech_fixture import make_heldout_audiofolder
    return make_heldout_audiofolder(tmp_path_factory.mktemp("heldout") / "tiny-heldout")


def _group_wer(preds, folder: Path, group: str) -> float:
    meta = {json.loads(l)["file_name"]: json.loads(l)["group"] for l in (folder / "metadata.jsonl").read_text().splitlines()}
    groups = {**meta, **{Path(k).stem: v for k, v in meta.items()}}
    rows = [p for p in preds if groups[p["id"]] == group]
    norm = text_normalizer("en")
    return 100 * jiwer.wer([norm(p["reference"]) for p in rows], [norm(p["hypothesis"]) for p in rows]), len(rows)


def test_trained_tiny_voxtral_transcribes_its_heldout_set(heldout, hub, api, tmp_path):
    "WER on 120 held-out clips given as an audiofolder and as a dataset repo on the local hub; jiwer agrees."
    from huggingface_hub import CommitOperationAdd
    from voxtral_deploy.speech_fixture import trained_tiny_voxtral
    res = evaluate(trained_tiny_voxtral(), heldout, language="en", batch_size=8)
    out = res.save(tmp_path / "local")
    saved = json.loads(out[0].read_text())
    preds = [json.loads(l) for l in out[1].read_text().splitlines()]
    norm = text_normalizer("en")
    assert saved["dataset"]["num_samples"] == len(preds) == 120
    assert saved["wer"] == round(100 * jiwer.wer([norm(p["reference"]) for p in preds], [norm(p["hypothesis"]) for p in preds]), 2)
    # Issue 13's goal is <= 10%; the committed fixture measures 7.79% here (7.14% raw; README.md there).
    assert saved["wer"] <= TRAINED_WER_BOUND, res.worst(5)
    unseen, n = _group_wer(preds, heldout, "unseen_voice")
    assert n == 40 and unseen <= UNSEEN_VOICE_WER_BOUND, unseen  # the voice (accent and variant) never heard in training: 15.05%
    # the same clips as a dataset repo on the local hub (Hub-style parquet), loaded with `datasets`
    api.create_repo("alice/tiny-heldout", repo_type="dataset")
    api.create_commit("alice/tiny-heldout", [CommitOperationAdd("data/test-00000-of-00001.parquet", _parquet_bytes(heldout, "text"))],
                      commit_message="held-out set", repo_type="dataset")
    from_hub = evaluate(trained_tiny_voxtral(), "alice/tiny-heldout", language="en", batch_size=8, endpoint=hub.endpoint,
                        token=ALICE_WRITE)
    assert from_hub.model.hypotheses == res.model.hypotheses
    hub_saved = json.loads(from_hub.save(tmp_path / "hub")[0].read_text())
    assert hub_saved["wer"] == saved["wer"] and hub_saved["dataset"]["revision"]


def test_random_tiny_voxtral_scores_near_100_on_the_heldout_set(heldout, tiny_model_dir):
    res = evaluate(tiny_model_dir, load_eval_set(heldout, max_samples=60), language="en", batch_size=8, max_new_tokens=12)
    assert res.wer >= 90
