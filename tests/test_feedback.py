"""User feedback end to end: the deployer creates the private feedback dataset and gives the Space a fine-grained token
that writes there only; flags sent through the page (headless chromium) and through gradio_client reach the dataset via
CommitScheduler and load with `datasets`; the Space's token is refused on the model."""
import json, shutil, time
from pathlib import Path

import pytest

from conftest import ALICE_WRITE, TOKENS

MODEL, SPACE = "alice/fb-voxtral", "alice/fb-voxtral-demo"
DATASET = "alice/fb-voxtral-demo-feedback"
FEEDBACK_TOKEN = "hf_FakeAliceFeedbackOnly0000000000000009"
FB_TOKENS = {**TOKENS, FEEDBACK_TOKEN: {"user": "alice", "role": "fineGrained",
                                        "scoped": [{"entity": f"datasets/{DATASET}", "permissions": ["repo.content.read", "repo.write"]}]}}

pytestmark = [pytest.mark.space, pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def fb_hub(tmp_path):
    from huggingface_hub import HfApi
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path / "hub", tokens=FB_TOKENS) as hub:
        yield hub, HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)


def _flags(api, tmp_path) -> list[dict]:
    from huggingface_hub import snapshot_download
    import datasets
    snap = Path(snapshot_download(DATASET, repo_type="dataset", endpoint=api.endpoint, token=ALICE_WRITE,
                                  cache_dir=tmp_path / f"snap-{time.monotonic_ns()}"))
    files = sorted(snap.glob("data/*/metadata.jsonl"))
    if not files: return []
    ds = datasets.load_dataset("json", data_files=[str(f) for f in files], split="train", cache_dir=str(tmp_path / "ds-cache"))
    rows = ds.to_list()
    for r, f in zip(rows, [f for f in files for _ in f.read_text().splitlines()]):
        r["clip"] = (f.parent / r["file_name"]).read_bytes()
    return rows


def _wait_flags(api, tmp_path, n, timeout=90) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = _flags(api, tmp_path)
        if len(rows) >= n: return rows
        time.sleep(2)
    pytest.fail(f"the feedback dataset has {len(rows)} flags after {timeout} s, expected {n}")


def test_flags_reach_the_feedback_dataset_and_the_space_token_writes_nowhere_else(fb_hub, tiny_model_dir, tmp_path):
    from gradio_client import Client, handle_file
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from voxtral_deploy.core import TokenPermissionError
    from voxtral_deploy.space import DemoSpaceDeployer
    from voxtral_deploy.space_feedback import FeedbackSettings
    from voxtral_deploy.status import status
    from voxtral_deploy.testing import make_clip
    hub, api = fb_hub
    api.create_repo(MODEL)
    sha = api.upload_folder(repo_id=MODEL, folder_path=tiny_model_dir, commit_message="tiny voxtral").oid

    with pytest.raises(TokenPermissionError, match="write token"):  # a classic write token could push to the model
        DemoSpaceDeployer(api=api, model_id=MODEL, space_name=SPACE, feedback=FeedbackSettings(ALICE_WRITE)).plan()
    r = DemoSpaceDeployer(api=api, model_id=MODEL, space_name=SPACE,
                          feedback=FeedbackSettings(FEEDBACK_TOKEN, every_minutes=0.05)).deploy(timeout=240, smoke_check=False)
    assert r.stage == "RUNNING" and api.dataset_info(DATASET).private
    assert set(api.get_space_secrets(SPACE)) == {"FEEDBACK_TOKEN"}
    assert {k: v.value for k, v in api.get_space_variables(SPACE).items()}["FEEDBACK_DATASET"] == DATASET

    clip = make_clip(tmp_path / "clip.wav", 2.0)
    c = Client(r.host, verbose=False)
    text = c.predict(handle_file(str(clip)), "auto", 16, api_name="/transcribe")[0]
    assert "Thank you" in c.predict(handle_file(str(clip)), text, "the right words", api_name="/flag")
    assert "Thank you" in c.predict(handle_file(str(clip)), text, "", api_name="/flag")
    with pytest.raises(Exception, match="Transcribe a clip first"):
        c.predict(None, "", "", api_name="/flag")

    rows = _wait_flags(api, tmp_path, 2)
    assert sorted((x["correction"] or "") for x in rows) == ["", "the right words"]
    assert all(x["hypothesis"] == text and x["model_commit"] == sha and x["clip"] == clip.read_bytes() for x in rows)
    assert set(rows[0]) == {"file_name", "hypothesis", "correction", "model_commit", "time", "clip"}  # nothing about the visitor
    assert status(MODEL, api=api)["feedback"] == {DATASET: 2}

    space_api = HfApi(endpoint=hub.endpoint, token=FEEDBACK_TOKEN)  # the Space's token: its dataset, and nothing else
    with pytest.raises(HfHubHTTPError) as ei:
        space_api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=MODEL, commit_message="overwrite")
    assert ei.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError):
        space_api.create_repo("alice/elsewhere", repo_type="dataset")
    assert api.model_info(MODEL).sha == sha
    _browser_flag(r.host, clip, api, tmp_path)


def _browser_flag(host, clip, api, tmp_path):
    "A visitor in a real browser: upload, transcribe, open the feedback box, type, flag; the flag reaches the dataset."
    try:
        from browserkit import click_button, start_chromium, wait_for_element, wait_for_text
        from selenium.webdriver.common.by import By
    except ImportError as e:
        pytest.skip(f"browser kit missing ({e}): flags were sent through gradio_client only")
    d = start_chromium()
    try:
        d.get(host)
        wait_for_element(d, "#audio-input input[type=file]", displayed=False).send_keys(str(clip))
        time.sleep(1.0)
        click_button(d, "Transcribe")
        wait_for_text(d, "", css="#transcription textarea", timeout=60)
        for _ in range(120):
            if d.find_element(By.CSS_SELECTOR, "#transcription textarea").get_attribute("value"): break
            time.sleep(0.5)
        d.find_element(By.CSS_SELECTOR, "#feedback button, #feedback .label-wrap").click()
        wait_for_element(d, "#correction textarea").send_keys("typed in the browser")
        click_button(d, "Flag as wrong")
        wait_for_text(d, "Thank you", timeout=60)
    finally:
        d.quit()
    rows = _wait_flags(api, tmp_path, 3)
    assert "typed in the browser" in [x["correction"] for x in rows]
