"The training script of the tiny speech Voxtral: its mel-hop and size options keep the processor, the tekken and the encoder in step."
import subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter: `set_hop` changes the script's module globals.
CHECK = r'''
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1] + "/scripts")
import train_tiny_voxtral as T
from voxtral_deploy.inference import Transcriber, audio_chunk_kwargs
hop, out = int(sys.argv[2]), sys.argv[3]
width, enc_layers, dec_layers, dec_mlp = (int(x) for x in sys.argv[4].split(","))
T.set_hop(hop); T.set_sizes(width, enc_layers, dec_layers, dec_mlp)
processor = T.build_processor(__import__("pathlib").Path(out))
model = T.build_model(0); model.save_pretrained(out)
recipe = dict(text=T.SMOKE_TEXT, **T.DEFAULT_VOICE, seed=3, snr_db=30, gain=0.8, lead_s=0.1)
y = T.render(recipe)
inputs = processor.apply_transcription_request(language="en", audio=[y], format=["WAV"], model_id="x", sampling_rate=16000,
                                               audio_kwargs=audio_chunk_kwargs(processor, model))
ours = T.features_of(y, processor.feature_extractor)
Transcriber.from_pretrained(out).transcribe(y)   # random weights: any text, but generate must run (else exit 1)
print(json.dumps(dict(frames=inputs["input_features"].shape[-1], audio_tokens=int((inputs["input_ids"] == T.AUDIO_TOKEN).sum()),
                      positions=model.config.audio_config.max_source_positions, ours=ours.shape[-1],
                      sizes=[model.config.audio_config.hidden_size, model.config.audio_config.intermediate_size,
                             model.config.audio_config.num_hidden_layers, model.config.text_config.num_hidden_layers,
                             model.config.text_config.intermediate_size],
                      max_diff=float(np.abs(ours - inputs["input_features"][0].numpy()).max()))))
'''


@pytest.mark.parametrize("hop, frames, tokens, sizes", [(160, 400, 50, (96, 2, 3, 384)), (320, 200, 25, (128, 2, 2, 256))])
def test_hop_keeps_processor_tekken_and_encoder_in_step(tmp_path, hop, frames, tokens, sizes):
    import json
    r = subprocess.run([sys.executable, "-c", CHECK, str(ROOT), str(hop), str(tmp_path), ",".join(map(str, sizes))],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert (got["frames"], got["audio_tokens"], got["positions"], got["ours"]) == (frames, tokens, frames // 2, frames)
    width, enc_layers, dec_layers, dec_mlp = sizes   # the sizes reach the saved config; the encoder's MLP stays 4x its width
    assert got["sizes"] == [width, 4 * width, enc_layers, dec_layers, dec_mlp]
    assert got["max_diff"] < 1e-2   # training's cached features are the processor's (float16)


def test_hop_that_splits_an_audio_token_is_refused():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_tiny_voxtral.py"), "--hop", "240", "--out", "/nonexistent"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a whole number of audio tokens at hop 240" in r.stderr, r.stderr[-2000:]


def test_encoder_width_that_splits_no_heads_is_refused():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_tiny_voxtral.py"), "--encoder-width", "130", "--out", "/nonexistent"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--encoder-width 130 does not split into 4 attention heads" in r.stderr, r.stderr[-2000:]


WIDE = r'''
import collections, concurrent.futures as cf, json, sys
sys.path.insert(0, sys.argv[1] + "/scripts")
import train_tiny_voxtral as T
with cf.ThreadPoolExecutor(4) as pool:   # every word keeps a sound in every wide table (a voice espeak-ng lacks fails)
    said = dict(zip(T.FOREIGN_VOICES_WIDE, pool.map(
        lambda lang: all(T.foreign_accent(lang, a, w).strip("[]',") for a in T.TRAIN_ACCENTS for w in T.VOCAB),
        T.FOREIGN_VOICES_WIDE)))
drawn = lambda vs: collections.Counter(r["voice"].split("+")[0] for r in T.train_recipes(2000, 0, foreign=0.5, foreign_voices=vs))
print(json.dumps(dict(mute=sorted(l for l, ok in said.items() if not ok),
                      n=len(T.FOREIGN_VOICES_WIDE), unique=len(set(T.FOREIGN_VOICES_WIDE)),
                      base=sorted(drawn(T.FOREIGN_VOICES)), wide=sorted(drawn(T.FOREIGN_VOICES_WIDE)),
                      base_list=T.FOREIGN_VOICES, accents=T.TRAIN_ACCENTS)))
'''


def test_wide_foreign_voices_are_espeak_voices_that_say_every_word():
    import json
    r = subprocess.run([sys.executable, "-c", WIDE, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["mute"] == []                                  # each voice says every word of the vocabulary
    assert got["n"] == got["unique"] == 90
    wide = [v for v in got["wide"] if v not in got["accents"]]
    assert not any(v.startswith("en") or v in ("ht", "pap") for v in wide)   # no English table, nothing Caribbean
    assert set(got["base"]) - set(got["accents"]) == set(got["base_list"])   # the default draws from the 18 only
    assert len(wide) > 80                                                    # the wide set is drawn from, all of it nearly
