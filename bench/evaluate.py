"""Evaluation throughput: `voxtral_deploy.evaluate` vs a plain loop written the way the Open ASR Leaderboard's
transformers runner works (batches of 8 in dataset order, `generate`, `batch_decode`, the same normalizer), and vs
batch 1; same model, same clips, same run. Figures: clips/s and RTFx (audio seconds per wall second).

    python bench/evaluate.py [--model DIR] [--clips 48] [--reps 2]

Default model: the trained tiny Voxtral (`speech_fixture.trained_tiny_voxtral`), on its held-out clips (espeak-ng),
else a random tiny Voxtral on tones. The loop passes the audio chunk the model takes (`audio_chunk_kwargs`: 4 s for the
tiny model, the processor's 30 s defaults for real Voxtral), as any correct runner for that model must, with the
processor as transformers loads it (`evaluate`'s `Transcriber` trims the feature extraction of a chunk's zero
padding, `trim_feature_padding`; the features are the same).
"""
import os
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from voxtral_deploy.evaluate import load_eval_set, run_model, text_normalizer
from voxtral_deploy.inference import Transcriber, audio_chunk_kwargs
from voxtral_deploy.speech_fixture import make_heldout_audiofolder, trained_tiny_voxtral
from voxtral_deploy.testing import make_clip, make_tiny_voxtral

ROOT = Path(__file__).resolve().parents[1]
TRAINED = trained_tiny_voxtral()
WORDS = "zero one two three four five six seven eight nine".split()


def eval_folder(d: Path, n: int) -> Path:
    "The first n/3 clips of each held-out group when espeak-ng is there; else tones and noise with digit transcripts."
    try: return make_heldout_audiofolder(d, per_group=max(1, n // 3))
    except Exception: pass
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 5))))
        try: make_clip(d / f"c{i}.wav", text=text)
        except Exception: make_clip(d / f"c{i}.wav", seconds=float(rng.uniform(0.5, 3.0)))
        rows.append({"file_name": f"c{i}.wav", "text": text})
    (d / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def leaderboard_loop(t: Transcriber, clips, batch: int = 8, max_new_tokens: int = 64) -> list[str]:
    "The leaderboard runner's shape: fixed batches in dataset order, processor -> generate -> batch_decode -> normalize."
    norm, out = text_normalizer("en"), []
    for b in range(0, len(clips), batch):
        arrays = [c.audio for c in clips[b:b + batch]]
        inputs = t.processor.apply_transcription_request(language="en", audio=arrays, format=["WAV"] * len(arrays),
                                                         model_id=t.model_id, sampling_rate=16000,
                                                         audio_kwargs=audio_chunk_kwargs(t.processor, t.model)).to(t.model.device, dtype=t.model.dtype)
        with torch.inference_mode():
            ids = t.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        out += [norm(s) for s in t.processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = a.model or (TRAINED if (TRAINED / "config.json").is_file() else make_tiny_voxtral(tmp / "tiny"))
        es = load_eval_set(eval_folder(tmp / "set", a.clips))
        t = Transcriber.from_pretrained(model, device="cpu")
        from transformers import AutoProcessor  # the loop's processor is the one transformers loads, as the runner's is
        plain = Transcriber(t.model, AutoProcessor.from_pretrained(str(model)), model_id=t.model_id, device="cpu")
        leaderboard_loop(plain, es.clips[:8])  # warm-up
        times = {"evaluate (batch 8)": [], "leaderboard loop (batch 8)": [], "evaluate (batch 1)": []}
        for _ in range(a.reps):
            s = time.perf_counter(); run_model(t, es, language="en", batch_size=8, max_new_tokens=64); times["evaluate (batch 8)"].append(time.perf_counter() - s)
            s = time.perf_counter(); leaderboard_loop(plain, es.clips, 8); times["leaderboard loop (batch 8)"].append(time.perf_counter() - s)
            s = time.perf_counter(); run_model(t, es, language="en", batch_size=1, max_new_tokens=64); times["evaluate (batch 1)"].append(time.perf_counter() - s)
        med = {k: statistics.median(v) for k, v in times.items()}
        audio = es.audio_seconds
        print(f"model: {model if a.model or TRAINED.is_dir() else 'random tiny'}; {len(es)} clips, {audio:.1f} s of audio; torch threads {torch.get_num_threads()}")
        for k, v in med.items():
            print(f"  {k:28s} {v:7.2f} s  {len(es) / v:6.2f} clips/s  RTFx {audio / v:6.1f}")
        base = med["leaderboard loop (batch 8)"]
        print(f"throughput evaluate/leaderboard loop: {base / med['evaluate (batch 8)']:.2f}x (goal >= 1.0x); "
              f"batch 8 vs batch 1: {med['evaluate (batch 1)'] / med['evaluate (batch 8)']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
