"End-to-end checks of the test factories: the tiny Voxtral loads and generates in a fresh process."
import hashlib, json, subprocess, sys

import numpy as np
import soundfile as sf


def test_tiny_model_loads_and_generates_in_fresh_process(tiny_model_dir, clip_path):
    code = (
        "import sys, soundfile as sf, torch\n"
        "from transformers import AutoProcessor, VoxtralForConditionalGeneration\n"
        "d, clip = sys.argv[1], sys.argv[2]\n"
        "p = AutoProcessor.from_pretrained(d); m = VoxtralForConditionalGeneration.from_pretrained(d)\n"
        "a, sr = sf.read(clip, dtype='float32')\n"
        "x = p.apply_transcription_request(language=None, audio=a, model_id='tiny', format='wav', sampling_rate=sr)\n"
        "out = m.generate(**x, max_new_tokens=8, do_sample=False)\n"
        "print(sum(q.numel() for q in m.parameters()), out.shape[1] - x['input_ids'].shape[1])\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tiny_model_dir), str(clip_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    n_params, n_new = map(int, r.stdout.split()[-2:])
    assert 50_000 < n_params < 100_000
    assert 1 <= n_new <= 8


def test_tiny_model_is_deterministic(tmp_path, tiny_model_dir):
    from voxtral_deploy.testing import make_tiny_voxtral
    digest = lambda d: hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    assert digest(make_tiny_voxtral(tmp_path / "a")) == digest(tiny_model_dir)
    assert digest(make_tiny_voxtral(tmp_path / "b", seed=3)) != digest(tiny_model_dir)
    assert json.loads((tiny_model_dir / "config.json").read_text())["audio_token_id"] == 24


def test_clips_in_every_format(tmp_path):
    from voxtral_deploy.testing import make_clip
    for suffix in ("wav", "flac", "ogg", "mp3"):
        info = sf.info(make_clip(tmp_path / f"c.{suffix}", 1.0, sample_rate=44100, channels=2))
        assert (info.samplerate, info.channels) == (44100, 2)
        assert abs(info.duration - 1.0) < 0.1
    y, _ = sf.read(make_clip(tmp_path / "s.wav", 0.5, kind="silence"))
    assert not np.any(y)


def test_training_fixtures(training_fixtures):
    state = json.loads(training_fixtures["trainer_state"].read_text())
    assert any("eval_wer" in e for e in state["log_history"])
    assert json.loads(training_fixtures["all_results"].read_text())["eval_wer"] == 12.31
    assert training_fixtures["dir"].is_dir()


def test_package_import_stays_light():
    code = "import sys, voxtral_deploy, voxtral_deploy.testing, voxtral_deploy.inference; print('torch' in sys.modules, 'transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"]
