"""Voxtral Realtime end to end: the tiny random Realtime model (real processor, streaming tekken) inspected, carded,
published to the local hub, served by the demo Space app, and smoke-checked: the app streams the clip through a live
session in 80 ms chunks, and its text is compared with the offline transcription of the same model at the same commit.

Random weights write random bytes, so the tests compare texts and token sequences, never wording.
"""
import pytest

from conftest import ALICE_WRITE, TOKENS

REPO_ID = "alice/tiny-voxtral-realtime"

pytestmark = pytest.mark.space


@pytest.fixture(scope="module")
def rt_dir(tmp_path_factory):
    from voxtral_deploy.testing_realtime import make_tiny_voxtral_realtime
    return make_tiny_voxtral_realtime(tmp_path_factory.mktemp("rt") / "model")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from voxtral_deploy.testing import make_clip
    return make_clip(tmp_path_factory.mktemp("rt-clips") / "noise.wav", 3.0, kind="noise")


@pytest.fixture(scope="module")
def published(tmp_path_factory, rt_dir):
    from huggingface_hub import HfApi
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path_factory.mktemp("rt-hub"), tokens=TOKENS) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        api.create_repo(REPO_ID)
        yield hub, api, api.upload_folder(repo_id=REPO_ID, folder_path=rt_dir, commit_message="tiny realtime").oid


@pytest.fixture(scope="module")
def app(published, tmp_path_factory):
    from voxtral_deploy.demo_app import render_demo_space, space_variables
    from voxtral_deploy.testing import demo_app_env, start_demo_app
    hub, api, commit = published
    space = tmp_path_factory.mktemp("rt-space") / "space"
    render_demo_space(space, model_id=REPO_ID, revision=commit)
    env = demo_app_env(hub.endpoint, space_variables(REPO_ID, revision=commit), hf_home=tmp_path_factory.mktemp("rt-home"),
                       STREAM_INTERVAL=0, MAX_AUDIO_SECONDS=20)
    with start_demo_app(space, env, log=tmp_path_factory.mktemp("rt-logs") / "app.log") as running:
        yield running


def test_inspected_and_carded_like_voxtral(rt_dir):
    from huggingface_hub import RepoCard
    from voxtral_deploy.artifacts import inspect_model
    from voxtral_deploy.card import ModelCardGenerator, card_variables
    arts = inspect_model(rt_dir)
    assert (arts.model_type, arts.architecture) == ("voxtral_realtime", "VoxtralRealtimeForConditionalGeneration")
    assert {"config.json", "model.safetensors", "tekken.json", "processor_config.json"} <= set(arts.files)
    text = ModelCardGenerator().generate_model_card(card_variables(arts, repo_id=REPO_ID, metadata={"name": "Tiny RT"}))
    usage = text[text.index("## How to use"):text.index("## Training details")]
    assert "VoxtralRealtimeForConditionalGeneration.from_pretrained(model_id" in usage and "is_streaming=True" in usage
    assert "apply_transcription_request" not in usage  # the offline Voxtral snippet does not apply
    compile(usage.split("```python", 1)[1].split("```", 1)[0], "usage", "exec")  # the snippet is valid Python
    RepoCard(text)


def test_streamed_in_chunks_equals_offline_in_process(rt_dir, clip):
    "A live session fed 80 ms at a time ends with the offline transcription, token for token."
    from voxtral_deploy.inference import load_audio
    from voxtral_deploy.realtime import RealtimeTranscriber
    rt = RealtimeTranscriber.from_pretrained(rt_dir)
    audio, _ = load_audio(clip)
    offline = rt.transcribe(clip)
    step = rt.processor.raw_audio_length_per_tok
    final = list(rt.stream(audio[i:i + step] for i in range(0, audio.size, step)))[-1]
    assert offline.num_tokens > 0, "the tiny model writes nothing: the comparison would be empty"
    assert [t for t, _ in final.token_confidences] == [t for t, _ in offline.token_confidences]
    assert final.text == offline.text


def test_space_streams_the_clip_and_matches_the_offline_run_at_the_commit(app, published, clip):
    from gradio_client import handle_file
    from voxtral_deploy.space_smoke import local_transcription, smoke_check
    hub, api, commit = published
    info = app.client().predict(api_name="/model_info")
    assert info["realtime"] is True and info["commit"] == commit and info["batching"] is None
    expected = local_transcription(api, REPO_ID, clip, revision=commit)
    res = smoke_check(app.url, clip, expected=expected, model_revision=commit)
    assert res.matched_local and res.served_commit == commit and res.text == expected.text
    job = app.client().submit(handle_file(str(clip)), "auto", 64, api_name="/transcribe")
    final = job.result(timeout=120)
    texts = [o[0] for o in job.outputs() if isinstance(o[0], str) and o[0]]
    assert final[0] == expected.text and len(texts) >= 2  # the text grew while the chunks went through
    assert app.proc.poll() is None
