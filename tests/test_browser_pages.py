"""The local hub's pages in headless chromium: what a person sees at every link the toolkit prints.

`test_pages_of_each_kind` builds a small hub with the real client (a model whose card tries to run a script, a
private model, a dataset, a Space whose app fails) and reads each page. `test_every_link_a_quickstart_prints`
runs the quickstart as a person does (serving until Ctrl-C), collects every local URL it printed and opens each.
The deploy's links through the wizard are opened by test_browser_wizard.
"""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from browserkit import page_text, screenshot, wait_for_element, wait_for_text, wait_until
from conftest import ALICE_READ, ALICE_WRITE, BOB_WRITE

pytestmark = [pytest.mark.browser]
ARTIFACTS = Path(__file__).parent / "artifacts"

CARD = """---
license: mit
language: [fr]
tags: [asr]
---
# Tiny Voxtral <em>pages</em>

A card that tries to run code: <script>document.title = 'owned'; window.owned = 1</script>

<img src=x onerror="window.owned = 2">

| metric | value |
|---|---|
| WER | 9.1 |

[a bad link](javascript:window.owned=3) and [the eval results](/alice/tiny/blob/main/eval_results.json)
"""


@pytest.fixture
def filled_hub(hub, api):
    api.create_repo("alice/tiny")
    api.upload_file(path_or_fileobj=CARD.encode(), path_in_repo="README.md", repo_id="alice/tiny", commit_message="Add the card")
    api.upload_file(path_or_fileobj=b'{"wer": 9.1}', path_in_repo="eval_results.json", repo_id="alice/tiny", commit_message="Add results")
    api.create_repo("alice/secret", private=True)
    api.upload_file(path_or_fileobj=b"# Secret model\n", path_in_repo="README.md", repo_id="alice/secret")
    api.create_repo("alice/clips", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"file_name,text\na.wav,one\n", path_in_repo="metadata.csv", repo_id="alice/clips", repo_type="dataset")
    api.create_repo("alice/broken", repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=b"raise SystemExit('the app refuses to start: BROKEN-ON-PURPOSE')\n", path_in_repo="app.py",
                    repo_id="alice/broken", repo_type="space")
    sp = hub.space("alice/broken")
    deadline = time.monotonic() + 120
    while sp.stage not in ("RUNTIME_ERROR", "BUILD_ERROR") and time.monotonic() < deadline: time.sleep(0.2)
    return hub


def test_pages_of_each_kind(browser, filled_hub):
    hub = filled_hub
    try:
        # the list: public repos of each kind, the Space's stage; the private one only counted
        browser.get(hub.endpoint + "/")
        wait_for_text(browser, "Models")
        text = page_text(browser)
        assert all(r in text for r in ("alice/tiny", "alice/clips", "alice/broken")) and "alice/secret" not in text
        assert "1 private repo(s) not shown" in text and "RUNTIME_ERROR" in text
        # a model: its card rendered (front matter as metadata), nothing of it runs; its files and commits
        browser.find_element("link text", "alice/tiny").click()
        h1 = wait_for_element(browser, ".card article h1")
        assert h1.text == "Tiny Voxtral <em>pages</em>"  # the tag is text, not markup
        assert browser.title.startswith("alice/tiny") and browser.execute_script("return window.owned === undefined")
        assert "<script>document.title" in page_text(browser)  # shown as text
        meta = wait_for_element(browser, "table.metadata").text
        assert "license" in meta and "mit" in meta and "asr" in meta
        assert browser.find_element("css selector", ".card article table").text.split() == ["metric", "value", "WER", "9.1"]
        assert browser.find_element("link text", "a bad link").get_attribute("href").endswith("#")
        files = browser.find_element("css selector", "table.files").text
        assert "README.md" in files and "eval_results.json" in files and ".gitattributes" in files
        commits = browser.find_element("css selector", "ul.commits").text
        assert "Add the card" in commits and "Add results" in commits
        # the card's link to a file opens its page; its download link serves the bytes
        browser.find_element("link text", "the eval results").click()
        wait_for_text(browser, '{"wer": 9.1}', css="pre.file")
        dl = browser.find_element("link text", "download").get_attribute("href")
        assert dl == f"{hub.endpoint}/alice/tiny/resolve/main/eval_results.json"
        with urllib.request.urlopen(dl) as r: assert r.read() == b'{"wer": 9.1}'
        # a dataset page
        browser.get(hub.endpoint + "/datasets/alice/clips")
        wait_for_text(browser, "metadata.csv", css="table.files")
        assert "dataset" in page_text(browser)
        # a Space page: its stage, the log tail with the app's error, no app frame (nothing runs)
        browser.get(hub.endpoint + "/spaces/alice/broken")
        assert wait_for_element(browser, "#space-stage").text == "RUNTIME_ERROR"
        def run_log(d):  # the run log's last lines arrive just after the stage: reload until they are shown
            d.refresh()
            return "Run log" in page_text(d) and "BROKEN-ON-PURPOSE" in " ".join(e.text for e in d.find_elements("css selector", "pre.log"))
        wait_until(browser, run_log, timeout=30, what="the app's error in the run log")
        assert not browser.find_elements("css selector", "iframe")
        # privacy: a private model is a 404 page for anyone, for bob, and is shown with alice's token (kept in a cookie)
        browser.delete_all_cookies()
        browser.get(hub.endpoint + "/alice/secret")
        wait_for_text(browser, "404")
        assert "Secret model" not in page_text(browser)
        browser.get(hub.endpoint + f"/alice/secret?token={BOB_WRITE}")
        wait_for_text(browser, "404")
        assert "token=" not in browser.current_url  # the token left the address bar
        browser.get(hub.endpoint + f"/alice/secret?token={ALICE_READ}")
        wait_for_text(browser, "Secret model", css=".card")
        assert browser.current_url == hub.endpoint + "/alice/secret" and ALICE_READ not in page_text(browser)
        browser.get(hub.endpoint + "/")
        wait_for_text(browser, "alice/secret")  # the list shows it too, with the cookie
        browser.get(hub.endpoint + "/alice/nothing-here")
        wait_for_text(browser, "not found")
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot(browser, ARTIFACTS / "pages-failure.png")
        raise
    finally:
        browser.delete_all_cookies()


# -- every link a quickstart prints ---------------------------------------------------------------------------------

URL = re.compile(r"https?://127\.0\.0\.1:\d+[^\s'\"<>)\]]*")


@pytest.mark.slow
@pytest.mark.space
@pytest.mark.timeout(900)
def test_every_link_a_quickstart_prints(browser, tmp_path):
    "The quickstart as a person runs it (serving until Ctrl-C): each local URL it printed opens as a page; Ctrl-C stops it all."
    code = ("import faulthandler, signal; faulthandler.register(signal.SIGUSR1, all_threads=True); "  # a stack dump if it hangs
            "from voxtral_deploy.quickstart import quickstart; "
            f"r = quickstart({str(tmp_path / 'demo')!r}); print('returned', r.ok, flush=True)")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    proc = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**env, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf-home")},
                            # Ctrl-C as in a terminal: a test run started in the background (`cmd &` in a script)
                            # passes SIGINT down ignored, and Python then installs no KeyboardInterrupt for it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines, host = [], None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line: break
            lines.append(line)
            m = re.search(r"The demo is up: open (\S+) in a browser", line)
            if m: host = m.group(1); break
        printed = "".join(lines)
        assert host, printed[-4000:]
        urls = sorted({u.rstrip(".,:;") for u in URL.findall(printed)})
        endpoint = re.search(r"local hub:\s+(\S+)", printed).group(1)
        model_url = re.search(r"model page:\s+(\S+)", printed).group(1)
        space_url = re.search(r"demo Space:\s+(\S+)", printed).group(1)
        assert {endpoint, model_url, space_url, host} <= set(urls), urls
        for url in urls:
            browser.get(url)
            if url == host:  # the demo app itself
                wait_for_element(browser, "#transcribe-button, button", timeout=90)
                continue
            wait_until(browser, lambda d: d.execute_script("return document.readyState") == "complete", what=f"{url} to load")
            text = page_text(browser)
            assert "404" not in browser.title and "not found" not in text.lower()[:200], (url, text[:500])
            assert not text.lstrip().startswith("{"), (url, text[:300])  # a page, not a JSON error
            if url == model_url:
                assert wait_for_element(browser, ".card article h1").text and "model.safetensors" in text
            elif url == space_url:
                assert wait_for_element(browser, "#space-stage").text == "RUNNING" and "app.py" in text
                assert browser.find_element("css selector", "iframe").get_attribute("src").rstrip("/") == host.rstrip("/")
            elif url == endpoint or url == endpoint + "/":
                assert model_url.split(endpoint + "/", 1)[1] in text and "RUNNING" in text
        assert proc.poll() is None  # still serving after every page was opened
        proc.send_signal(signal.SIGINT)
        try: rest, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # say where it hangs: every thread's stack, then the output
            proc.send_signal(signal.SIGUSR1); time.sleep(2); proc.kill()
            rest, _ = proc.communicate(timeout=30)
            pytest.fail("the quickstart did not stop within 120 s of Ctrl-C; its threads and output:\n" + rest[-12000:])
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot(browser, ARTIFACTS / "quickstart-links-failure.png")
        raise
    finally:
        if proc.poll() is None: proc.kill()
    assert proc.returncode == 0 and "stopping the demo" in rest and "returned True" in rest, rest[-2000:]
    with pytest.raises(OSError):  # Ctrl-C stopped the app and the hub
        urllib.request.urlopen(host, timeout=5)
