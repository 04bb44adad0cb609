"""Full-size Voxtral-Mini-3B on a GPU: load time and real-time factor on a 30 s clip.

Weights can't be downloaded here, so the model is the default `VoxtralConfig` (Voxtral-Mini-3B, 4.68 B
parameters) with random bf16 weights, saved with `save_pretrained` and loaded back through the same
`Transcriber.from_pretrained` the demo Space uses. The tokenizer is real-size: mistral-common's bundled
131k-vocab tekken file, given Voxtral's special tokens and audio section. Random weights mean the text
is meaningless and generation runs to `max_new_tokens`: the figures are upper bounds on decode time.

    python bench/fullsize.py                 # needs a CUDA GPU; prints a table, writes JSON to $OUT or ./bench/out
    python bench/fullsize.py --scale tiny    # the same code path on CPU with a tiny config (a check of the script)
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path


def full_tekken() -> dict:
    "mistral-common's 131k-vocab tekken, turned into a Voxtral (v7, audio) tokenizer file."
    import mistral_common
    from voxtral_deploy.testing import tiny_tekken
    base = json.loads((Path(mistral_common.__file__).parent / "data" / "tekken_240911.json").read_text())
    tiny = tiny_tekken()
    n_special = base["config"]["default_num_special_tokens"]
    named = {t["rank"]: t["token_str"] for t in tiny["special_tokens"] if not t["token_str"].startswith("<SPECIAL_")}
    return {"config": {**base["config"], "version": "v7"}, "vocab": base["vocab"],
            "special_tokens": [{"rank": i, "token_str": named.get(i, f"<SPECIAL_{i}>"), "is_control": True} for i in range(n_special)],
            "audio": tiny["audio"]}


def build(dest: Path, scale: str, device: str):
    import torch
    from transformers import VoxtralConfig, VoxtralForConditionalGeneration
    from voxtral_deploy.testing import make_tiny_voxtral
    tiny = make_tiny_voxtral(dest / "tiny-processor")
    if scale == "full":
        cfg = VoxtralConfig()
        (dest / "model").mkdir(parents=True, exist_ok=True)
        (dest / "model" / "tekken.json").write_text(json.dumps(full_tekken()))
    else:
        cfg = VoxtralConfig.from_pretrained(tiny)
        (dest / "model").mkdir(parents=True, exist_ok=True)
        (dest / "model" / "tekken.json").write_text((tiny / "tekken.json").read_text())
    (dest / "model" / "processor_config.json").write_text((tiny / "processor_config.json").read_text())
    t = time.perf_counter()
    with torch.device(device):
        model = VoxtralForConditionalGeneration(cfg).to(torch.bfloat16 if device == "cuda" else torch.float32)
    init_s = time.perf_counter() - t
    n = sum(p.numel() for p in model.parameters())
    t = time.perf_counter(); model.save_pretrained(dest / "model"); save_s = time.perf_counter() - t
    del model
    if device == "cuda": torch.cuda.empty_cache()
    return dest / "model", n, init_s, save_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--seconds", type=float, default=30.0, help="clip length")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    import torch
    device = "cuda" if args.scale == "full" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("No CUDA GPU here: the full-size benchmark needs one (use --scale tiny to check the script on CPU).")
        return 0
    from voxtral_deploy.inference import Transcriber
    from voxtral_deploy.testing import make_clip
    with tempfile.TemporaryDirectory(dir=args.workdir) as d:
        d = Path(d)
        model_dir, n_params, init_s, save_s = build(d, args.scale, device)
        clip = make_clip(d / "clip.wav", args.seconds, kind="noise")
        if device == "cuda": torch.cuda.synchronize()
        t = time.perf_counter(); tr = Transcriber.from_pretrained(model_dir, device=device); load_s = time.perf_counter() - t
        tr.transcribe(clip, max_new_tokens=8)  # warm-up (kernels, allocator)
        runs = []
        for _ in range(3):
            if device == "cuda": torch.cuda.synchronize()
            t = time.perf_counter(); res = tr.transcribe(clip, max_new_tokens=args.max_new_tokens); runs.append((time.perf_counter() - t, res.num_tokens))
        best_s, tokens = min(runs)
        out = {"scale": args.scale, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "parameters": n_params, "dtype": str(tr.dtype), "random_init_s": round(init_s, 2), "save_s": round(save_s, 2),
               "load_s": round(load_s, 2), "clip_s": args.seconds, "transcribe_s": round(best_s, 3), "new_tokens": tokens,
               "rtf": round(best_s / args.seconds, 4), "tokens_per_s": round(tokens / best_s, 1),
               "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}
    outdir = Path(os.environ.get("OUT") or Path(__file__).parent / "out"); outdir.mkdir(parents=True, exist_ok=True)
    (outdir / f"fullsize-{args.scale}.json").write_text(json.dumps(out, indent=2))
    for k, v in out.items(): print(f"{k:>16}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
