"""The wizard as a person meets it: a notebook that shows `DeployWizard()` served by voila, driven in headless chromium.

One test, one deploy (the suite's only end-to-end deploy through the wizard with a Space): the default state shows
the boxes a person fills first, displayed, enabled and with their whole labels; the person types the fields,
inspects, checks the token, previews the card, deploys to the local hub and reads the step statuses and the links,
which open as pages. The token typed in the browser is nowhere afterwards: not on the page, not in voila's log,
not in the record.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browserkit import click_button, page_text, screenshot, wait_for_element, wait_for_text, wait_until
from conftest import ALICE_WRITE

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.space, pytest.mark.timeout(900)]
ARTIFACTS = Path(__file__).parent / "artifacts"

# (label, is a textarea): the boxes the default state must show
FIRST_BOXES = ["Model folder", "Token", "or token file", "Repo id", "Name", "Description"]
CHECKBOXES = ["Private model repo", "Also publish a 4-bit (nf4) variant", "Deploy a demo Space", "Demo serves the 4-bit variant"]

# Every labelled widget on the page: its label, whether it is displayed, whether the label is cut, its input's state.
WIDGETS_JS = """
return Array.from(document.querySelectorAll('.widget-inline-hbox')).map(e => {
  const labels = Array.from(e.querySelectorAll('label')).filter(l => l.innerText.trim() && l.innerText !== '\\u200b');
  const l = labels[0], inp = e.querySelector('input, textarea');
  return {label: l ? l.innerText.trim() : null, displayed: e.offsetParent !== null && e.getClientRects().length > 0,
          cut: l ? l.scrollWidth > l.clientWidth + 1 : null, disabled: inp ? inp.disabled : null,
          kind: e.className.replace(/.*widget-inline-hbox ?/, '').trim() || e.className};
});
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_wizard(tmp_path):
    "voila serving a notebook that shows a fresh DeployWizard; yields (url, log path, records dir)."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from voxtral_deploy.wizard import DeployWizard\nDeployWizard()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    work = tmp_path / "work"; work.mkdir()
    nbformat.write(nb, work / "wizard.ipynb")
    port, log, records = _free_port(), tmp_path / "voila.log", tmp_path / "records"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT")}
    env.update(HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"), VOXTRAL_DEPLOY_RECORDS=str(records),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "voila", "wizard.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
                                 "--show_tracebacks=True"], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "voila/static/voila.js", timeout=5).close(); break  # the server answers (not the notebook)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"voila did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, log, records
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill()


def _widgets(browser) -> dict:
    "label -> the first widget with it (a second 'Description' is the Space's)."
    out = {}
    for w in browser.execute_script(WIDGETS_JS):
        if w["label"] and w["label"] not in out: out[w["label"]] = w
    return out


def _box(browser, label: str, nth: int = 0):
    "The input (or textarea) of the displayed widget labelled `label`."
    els = [e for e in browser.find_elements("css selector", ".widget-inline-hbox") if e.is_displayed()
           and any(l.text.strip() == label for l in e.find_elements("css selector", "label"))]
    assert len(els) > nth, f"no displayed box labelled {label!r}"
    return els[nth].find_element("css selector", "input, textarea")


def _type(browser, label: str, text: str, nth: int = 0):
    from selenium.webdriver.common.keys import Keys
    el = _box(browser, label, nth)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    el.send_keys(Keys.CONTROL, "a"); el.send_keys(Keys.DELETE)
    el.send_keys(text)
    el.send_keys(Keys.TAB)  # blur: a Combobox or a Text with continuous_update off syncs on change
    return el


def test_wizard_in_a_browser_default_state_then_deploy(browser, voila_wizard, hub, tiny_model_dir, training_fixtures):
    url, log, records = voila_wizard
    try:
        browser.get(url)
        wait_for_text(browser, "Deploy a fine-tuned Voxtral", timeout=120)
        wait_for_element(browser, ".widget-text input", timeout=60)
        # -- the default state (the Hugging Face Hub): the first boxes are there, usable, their labels whole
        ws = _widgets(browser)
        for label in FIRST_BOXES:
            assert label in ws, (label, sorted(ws))
            w = ws[label]
            assert w["displayed"] and w["disabled"] is False and not w["cut"], (label, w)
        assert "Local hub URL" not in ws or not ws["Local hub URL"]["displayed"]  # only with "Local hub"
        for label in CHECKBOXES:  # the checkboxes' labels are whole (they were cut at 140px: "Deploy a demo S...")
            assert label in ws and ws[label]["displayed"] and not ws[label]["cut"], (label, ws.get(label))
        assert all(not w["cut"] for w in ws.values() if w["displayed"]), [w for w in ws.values() if w["cut"]]
        text = page_text(browser)
        for section in ("1. Model folder", "2. Identity", "3. Metadata", "8. Deploy"):
            assert section in text
        ARTIFACTS.mkdir(exist_ok=True); screenshot(browser, ARTIFACTS / "wizard-default.png")  # for a person to look at
        # -- 1. the model folder, inspected
        _type(browser, "Model folder", str(tiny_model_dir))
        click_button(browser, "Inspect")
        wait_for_text(browser, "model.safetensors", timeout=120)
        # -- 2. identity: the local hub, a token typed in the password box, checked
        click_button(browser, "Local hub")
        wait_until(browser, lambda d: _widgets(d).get("Local hub URL", {}).get("displayed"), what="the local hub URL box")
        _type(browser, "Local hub URL", hub.endpoint)
        token_box = _type(browser, "Token", ALICE_WRITE)
        assert token_box.get_attribute("type") == "password"
        click_button(browser, "Check token")
        wait_for_text(browser, "Signed in as alice", timeout=60)
        assert ALICE_WRITE not in page_text(browser) and _box(browser, "Token").get_attribute("value") == ""
        # -- 3. metadata (the repo id a bare name: it goes to alice), 4. the card preview
        _type(browser, "Repo id", "voxtral-browser")
        _type(browser, "Name", "Voxtral Browser")
        _type(browser, "Description", "Deployed from a browser.")
        _type(browser, "Languages", "fr")
        _type(browser, "License", "mit")
        _type(browser, "Training config", str(training_fixtures["training_config"]))
        _type(browser, "Results", str(training_fixtures["trainer_state"]))
        _type(browser, "Title", "Browser demo")
        click_button(browser, "Preview card")
        h1 = wait_for_element(browser, ".voxtral-card h1", timeout=120)
        assert "Voxtral Browser" in h1.text
        assert "license: mit" in wait_for_element(browser, ".voxtral-card details", displayed=False).get_attribute("innerHTML")
        # -- 8. deploy: live step statuses, then the links
        click_button(browser, "Deploy")
        wait_until(browser, lambda d: any(m in page_text(d) for m in ("Smoke check transcription", "❌")), timeout=600,
                   what="the deploy to end (the links, or a failed step)")
        text = page_text(browser)
        assert "Smoke check transcription" in text and "❌" not in text, text[-3000:]
        for step in ("Inspect the model", "Token", "Model card", "Publish the model", "Demo Space (build + smoke check)", "Record"):
            assert step in text
        rows = browser.execute_script("return Array.from(document.querySelectorAll('.widget-html table tr')).map(r => r.innerText)")
        done = [r for r in rows if r.rstrip().endswith("done")]
        assert len(done) == 6, rows  # every step but evaluate (no eval set)
        hrefs = browser.execute_script("return Array.from(document.querySelectorAll('.widget-html li a')).filter(a => a.closest('.voxtral-card') === null).map(a => a.href)")
        model_url, space_url = f"{hub.endpoint}/alice/voxtral-browser", f"{hub.endpoint}/spaces/alice/voxtral-browser-demo"
        assert model_url in hrefs and space_url in hrefs, hrefs
        assert ALICE_WRITE not in page_text(browser)
        screenshot(browser, ARTIFACTS / "wizard-deployed.png")
        # -- the links open as pages: the model's card title, the Space's stage, the app itself
        app = [h for h in hrefs if h not in (model_url, space_url)]
        browser.get(model_url)
        assert "Voxtral Browser" in wait_for_element(browser, ".card article h1").text
        assert "model.safetensors" in page_text(browser)
        screenshot(browser, ARTIFACTS / "hub-model-page.png")
        browser.get(space_url)
        assert wait_for_element(browser, "#space-stage").text == "RUNNING"
        screenshot(browser, ARTIFACTS / "hub-space-page.png")
        assert "app.py" in page_text(browser)
        for h in app:
            browser.get(h)
            wait_for_text(browser, "Browser demo", timeout=90)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot(browser, ARTIFACTS / "wizard-browser-failure.png")
        (ARTIFACTS / "wizard-browser-voila.log").write_text(log.read_text()[-20000:])
        raise
    # the token is nowhere: voila's log (the kernel's output), the record
    assert ALICE_WRITE not in log.read_text()
    recs = [p for p in records.rglob("*") if p.is_file()]
    assert recs and all(ALICE_WRITE.encode() not in p.read_bytes() for p in recs)
    rec = json.loads(next(p for p in recs if p.suffix == ".json").read_text())
    assert rec["status"] == "ok" and rec["model"]["repo_id"] == "alice/voxtral-browser"
