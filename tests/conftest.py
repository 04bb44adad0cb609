"""Shared fixtures for the end-to-end tests: fake tokens, a tiny Voxtral, a local hub.

Every test talks to real parts: the real huggingface_hub client and `hf` CLI against
`voxtral_deploy.localhub.LocalHub` over HTTP, real Gradio servers, a real tiny Voxtral.
"""
import os

# Before huggingface_hub is imported anywhere: the local hub speaks the classic LFS protocol, not Xet.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import json
from pathlib import Path

import pytest

# Obviously fake tokens. They are shaped like real ones on purpose, so the redaction that matches the
# shape is exercised too; tests grep outputs and written files for them.
ALICE_WRITE = "hf_FakeAliceWriteToken0000000000000001"
ALICE_READ = "hf_FakeAliceReadToken00000000000000002"
BOB_WRITE = "hf_FakeBobWriteToken000000000000000003"
TOKENS = {
    ALICE_WRITE: {"user": "alice", "role": "write"},
    ALICE_READ: {"user": "alice", "role": "read"},
    BOB_WRITE: {"user": "bob", "role": "write"},
}


@pytest.fixture(scope="session")
def tokens_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("tokens") / "tokens.json"
    p.write_text(json.dumps(TOKENS))
    return p


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    "A real, random-weight VoxtralForConditionalGeneration + processor saved with save_pretrained (read-only by convention: copy before changing)."
    from voxtral_deploy.testing import make_tiny_voxtral
    d = tmp_path_factory.mktemp("tiny") / "tiny-voxtral"
    make_tiny_voxtral(d)
    return d


@pytest.fixture(scope="session")
def training_fixtures(tmp_path_factory) -> dict:
    "A training config and results shaped like a real Trainer run (paths in a dict)."
    from voxtral_deploy.testing_training import make_training_fixtures
    return make_training_fixtures(tmp_path_factory.mktemp("training"))


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory) -> Path:
    "A 2 s, 16 kHz mono WAV clip."
    from voxtral_deploy.testing import make_clip
    return make_clip(tmp_path_factory.mktemp("audio") / "clip.wav", seconds=2.0)


@pytest.fixture
def hub(tmp_path):
    "A fresh local hub on 127.0.0.1 with alice (write + read tokens) and bob (write)."
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path / "hub", tokens=TOKENS) as h:
        yield h


@pytest.fixture
def api(hub):
    "A real HfApi talking to the local hub as alice (write)."
    from huggingface_hub import HfApi
    return HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)


@pytest.fixture(scope="session")
def browser():
    "A headless chromium (selenium) shared by the session's browser tests, 1280x900; skips when chromium is missing. See browserkit.py."
    from browserkit import start_chromium
    driver = start_chromium()
    yield driver
    driver.quit()


# Deployment records of every test go to one throwaway folder, never to the user's records folder.
os.environ.setdefault("VOXTRAL_DEPLOY_RECORDS", str(Path(__import__("tempfile").mkdtemp(prefix="voxtral-records-"))))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    "A real transformers Trainer run on the tiny Voxtral (6 steps, checkpoint-2/4/6, eval loss + WER, TensorBoard runs/; read-only by convention)."
    from voxtral_deploy.testing_training import train_tiny_voxtral
    return train_tiny_voxtral(tmp_path_factory.mktemp("trainer") / "tiny-ft")


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, trained_run):
    "A real peft LoRA run (SEQ_2_SEQ_LM on q/k/v/o_proj, audio tower frozen) on the tiny base, which adapter_config.json names by its local folder."
    from voxtral_deploy.testing_training import train_tiny_voxtral
    return train_tiny_voxtral(tmp_path_factory.mktemp("peft") / "tiny-lora", lora=True, base_dir=trained_run.base_dir)
