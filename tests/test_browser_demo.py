"""The demo Space as a visitor meets it: headless chromium loads the page of a running `app.py`, a clip is uploaded
through the page, Transcribe is pressed, and the test reads what is shown while the text is written and after.

The app serves the trained tiny Voxtral of tests/fixtures/tiny-voxtral-speech (a local folder as HF_MODEL_ID, the
app's development mode), so the words on the page are the expected ones of its smoke clip.
"""
import json
import time
from pathlib import Path

import pytest

from browserkit import click_button, page_text, screenshot, wait_for_element, wait_for_text, wait_until

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-voxtral-speech"
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.space]

# Every distinct value the transcription box takes, sampled every few milliseconds in the page itself, so the
# test sees the text grow even when the whole answer takes a fraction of a second.
RECORD_TEXT = """
window.__seen = [];
const box = () => document.querySelector('#transcription textarea');
window.__rec = setInterval(() => {
  const b = box(); if (!b) return;
  const v = b.value; if (window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v);
}, 2);
"""


@pytest.fixture(scope="module")
def smoke():
    return json.loads((FIXTURE / "smoke.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory, smoke):
    "The Space rendered with the smoke clip as its example, running on the trained tiny model."
    from voxtral_deploy.demo_app import render_demo_space
    from voxtral_deploy.testing import demo_app_env, make_clip, start_demo_app
    d = tmp_path_factory.mktemp("browser-demo")
    clip = make_clip(d / "examples" / "smoke.wav", text=smoke["clip"]["make_clip"]["text"])
    render_demo_space(d / "space", model_id="alice/tiny-voxtral-speech", revision="0" * 40, examples_dir=d / "examples",
                      branding={"title": "Tiny speech demo"})
    env = demo_app_env("http://127.0.0.1:9", {"HF_MODEL_ID": str(FIXTURE / "model"), "SPACE_TITLE": "Tiny speech demo"},
                       hf_home=d / "home", MAX_NEW_TOKENS=64, STREAM_INTERVAL=0)
    with start_demo_app(d / "space", env, log=d / "app.log") as app:
        yield app, clip


def _open(browser, url):
    browser.get(url)
    return wait_for_element(browser, "#transcribe-button", timeout=60)


def _upload(browser, clip: Path):
    "Upload a file through the page's audio box, as a visitor's file chooser does."
    field = wait_until(browser, lambda d: d.find_element("css selector", "#audio-input input[type=file]"),
                       what="the audio box's file input")
    field.send_keys(str(clip))
    wait_until(browser, lambda d: d.find_elements("css selector", "#audio-input audio, #audio-input .waveform-container, #audio-input [data-testid=waveform-x]")
               or "0:0" in d.find_element("css selector", "#audio-input").text, what="the uploaded clip in the audio box")


def _transcription(browser) -> str:
    return browser.find_element("css selector", "#transcription textarea").get_attribute("value")


def test_upload_transcribe_and_watch_the_text_grow(browser, demo, smoke):
    app, clip = demo
    _open(browser, app.url)
    expected = smoke["expected_transcript"]
    # Before anything ran: an empty box and no made-up "0" confidence; the example clip is offered.
    assert _transcription(browser) == "" and "confidence" not in page_text(browser).lower().replace("per-token confidence", "")
    assert "smoke.wav" in page_text(browser)
    _upload(browser, clip)
    browser.execute_script(RECORD_TEXT)
    click_button(browser, "Transcribe")
    wait_until(browser, lambda d: _transcription(d) == expected, timeout=60, what=f"the transcription {expected!r}")
    seen = [s for s in browser.execute_script("clearInterval(window.__rec); return window.__seen;") if s]
    assert seen[-1] == expected
    assert all(expected.startswith(s) for s in seen), seen  # every state shown is the text so far
    assert len(seen) >= 3, seen  # shown while generated: the box grew through intermediate states
    summary = wait_for_text(browser, "Mean confidence", css="#summary").text
    assert 0 < float(summary.split()[2]) <= 1, summary
    assert "max_new_tokens" not in page_text(browser)  # it ended by itself: no warning shown
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot(browser, ARTIFACTS / "demo_streamed.png")


def test_cut_short_warning_is_shown_on_the_page(browser, demo):
    app, clip = demo
    _open(browser, app.url)
    click_button(browser, "Advanced options", css="button, span, div.label-wrap")
    box = wait_for_element(browser, "#max-new-tokens input[type=number]")
    box.clear(); box.send_keys("3"); box.send_keys("\t")
    _upload(browser, clip)
    click_button(browser, "Transcribe")
    shown = wait_for_text(browser, "max_new_tokens=3", css="#summary", timeout=60)
    assert shown.is_displayed() and "cut short" in shown.text
    assert len(_transcription(browser)) <= 3


def test_example_clip_is_one_click_away(browser, demo, smoke):
    app, clip = demo
    _open(browser, app.url)
    wait_until(browser, lambda d: [e for e in d.find_elements("css selector", "button, td, div") if e.text.strip() == "smoke.wav"
                                   and e.is_displayed()], what="the example clip").__getitem__(0).click()
    wait_until(browser, lambda d: d.find_elements("css selector", "#audio-input audio") or "smoke" in d.find_element("css selector", "#audio-input").text,
               what="the example loaded into the audio box")
    click_button(browser, "Transcribe")
    wait_until(browser, lambda d: _transcription(d) == smoke["expected_transcript"], timeout=60, what="the example's transcription")


# ---- Voxtral Realtime: the microphone transcribed live ---------------------------------------------------
@pytest.fixture(scope="module")
def realtime_demo(tmp_path_factory):
    "The Space running the tiny random Voxtral Realtime (a local folder), and a clip for chromium's fake microphone."
    from voxtral_deploy.demo_app import render_demo_space
    from voxtral_deploy.testing import demo_app_env, make_clip, start_demo_app
    from voxtral_deploy.testing_realtime import make_tiny_voxtral_realtime
    d = tmp_path_factory.mktemp("browser-realtime")
    model = make_tiny_voxtral_realtime(d / "model")
    clip = make_clip(d / "mic.wav", 4.0, kind="noise")
    render_demo_space(d / "space", model_id="alice/tiny-voxtral-realtime", revision="0" * 40)
    env = demo_app_env("http://127.0.0.1:9", {"HF_MODEL_ID": str(model)}, hf_home=d / "home", STREAM_INTERVAL=0)
    with start_demo_app(d / "space", env, log=d / "app.log") as app:
        yield app, clip


def _live_text(driver) -> str:
    return driver.find_element("css selector", "#live-transcription textarea").get_attribute("value")


def test_realtime_demo_transcribes_the_microphone_live(realtime_demo):
    "chromium's fake microphone plays a clip; the live box fills while it records, and keeps the text after Stop."
    from browserkit import start_chromium
    app, clip = realtime_demo
    d = start_chromium(extra_args=["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                   f"--use-file-for-fake-audio-capture={clip}", "--autoplay-policy=no-user-gesture-required"])
    try:
        d.get(app.url)
        wait_for_element(d, "#live-mic", timeout=60)
        wait_for_text(d, "Live transcription", timeout=60)
        d.execute_script(RECORD_TEXT.replace("#transcription textarea", "#live-transcription textarea"))
        click_button(d, "Record", css="#live-mic button")
        wait_until(d, lambda drv: _live_text(drv), timeout=60, what="live text while the microphone records")
        wait_until(d, lambda drv: len(set(drv.execute_script("return window.__seen;")) - {""}) >= 2, timeout=60,
                   what="the live text growing while the microphone records")
        click_button(d, "Stop", css="#live-mic button")
        seen = [s for s in d.execute_script("clearInterval(window.__rec); return window.__seen;") if s]
        assert len(seen) >= 2, seen  # updated while recording, not once at the end
        wait_until(d, lambda drv: _live_text(drv), what="the final live text after Stop")
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot(d, ARTIFACTS / "demo_realtime_mic.png")
        assert app.proc.poll() is None
    finally:
        d.quit()
