#!/usr/bin/env python
"""Train the tiny speech Voxtral test fixture (`tests/fixtures/tiny-voxtral-speech/`).

A real `VoxtralForConditionalGeneration` (~0.5 M parameters) with a real `VoxtralProcessor` and the hand-written
`tekken.json` of `voxtral_deploy.testing`, trained on synthetic espeak-ng speech (a 40-word vocabulary, 1-4 words per
clip, several voices, speeds and pitches, light noise) until it transcribes held-out clips, including a voice and speeds
it never heard, through the project's own inference path (`voxtral_deploy.inference.Transcriber`).

Everything is seeded: the data recipes, the noise, the initial weights and the batch order.

    nice -n 5 .venv/bin/python scripts/train_tiny_voxtral.py            # train, evaluate, write the fixture
    .venv/bin/python scripts/train_tiny_voxtral.py --export-heldout DIR  # held-out clips as an audiofolder
    .venv/bin/python scripts/train_tiny_voxtral.py --evaluate-only      # re-measure the committed model

Training speed: the saved model takes 30 s chunks (the only thing `apply_transcription_request` produces with its
default audio kwargs: `pad_to_multiple_of=480000`, `max_source_positions=3000`), but 30 s of mostly padding would make
the encoder spend ~90% of its time on silence. So phase 1 runs the very same modules on short inputs (the mel frames of
the speech plus padding, rounded to whole audio tokens, and the first positional embeddings); phase 2 fine-tunes on the
full 3000-frame input the inference path gives it. The log-mel features are computed once per clip.
"""
from __future__ import annotations

import argparse, io, json, math, os, random, shutil, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests" / "fixtures" / "tiny-voxtral-speech"

SAMPLE_RATE = 16000
HOP = 160
FULL_FRAMES = 3000          # mel frames of one 30 s chunk (what the inference path produces)
FRAMES_PER_TOKEN = 8        # conv stride 2, then 4 encoder frames stacked into one audio token (12.5 Hz)
PROMPT_HEAD = [1, 3, 25]    # <s> [INST] [BEGIN_AUDIO], then [AUDIO] x n
AUDIO_TOKEN = 24
EOS = 2
PAD = 11

# ---------------------------------------------------------------------------------------------- the data recipe
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
         "red", "green", "blue", "black", "white", "cat", "dog", "bird", "fish", "tree",
         "house", "car", "sun", "moon", "book", "hand", "water", "apple", "happy", "music"]
VOCAB = DIGITS + WORDS

# espeak-ng voices are "<accent>+<variant>"; training draws any accent with any variant below.
TRAIN_ACCENTS = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc"]
TRAIN_VARIANTS = ["", "m1", "m2", "m3", "m5", "m7", "f1", "f2", "f3", "f5"]
TRAIN_SPEEDS = [135, 150, 165, 175, 190, 210]      # words per minute (espeak-ng -s); 175 is espeak's default
TRAIN_PITCH = (35, 65)                             # espeak-ng -p, uniform integers
# held out: an accent AND a variant never trained on, and speeds never trained on
UNSEEN_VOICE = "en-029+f4"
UNSEEN_SPEEDS = [125, 170, 225]
DEFAULT_VOICE = dict(voice="en", speed=175, pitch=50)  # what `voxtral_deploy.testing.make_clip(text=...)` speaks
SMOKE_TEXT = "three seven green"


def _voice(accent: str, variant: str) -> str:
    return f"{accent}+{variant}" if variant else accent


def _sequence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.randint(1, 4)))


def _clip_recipe(rng: random.Random, text: str, voice: str, speed: int, pitch: int) -> dict:
    return dict(text=text, voice=voice, speed=speed, pitch=pitch, seed=rng.randrange(2**31),
                snr_db=round(rng.uniform(25, 45), 1), gain=round(rng.uniform(0.35, 0.95), 2),
                lead_s=round(rng.uniform(0.0, 0.3), 2))


def train_recipes(n: int, seed: int) -> list[dict]:
    "`n` training clip recipes: every word is spoken at least a few times by the default voice, the rest at random."
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i < 2 * len(VOCAB):  # each word alone, twice, with the default voice at random speeds
            text, voice, speed, pitch = VOCAB[i % len(VOCAB)], "en", rng.choice(TRAIN_SPEEDS), rng.randint(*TRAIN_PITCH)
        else:
            text = _sequence(rng)
            voice = _voice(rng.choice(TRAIN_ACCENTS), rng.choice(TRAIN_VARIANTS))
            speed, pitch = rng.choice(TRAIN_SPEEDS), rng.randint(*TRAIN_PITCH)
        out.append(dict(_clip_recipe(rng, text, voice, speed, pitch), split="train"))
    return out


def heldout_recipes(seed: int, per_group: int = 40) -> list[dict]:
    "Three groups: seen voices at seen speeds, seen voices at unseen speeds, the unseen voice at all speeds."
    rng = random.Random(seed + 1_000_003)
    out = []
    for group in ("seen_voice_seen_speed", "seen_voice_unseen_speed", "unseen_voice"):
        for _ in range(per_group):
            if group == "unseen_voice":
                voice, speed = UNSEEN_VOICE, rng.choice(TRAIN_SPEEDS + UNSEEN_SPEEDS)
            else:
                voice = _voice(rng.choice(TRAIN_ACCENTS), rng.choice(TRAIN_VARIANTS))
                speed = rng.choice(TRAIN_SPEEDS if group == "seen_voice_seen_speed" else UNSEEN_SPEEDS)
            out.append(dict(_clip_recipe(rng, _sequence(rng), voice, speed, rng.randint(30, 70)), group=group))
    for i, r in enumerate(out): r["id"] = f"heldout-{i:03d}"
    return out


def render(recipe: dict) -> np.ndarray:
    "The 16 kHz float32 samples of one clip recipe (espeak-ng, then silence lead-in, gain and white noise, seeded)."
    import soundfile as sf, soxr
    cmd = ["espeak-ng", "-v", recipe["voice"], "-s", str(recipe["speed"]), "-p", str(recipe["pitch"]), "--stdout",
           "--", recipe["text"]]
    wav = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    y, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=False)
    if y.ndim > 1: y = y.mean(axis=1)
    if rate != SAMPLE_RATE: y = soxr.resample(y, rate, SAMPLE_RATE).astype(np.float32)
    if recipe.get("lead_s", 0) or recipe.get("gain") or recipe.get("snr_db"):
        rng = np.random.default_rng(recipe["seed"])
        y = np.concatenate([np.zeros(int(recipe.get("lead_s", 0) * SAMPLE_RATE), np.float32), y])
        peak = float(np.abs(y).max()) or 1.0
        y = y / peak * float(recipe.get("gain", 0.9))
        if recipe.get("snr_db"):
            power = float(np.mean(y[np.abs(y) > 1e-4] ** 2)) if np.any(np.abs(y) > 1e-4) else 1e-6
            y = y + rng.standard_normal(y.shape[0]).astype(np.float32) * math.sqrt(power / 10 ** (recipe["snr_db"] / 10))
        y = np.clip(y, -1.0, 1.0)
    return y.astype(np.float32)


def _pcm16(y: np.ndarray) -> np.ndarray:
    "What the processor's WAV round trip (soundfile PCM_16) does to float samples."
    import soundfile as sf
    buf = io.BytesIO(); sf.write(buf, y, SAMPLE_RATE, format="WAV", subtype="PCM_16"); buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


# ---------------------------------------------------------------------------------------------- the model
def build_processor(dir: Path):
    "The real VoxtralProcessor with the project's tiny tekken.json (30 s chunks), saved into `dir`."
    from transformers import VoxtralProcessor, WhisperFeatureExtractor
    from transformers.tokenization_mistral_common import MistralCommonBackend
    from voxtral_deploy.testing import tiny_tekken
    with tempfile.TemporaryDirectory() as tmp:
        tekken = Path(tmp) / "tekken.json"
        tekken.write_text(json.dumps(tiny_tekken(), ensure_ascii=False), encoding="utf-8")
        tokenizer = MistralCommonBackend(tokenizer_path=str(tekken))
        features = WhisperFeatureExtractor(feature_size=128, sampling_rate=SAMPLE_RATE, hop_length=HOP, chunk_length=30,
                                           n_fft=400)
        processor = VoxtralProcessor(feature_extractor=features, tokenizer=tokenizer)
        if dir is not None: processor.save_pretrained(dir)
    return processor


AUDIO_CONFIG_OVERRIDES = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4)
TEXT_CONFIG_OVERRIDES = dict(hidden_size=96, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, head_dim=24, max_position_embeddings=1024)


def build_model(seed: int):
    import torch
    from transformers import GenerationConfig, VoxtralConfig, VoxtralForConditionalGeneration
    from voxtral_deploy.testing import AUDIO_TOKEN_ID, TINY_AUDIO_CONFIG, TINY_TEXT_CONFIG
    audio = {**TINY_AUDIO_CONFIG, **AUDIO_CONFIG_OVERRIDES}
    assert audio["intermediate_size"] == 4 * audio["hidden_size"], "the projector stacks 4 encoder frames"
    text = {**TINY_TEXT_CONFIG, **TEXT_CONFIG_OVERRIDES}
    config = VoxtralConfig(audio_config=audio, text_config=text, audio_token_id=AUDIO_TOKEN_ID)
    torch.manual_seed(seed)
    model = VoxtralForConditionalGeneration(config)
    # the encoder's positional embeddings are frozen: make them Whisper's sinusoids rather than noise
    emb = model.model.audio_tower.embed_positions
    n, d = emb.weight.shape
    inv = torch.exp(-math.log(10000) / (d // 2 - 1) * torch.arange(d // 2, dtype=torch.float32))
    t = torch.arange(n, dtype=torch.float32)[:, None] * inv[None, :]
    with torch.no_grad(): emb.weight.copy_(torch.cat([torch.sin(t), torch.cos(t)], dim=1))
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=EOS, pad_token_id=PAD, do_sample=False,
                                               max_new_tokens=64)
    return model


def encode_audio(model, feats):
    "The audio tower + projector on mel features of any length that is a multiple of 8 frames (the same modules)."
    import torch.nn.functional as F
    tower = model.model.audio_tower
    x = F.gelu(tower.conv1(feats))
    x = F.gelu(tower.conv2(x)).permute(0, 2, 1)
    x = x + tower.embed_positions.weight[: x.shape[1]]
    for layer in tower.layers: x = layer(x, attention_mask=None)
    x = tower.layer_norm(x)
    b = x.shape[0]
    x = x.reshape(b, -1, model.config.audio_config.intermediate_size)
    return model.model.multi_modal_projector(x)


# ---------------------------------------------------------------------------------------------- features
def features_of(y: np.ndarray, fe) -> tuple[np.ndarray, float]:
    """The first frames of the 30 s log-mel features the processor makes of `y` (float16, whole audio tokens) and the
    constant value every later (padding) frame has."""
    y = _pcm16(y)
    n = int(math.ceil((len(y) + 0.25 * SAMPLE_RATE) / (HOP * FRAMES_PER_TOKEN))) * HOP * FRAMES_PER_TOKEN
    n = min(n, FULL_FRAMES * HOP)
    padded = np.zeros(n, np.float32); padded[: min(len(y), n)] = y[:n]
    f = fe(padded, sampling_rate=SAMPLE_RATE, padding=False, return_tensors="np")["input_features"][0]
    floor = float(f[:, -1].min())
    return f.astype(np.float16), floor


def _render_and_featurize(args):
    recipe, = args
    from transformers import WhisperFeatureExtractor
    global _FE
    if "_FE" not in globals():
        import torch
        torch.set_num_threads(1)  # one thread per worker process: more only fight over the cores
        _FE = WhisperFeatureExtractor(feature_size=128, sampling_rate=SAMPLE_RATE, hop_length=HOP, chunk_length=30, n_fft=400)
    y = render(recipe)
    f, floor = features_of(y, _FE)
    return f, floor, len(y) / SAMPLE_RATE


def text_ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer.tokenizer.instruct_tokenizer.tokenizer.encode(text, bos=False, eos=False))


def prompt_tail(tokenizer, language: str | None) -> list[int]:
    "[/INST], then `lang:xx` when a language is given, then [TRANSCRIBE] (what mistral-common's request encodes)."
    return [4] + (text_ids(tokenizer, f"lang:{language}") if language else []) + [34]


# ---------------------------------------------------------------------------------------------- training
def make_batch(items, frames: int, tok, rng: random.Random):
    "Features padded (with each clip's padding value) to `frames`, and prompt + text + eos ids with text-only labels."
    import torch
    feats = torch.empty(len(items), 128, frames)
    seqs, labels = [], []
    n_audio = frames // FRAMES_PER_TOKEN
    for i, (f, floor, ids, _) in enumerate(items):
        k = min(f.shape[1], frames)
        feats[i, :, :k] = torch.from_numpy(f[:, :k].astype(np.float32))
        feats[i, :, k:] = floor
        lang = "en" if rng.random() < 0.5 else None      # the demo asks with or without a language
        prompt = PROMPT_HEAD + [AUDIO_TOKEN] * n_audio + prompt_tail(tok, lang)
        seqs.append(prompt + ids + [EOS]); labels.append([-100] * len(prompt) + ids + [EOS])
    L = max(map(len, seqs))
    input_ids = torch.full((len(items), L), PAD, dtype=torch.long)
    lab = torch.full((len(items), L), -100, dtype=torch.long)
    att = torch.zeros((len(items), L), dtype=torch.long)
    for i, (s, l) in enumerate(zip(seqs, labels)):
        input_ids[i, : len(s)] = torch.tensor(s); lab[i, : len(l)] = torch.tensor(l); att[i, : len(s)] = 1
    words = torch.tensor([w for *_, ws in items for w in ws], dtype=torch.long)
    word_lengths = torch.tensor([len(ws) for *_, ws in items], dtype=torch.long)
    return feats, input_ids, lab, att, words, word_lengths


def loss_of(model, feats, input_ids, labels, att, words=None, word_lengths=None, ctc_head=None, ctc_weight=0.0):
    """Cross-entropy on the transcript tokens, plus (training only) a word-level CTC loss on the audio embeddings the
    decoder reads, through a throw-away linear head: it teaches the encoder to tell the words apart long before the
    decoder learns to look at the audio, which is where a plain start stalls (loss ~0.85: the text prior alone)."""
    import torch
    import torch.nn.functional as F
    audio = encode_audio(model, feats)
    emb = model.get_input_embeddings()(input_ids)
    s = len(PROMPT_HEAD)
    emb = emb.clone(); emb[:, s: s + audio.shape[1]] = audio
    logits = model(inputs_embeds=emb, attention_mask=att).logits
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    if ctc_head is None or not ctc_weight: return ce, ce
    logp = ctc_head(audio).log_softmax(-1).transpose(0, 1)  # (T, B, words + blank)
    lengths = torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
    ctc = F.ctc_loss(logp, words, lengths, word_lengths, blank=0, zero_infinity=True)
    return ce + ctc_weight * ctc, ce


def train(model, data, tok, *, steps_short: int, steps_full: int, batch: int, lr: float, warmup: int, seed: int, log,
          save_phase1=None, ctc_weight: float = 0.5, full_lr_scale: float = 0.4):
    import torch
    rng = random.Random(seed + 7)
    ctc_head = torch.nn.Linear(model.config.text_config.hidden_size, len(VOCAB) + 1)  # not saved: training only
    params = [p for p in model.parameters() if p.requires_grad] + list(ctc_head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    total = steps_short + steps_full

    def factor(s):  # each phase: linear warmup, then cosine to 5%; phase 2 restarts at `full_lr_scale` x the peak
        if s < steps_short: start, n, peak, w = 0, steps_short, 1.0, warmup
        else: start, n, peak, w = steps_short, max(1, steps_full), full_lr_scale, max(1, warmup // 5)
        k = s - start
        return peak * min(1.0, (k + 1) / w) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(k, n) / n)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    order, pos, t0, hist, hist_total = [], 0, time.time(), [], []
    for step in range(total):
        if pos + batch > len(order): order = list(range(len(data))); rng.shuffle(order); pos = 0
        items = [data[j] for j in order[pos: pos + batch]]; pos += batch
        if step == steps_short and save_phase1 is not None:
            model.save_pretrained(save_phase1); build_processor(save_phase1); log(f"phase 1 model saved to {save_phase1}")
        if step < steps_short:
            longest = max(it[0].shape[1] for it in items)
            frames = int(math.ceil(longest / FRAMES_PER_TOKEN)) * FRAMES_PER_TOKEN
        else:
            frames = FULL_FRAMES
        loss, ce = loss_of(model, *make_batch(items, frames, tok, rng), ctc_head=ctc_head, ctc_weight=ctc_weight)
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(); sched.step()
        hist.append(ce.item()); hist_total.append(loss.item())
        if (step + 1) % 50 == 0 or step == total - 1 or step == steps_short - 1:
            log(f"step {step + 1}/{total} ({'short' if step < steps_short else 'full 30 s'}, {frames} frames) "
                f"text loss {np.mean(hist[-50:]):.4f} (with CTC {np.mean(hist_total[-50:]):.4f}) lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s")
    model.eval()
    return hist


# ---------------------------------------------------------------------------------------------- evaluation
def wer_counts(ref: str, hyp: str) -> tuple[int, int]:
    "(word edits, reference words): Levenshtein distance over words."
    r, h = ref.split(), hyp.split()
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)], len(r)


def normalize(text: str) -> str:
    return " ".join("".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split())


def evaluate(model_dir: Path, recipes: list[dict], log, language: str | None = None) -> dict:
    "Transcribe every held-out clip through `Transcriber` (the demo's and smoke check's path) and score it."
    from voxtral_deploy.inference import Transcriber
    import soundfile as sf
    tr = Transcriber.from_pretrained(model_dir, device="cpu")
    rows, t0 = [], time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for r in recipes:
            wav = Path(tmp) / f"{r['id']}.wav"
            sf.write(wav, render(r), SAMPLE_RATE, subtype="PCM_16")
            hyp = tr.transcribe(str(wav), language=language).text
            e, n = wer_counts(r["text"], normalize(hyp))
            rows.append(dict(id=r["id"], group=r["group"], reference=r["text"], hypothesis=hyp, errors=e, words=n))
    def score(rs): return round(sum(x["errors"] for x in rs) / max(1, sum(x["words"] for x in rs)), 4)
    out = {"clips": len(rows), "words": sum(x["words"] for x in rows), "wer": score(rows),
           "groups": {g: {"clips": len([x for x in rows if x["group"] == g]), "wer": score([x for x in rows if x["group"] == g])}
                      for g in dict.fromkeys(x["group"] for x in rows)},
           "seconds": round(time.time() - t0, 1), "language": language, "rows": rows}
    log(f"held-out WER {out['wer']:.2%} (language={language}) " +
        ", ".join(f"{g} {v['wer']:.2%}" for g, v in out["groups"].items()))
    return out


def smoke(model_dir: Path, out: Path, log) -> dict:
    "Write smoke.json: the demo/smoke-check clip (make_clip's default espeak voice) and what the model says of it."
    from voxtral_deploy.inference import Transcriber
    from voxtral_deploy.testing import make_clip
    with tempfile.TemporaryDirectory() as tmp:
        wav = make_clip(Path(tmp) / "smoke.wav", text=SMOKE_TEXT)
        got = Transcriber.from_pretrained(model_dir, device="cpu").transcribe(str(wav))
    e, n = wer_counts(SMOKE_TEXT, normalize(got.text))
    doc = {"clip": {"make_clip": {"text": SMOKE_TEXT}, "voice": DEFAULT_VOICE["voice"], "speed": DEFAULT_VOICE["speed"],
                    "pitch": DEFAULT_VOICE["pitch"], "sample_rate": SAMPLE_RATE, "format": "wav",
                    "how": "voxtral_deploy.testing.make_clip(path, text=clip.make_clip.text): espeak-ng's default voice, no noise"},
           "expected_transcript": SMOKE_TEXT, "model_transcript": got.text, "wer": round(e / n, 4),
           "max_wer": 0.34, "language": None}
    (out / "smoke.json").write_text(json.dumps(doc, indent=2) + "\n")
    log(f"smoke clip {SMOKE_TEXT!r} -> {got.text!r}")
    return doc


def export_heldout(dir: Path, recipes: list[dict]):
    "Write the held-out clips in the `datasets` audiofolder layout: <id>.wav + metadata.jsonl (file_name, text, ...)."
    import soundfile as sf
    dir.mkdir(parents=True, exist_ok=True)
    with open(dir / "metadata.jsonl", "w", encoding="utf-8") as fh:
        for r in recipes:
            sf.write(dir / f"{r['id']}.wav", render(r), SAMPLE_RATE, subtype="PCM_16")
            fh.write(json.dumps({"file_name": f"{r['id']}.wav", "text": r["text"], "group": r["group"]}) + "\n")
    return dir


# ---------------------------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=FIXTURE, help="fixture folder (model/ inside it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="processes that render and featurize the clips")
    ap.add_argument("--torch-threads", type=int, default=2,
                    help="torch threads for training (on a machine shared with other jobs, 1 is several times faster)")
    ap.add_argument("--save-phase1", type=Path, metavar="DIR", help="also save the model as it is after the short phase")
    ap.add_argument("--train-clips", type=int, default=2400)
    ap.add_argument("--steps-short", type=int, default=1500)
    ap.add_argument("--steps-full", type=int, default=250)
    ap.add_argument("--full-lr-scale", type=float, default=0.4, help="phase 2 peak learning rate, as a share of --lr")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--ctc-weight", type=float, default=0.5, help="weight of the auxiliary word CTC loss (0: off)")
    ap.add_argument("--evaluate-only", action="store_true", help="re-measure the model already in --out/model")
    ap.add_argument("--export-heldout", type=Path, metavar="DIR", help="write the held-out clips as an audiofolder and stop")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(a.torch_threads); torch.manual_seed(a.seed); np.random.seed(a.seed); random.seed(a.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    heldout = heldout_recipes(a.seed)
    if a.export_heldout:
        print(export_heldout(a.export_heldout, heldout)); return
    out, model_dir = a.out, a.out / "model"
    t_wall, t_cpu = time.time(), time.process_time()
    def log(msg): print(f"[{time.time() - t_wall:6.0f}s] {msg}", flush=True)
    if a.evaluate_only:
        evaluate(model_dir, heldout, log); smoke(model_dir, out, log); return

    recipes = train_recipes(a.train_clips, a.seed)
    log(f"rendering and featurizing {len(recipes)} training clips with {a.threads} processes")
    import multiprocessing as mp
    with mp.get_context("fork").Pool(a.threads) as pool:
        feats = pool.map(_render_and_featurize, [(r,) for r in recipes], chunksize=16)
    children_cpu = sum(os.times()[2:4])
    processor = build_processor(None)
    data = [(f, floor, text_ids(processor.tokenizer, r["text"]), [VOCAB.index(w) + 1 for w in r["text"].split()])
            for (f, floor, _), r in zip(feats, recipes)]
    durs = [d for _, _, d in feats]
    log(f"clips: {len(data)}, {sum(durs) / 3600:.2f} h, {min(durs):.2f}-{max(durs):.2f} s each; "
        f"features cached ({sum(f[0].nbytes for f in feats) / 1e6:.0f} MB)")
    t_data = time.time() - t_wall

    model = build_model(a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters")
    t_train0 = time.time()
    hist = train(model, data, processor.tokenizer, steps_short=a.steps_short, steps_full=a.steps_full, batch=a.batch,
                 lr=a.lr, warmup=a.warmup, seed=a.seed, log=log,
                 save_phase1=a.save_phase1, ctc_weight=a.ctc_weight,
                 full_lr_scale=a.full_lr_scale)
    t_train = time.time() - t_train0

    if model_dir.exists(): shutil.rmtree(model_dir)
    model.save_pretrained(model_dir, safe_serialization=True)
    build_processor(model_dir)
    wall, cpu = time.time() - t_wall, time.process_time() - t_cpu + children_cpu
    log(f"saved to {model_dir}; training wall {wall:.0f}s, CPU {cpu:.0f}s")
    result = evaluate(model_dir, heldout, log)
    result_en = evaluate(model_dir, heldout, log, language="en")
    size = sum(p.stat().st_size for p in model_dir.iterdir())
    weights = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    summary = dict(seed=a.seed, train_clips=len(data), train_hours=round(sum(durs) / 3600, 3), params=n_params,
                   steps_short=a.steps_short, steps_full=a.steps_full, batch=a.batch, lr=a.lr, warmup=a.warmup, ctc_weight=a.ctc_weight, full_lr_scale=a.full_lr_scale,
                   threads=a.threads, torch_threads=a.torch_threads, data_seconds=round(t_data, 1), train_seconds=round(t_train, 1),
                   wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1), first_loss=round(np.mean(hist[:20]), 3),
                   final_loss=round(np.mean(hist[-20:]), 4), model_bytes=size, weights_bytes=weights, dtype="float32",
                   torch=torch.__version__, heldout_wer=result["wer"], heldout_groups=result["groups"],
                   heldout_wer_language_en=result_en["wer"], heldout_groups_language_en=result_en["groups"])
    summary["smoke"] = smoke(model_dir, out, log)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in heldout))
    with open(out / "heldout_predictions.jsonl", "w") as fh:
        for row in result["rows"]: fh.write(json.dumps(row) + "\n")
    log(json.dumps({k: v for k, v in summary.items()}, indent=1))


if __name__ == "__main__":
    main()
