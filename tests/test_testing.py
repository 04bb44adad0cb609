"End-to-end checks of the test factories: the tiny Voxtral loads and generates in a fresh process."
import hashlib, json, os, subprocess, sys, urllib.request

import numpy as np
import pytest
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
    results = json.loads(training_fixtures["all_results"].read_text())  # the example scripts' save_metrics("train"/"eval")
    assert results["eval_wer"] == json.loads(training_fixtures["eval_results"].read_text())["eval_wer"]
    assert {"train_loss", "eval_loss", "eval_cer"} <= set(results)
    assert training_fixtures["dir"].is_dir() and training_fixtures["run"].checkpoints[-1].name == "checkpoint-6"


def test_package_import_stays_light():
    code = "import sys, voxtral_deploy, voxtral_deploy.testing, voxtral_deploy.inference; print('torch' in sys.modules, 'transformers' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"]


# ---- The test kit: secret scanning, the demo app's environment, starting a server -----------------------
def test_find_secrets_scans_texts_files_and_folders(tmp_path):
    from conftest import ALICE_READ, ALICE_WRITE, TOKENS
    from voxtral_deploy.testing import assert_no_secrets, find_secrets
    (tmp_path / "a" / "b").mkdir(parents=True)
    big = tmp_path / "a" / "b" / "weights.bin"  # the token straddles the scanner's 1 MiB chunk edge
    big.write_bytes(b"\0" * ((1 << 20) - 10) + ALICE_WRITE.encode() + b"\xff" * 100)
    (tmp_path / "a" / "clean.txt").write_text("nothing to see")
    hits = find_secrets("x " + ALICE_READ, tmp_path, b"\x00clean", secrets=TOKENS)
    assert hits == ["text #1: secret #2 (hf_...)", f"{big}: secret #1 (hf_...)"]
    assert find_secrets(tmp_path, secrets=TOKENS, ignore=lambda p: p.suffix == ".bin") == []
    with pytest.raises(AssertionError) as e:
        assert_no_secrets(tmp_path, secrets=TOKENS)
    assert "weights.bin" in str(e.value) and not any(t in str(e.value) for t in TOKENS)


def test_start_demo_app_runs_and_reports_a_crash(tmp_path):
    from voxtral_deploy.testing import ServerStartError, demo_app_env, start_demo_app
    env = demo_app_env("http://127.0.0.1:9", {"HF_MODEL_ID": "alice/x"}, hf_home=tmp_path / "home",
                       base={**os.environ, "HF_TOKEN": "hf_FakeInherited00000000000000000000000"})
    assert "HF_TOKEN" not in env and env["HF_MODEL_ID"] == "alice/x"
    ok = tmp_path / "ok"; ok.mkdir()
    (ok / "app.py").write_text(
        "import http.server, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self): self.send_response(200); self.end_headers(); self.wfile.write(os.environ['HF_MODEL_ID'].encode())\n"
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['GRADIO_SERVER_PORT'])), H).serve_forever()\n")
    with start_demo_app(ok, env, timeout=60) as app:
        assert app.proc.poll() is None and app.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(app.url + "config", timeout=5) as r: assert r.read() == b"alice/x"
    assert app.proc.poll() is not None
    bad = tmp_path / "bad"; bad.mkdir()
    (bad / "app.py").write_text("import sys\nprint('boom hf_FakeAliceWriteToken0000000000000001')\nsys.exit(4)\n")
    with pytest.raises(ServerStartError) as e:
        start_demo_app(bad, env, timeout=60)
    assert e.value.returncode == 4 and "boom" in e.value.log_tail
    assert "hf_FakeAlice" not in str(e.value) + e.value.log_tail
