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
    from voxtral_deploy.testing import make_training_fixtures
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
