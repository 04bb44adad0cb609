"""End-to-end tests of `voxtral_deploy.inference` with the tiny random Voxtral.

Transcription runs in fresh subprocesses (as the Space does), with the module copied out of the package so it
cannot lean on `voxtral_deploy`; Hub loading goes through the real huggingface_hub client against the local hub.
Random weights: assert shapes, types, determinism and plumbing, never wording.
"""
import json, os, shutil, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import ALICE_WRITE

TIMEOUT = 300


def _standalone(tmp_path: Path) -> Path:
    "A folder holding only a copy of inference.py, as the Space deployer lays it out."
    import voxtral_deploy.inference as inf
    d = tmp_path / "space"; d.mkdir(exist_ok=True)
    shutil.copy(inf.__file__, d / "inference.py")
    return d


_GUARD = textwrap.dedent("""
    import builtins, json, sys
    _real = builtins.__import__
    def _guard(name, *a, **k):
        if name.startswith("voxtral_deploy"): raise ImportError("voxtral_deploy is not installed in a Space")
        return _real(name, *a, **k)
    builtins.__import__ = _guard
    import inference as inf
""")


def _run(tmp_path, body: str, *args, env=None) -> dict:
    "Run `body` after importing the standalone inference.py in a fresh process; it prints one JSON object last."
    space = _standalone(tmp_path)
    full_env = {**os.environ, "PYTHONPATH": str(space), **(env or {})}
    r = subprocess.run([sys.executable, "-c", _GUARD + textwrap.dedent(body), *map(str, args)], capture_output=True,
                       text=True, timeout=TIMEOUT, cwd=space, env=full_env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    from voxtral_deploy.testing import make_clip
    d = tmp_path_factory.mktemp("clips")
    out = {ext: make_clip(d / f"clip.{ext}", 2.0) for ext in ("wav", "flac", "ogg", "mp3")}
    out["stereo44"] = make_clip(d / "stereo44.wav", 2.0, sample_rate=44100, channels=2)
    out["silence"] = make_clip(d / "silence.wav", 1.0, kind="silence")
    out["long"] = make_clip(d / "long.flac", 12.0)
    (d / "empty.wav").write_bytes(b""); out["empty"] = d / "empty.wav"
    (d / "notes.wav").write_text("definitely not audio\n"); out["text"] = d / "notes.wav"
    return out


def test_transcribes_every_format_and_refuses_bad_input(tmp_path, tiny_model_dir, clips):
    body = """
    model, clips = sys.argv[1], json.loads(sys.argv[2])
    t = inf.Transcriber.from_pretrained(model)
    out = {"device": t.device, "dtype": str(t.dtype), "revision": t.revision}
    for name in ("wav", "flac", "ogg", "mp3", "stereo44", "silence"):
        r = t.transcribe(clips[name], max_new_tokens=8)
        out[name] = r.to_dict()
    for name in ("empty", "text", "long"):
        try: t.transcribe(clips[name], max_new_tokens=8); out[name] = "no error"
        except inf.AudioInputError as e: out[name] = [type(e).__name__, type(e).__module__, str(e), isinstance(e, ValueError)]
    print(json.dumps(out))
    """
    out = _run(tmp_path, body, tiny_model_dir, json.dumps({k: str(v) for k, v in clips.items()}),
               env={"MAX_AUDIO_SECONDS": "10"})
    assert (out["device"], out["dtype"], out["revision"]) == ("cpu", "torch.float32", None)
    for name in ("wav", "flac", "ogg", "mp3", "stereo44", "silence"):
        r = out[name]
        assert isinstance(r["text"], str)
        assert 0 <= r["num_tokens"] <= 8 and len(r["token_confidences"]) == r["num_tokens"]
        assert 0.0 <= r["confidence"] <= 1.0 and r["seconds"] > 0
        assert all(0.0 <= p <= 1.0 for _, p in r["token_confidences"])
        assert abs(r["duration"] - (1.0 if name == "silence" else 2.0)) < 0.1, (name, r["duration"])
    assert any("silent" in w for w in out["silence"]["warnings"])
    # the standalone copy defines its own AudioInputError (a ValueError), in module `inference`
    assert out["empty"][:2] == ["AudioInputError", "inference"] and "empty" in out["empty"][2] and out["empty"][3]
    assert "not an audio file" in out["text"][2]
    assert "12.0 s" in out["long"][2] and "10 s" in out["long"][2]


def test_deterministic_across_processes(tmp_path, tiny_model_dir, clip_path):
    from voxtral_deploy.inference import Transcriber
    here = Transcriber.from_pretrained(tiny_model_dir).transcribe(clip_path, max_new_tokens=16)
    body = """
    t = inf.Transcriber.from_pretrained(sys.argv[1])
    a = t.transcribe(sys.argv[2], max_new_tokens=16); b = t.transcribe(sys.argv[2], max_new_tokens=16)
    print(json.dumps({"a": a.text, "b": b.text, "tokens": a.token_confidences}))
    """
    there = _run(tmp_path, body, tiny_model_dir, clip_path)
    assert there["a"] == there["b"] == here.text
    assert [t for t, _ in there["tokens"]] == [t for t, _ in here.token_confidences]
    assert np.allclose([p for _, p in there["tokens"]], [p for _, p in here.token_confidences], atol=1e-6)


def test_array_inputs_and_languages(tiny_model_dir, clip_path):
    import soundfile as sf
    from voxtral_deploy.core import AudioInputError
    from voxtral_deploy.inference import LANGUAGES, Transcriber
    t = Transcriber.from_pretrained(tiny_model_dir)
    a, sr = sf.read(clip_path, dtype="float32")
    i16 = (a * 32767).astype(np.int16)
    by_path = t.transcribe(clip_path, max_new_tokens=8)
    assert t.transcribe((sr, i16), max_new_tokens=8).text == by_path.text          # Gradio's (rate, int16)
    assert t.transcribe((a, sr), max_new_tokens=8).text == by_path.text            # (array, rate)
    r = t.transcribe((np.stack([i16, i16], 1), sr), language="fr", max_new_tokens=4)
    assert r.language == "fr" and r.duration == 2.0
    assert t.transcribe(clip_path, language="auto", max_new_tokens=4).language is None
    assert {"en", "fr", "de", "es"} <= set(LANGUAGES)
    with pytest.raises(AudioInputError, match="empty"):
        t.transcribe((sr, np.zeros(0, np.int16)))
    with pytest.raises(ValueError, match="Unknown language"):
        t.transcribe(clip_path, language="not a language")


def test_timeout_bounds_generation(tiny_model_dir, clip_path):
    import time
    from voxtral_deploy.inference import Transcriber
    t = Transcriber.from_pretrained(tiny_model_dir)
    full = t.transcribe(clip_path, max_new_tokens=64)
    start = time.perf_counter()
    cut = t.transcribe(clip_path, max_new_tokens=64, timeout=0.0)
    assert time.perf_counter() - start < 30
    assert cut.num_tokens < max(full.num_tokens, 2)
    assert cut.num_tokens == 0 or any("time limit" in w for w in cut.warnings)


def test_long_audio_is_chunked(tiny_model_dir):
    from voxtral_deploy.inference import Transcriber
    t = Transcriber.from_pretrained(tiny_model_dir)
    r = t.transcribe((np.zeros(16000 * 40, np.float32), 16000), max_new_tokens=2)
    assert r.duration == 40.0


def test_four_bit_subfolder(tmp_path, clip_path):
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig, VoxtralForConditionalGeneration
    from voxtral_deploy.inference import Transcriber
    from voxtral_deploy.testing import make_tiny_voxtral
    root = make_tiny_voxtral(tmp_path / "wide", quantizable=True)
    q = VoxtralForConditionalGeneration.from_pretrained(
        root, quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"), device_map="cpu")
    q.save_pretrained(root / "int4")
    assert json.loads((root / "int4" / "config.json").read_text())["quantization_config"]["bnb_4bit_quant_type"] == "nf4"
    t = Transcriber.from_pretrained(root, subfolder="int4")
    assert any(type(m).__name__ == "Linear4bit" for m in t.model.modules())
    r = t.transcribe(clip_path, max_new_tokens=4)
    assert 0 <= r.num_tokens <= 4


def test_lora_adapter_on_its_base(tmp_path, tiny_model_dir, clip_path):
    peft = pytest.importorskip("peft")
    from transformers import VoxtralForConditionalGeneration
    from voxtral_deploy.inference import Transcriber
    base = VoxtralForConditionalGeneration.from_pretrained(tiny_model_dir)
    adapter = tmp_path / "adapter"
    peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(cfg["base_model_name_or_path"]) == Path(tiny_model_dir)
    t = Transcriber.from_pretrained(adapter)
    assert type(t.model).__name__ == "VoxtralForConditionalGeneration"     # merged, no peft wrapper left
    # a fresh LoRA adapter (B = 0) changes nothing: same text as the base
    assert t.transcribe(clip_path, max_new_tokens=8).text == Transcriber.from_pretrained(tiny_model_dir).transcribe(clip_path, max_new_tokens=8).text
    # without peft: a clear error naming the package
    body = """
    sys.modules["peft"] = None
    try: inf.Transcriber.from_pretrained(sys.argv[1]); print(json.dumps({"error": None}))
    except ImportError as e: print(json.dumps({"error": str(e)}))
    """
    out = _run(tmp_path, body, adapter)
    assert "peft" in out["error"] and "pip install" in out["error"]


@pytest.mark.timeout(600)
def test_loads_exactly_the_revision_from_the_hub(tmp_path, hub, api, clip_path):
    import hashlib
    from voxtral_deploy.testing import make_tiny_voxtral
    repo = api.create_repo("alice/tiny-voxtral").repo_id
    first = api.upload_folder(repo_id=repo, folder_path=make_tiny_voxtral(tmp_path / "v1", seed=0), commit_message="v1").oid
    second = api.upload_folder(repo_id=repo, folder_path=make_tiny_voxtral(tmp_path / "v2", seed=1), commit_message="v2").oid
    assert first != second
    digest = lambda d: hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
    body = """
    import hashlib
    from pathlib import Path
    out = {}
    for rev in (sys.argv[2], None):
        t = inf.Transcriber.from_pretrained(sys.argv[1], revision=rev, token=sys.argv[3])
        out[str(rev)] = {"revision": t.revision, "text": t.transcribe(sys.argv[4], max_new_tokens=4).text,
                         "model_id": t.model_id}
    from huggingface_hub.errors import RevisionNotFoundError, RepositoryNotFoundError
    for what, kw in (("badrev", dict(revision="no-such-branch")), ("badrepo", dict())):
        try: inf.Transcriber.from_pretrained(sys.argv[1] + ("-missing" if what == "badrepo" else ""), token=sys.argv[3], **kw); out[what] = None
        except (RevisionNotFoundError, RepositoryNotFoundError) as e: out[what] = type(e).__name__
    print(json.dumps(out))
    """
    out = _run(tmp_path, body, repo, first, ALICE_WRITE, clip_path,
               env={"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_XET": "1"})
    assert out[first]["revision"] == first          # pinned: the first commit, though main moved on
    assert out["None"]["revision"] == second        # no revision: main, resolved to its commit sha
    assert out[first]["model_id"] == repo
    assert out["badrev"] == "RevisionNotFoundError"
    assert out["badrepo"] == "RepositoryNotFoundError"
    assert digest(tmp_path / "v1") != digest(tmp_path / "v2")
