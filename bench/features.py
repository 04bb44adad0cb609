"""Log-mel features without the padding's cost: `apply_transcription_request` with the processor as transformers
loads it against the same processor after `trim_feature_padding` (what `Transcriber.from_pretrained` uses), on clips
of 2, 5, 10 and 30 s, one clip and a batch of 8; then whole transcriptions (`Transcriber.transcribe` and
`transcribe_batch`) with each processor. Same run, same clips, reps interleaved; every pair of feature tensors is
checked bit for bit equal, and every pair of transcripts equal.

    python bench/features.py [--reps 7] [--model DIR]

Default model: a random tiny Voxtral (`voxtral_deploy.testing.make_tiny_voxtral`) with the real Voxtral feature
extractor (128 mel bins, hop 160) and 30 s chunks, as every Voxtral release has.
"""
import os
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import argparse, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from voxtral_deploy.inference import Transcriber, audio_chunk_kwargs
from voxtral_deploy.testing import make_tiny_voxtral


def interleaved(stock_fn, fast_fn, reps: int) -> tuple[float, float]:
    "Median seconds of each function over `reps` rounds, the two taking turns in every round."
    times = ([], [])
    for _ in range(reps):
        for fn, out in zip((stock_fn, fast_fn), times):
            s = time.perf_counter(); fn(); out.append(time.perf_counter() - s)
    return statistics.median(times[0]), statistics.median(times[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--model", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or make_tiny_voxtral(Path(tmp) / "tiny")
        fast = Transcriber.from_pretrained(model, device="cpu")
        from transformers import AutoProcessor
        stock = Transcriber(fast.model, AutoProcessor.from_pretrained(str(model)), model_id=fast.model_id, device="cpu")
        assert type(stock.processor.feature_extractor).__name__ == "WhisperFeatureExtractor"
        assert type(fast.processor.feature_extractor).__name__ == "TrimmedWhisperFeatureExtractor"
        kw = audio_chunk_kwargs(fast.processor, fast.model)
        rng = np.random.default_rng(0)
        print(f"model: {'random tiny Voxtral' if a.model is None else model}; chunk {kw['pad_to_multiple_of'] / 16000:g} s; "
              f"torch threads {torch.get_num_threads()}; median of {a.reps} interleaved reps")
        print(f"{'clips':>16s} {'stock':>9s} {'trimmed':>9s} {'ratio':>7s}")
        for seconds in (2, 5, 10, 30):
            for n in (1, 8):
                arrays = [(rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32) for _ in range(n)]
                feats = {}
                def call(t):
                    feats[t is fast] = t.processor.apply_transcription_request(
                        language="en", audio=arrays, format=["WAV"] * n, model_id=t.model_id, sampling_rate=16000,
                        audio_kwargs=dict(kw))["input_features"]
                call(stock); call(fast)
                assert torch.equal(feats[False], feats[True]), f"features differ at {seconds} s x {n}"
                s, f = interleaved(lambda: call(stock), lambda: call(fast), a.reps)
                print(f"{f'{seconds} s x {n}':>16s} {s * 1e3:7.1f}ms {f * 1e3:7.1f}ms {s / f:6.2f}x")
        clip = (rng.standard_normal(32000) * 0.1).astype(np.float32)
        batch = [(rng.standard_normal(int(s * 16000)) * 0.1).astype(np.float32) for s in (1.5, 2, 2, 2.5, 3, 2, 1, 2)]
        one = lambda t: t.transcribe((clip, 16000), language="en", max_new_tokens=32).text
        eight = lambda t: t.transcribe_batch(batch, language="en", max_new_tokens=32)
        assert one(stock) == one(fast) and eight(stock) == eight(fast), "the transcripts differ"
        for name, fn in (("transcribe, 2 s clip, 32 tokens", one), ("transcribe_batch, 8 clips of 1-3 s, 32 tokens", eight)):
            s, f = interleaved(lambda: fn(stock), lambda: fn(fast), a.reps)
            print(f"{name}: stock {s * 1e3:.1f} ms, trimmed {f * 1e3:.1f} ms, {s / f:.2f}x; the same text")


if __name__ == "__main__":
    sys.exit(main())
