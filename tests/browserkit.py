"""Browser test kit: a headless Debian chromium driven by selenium through the system chromedriver.

Tests meet a UI the way a person does: load the page, wait for what is displayed, read its text, click.
`conftest.py` offers a session-scoped `browser` fixture built on `start_chromium`; a test that needs other
chromium flags (a fake microphone, say) calls `start_chromium(extra_args=[...])` itself and quits it.
Everything skips with a reason where chromium, chromedriver or selenium is missing.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import pytest

WINDOW = (1280, 900)


def _first(*names: str) -> str | None:
    for n in names:
        p = shutil.which(n) if not os.path.isabs(n) else (n if os.path.exists(n) else None)
        if p: return p
    return None


def chromium_path() -> str | None:
    "The chromium binary (Debian's real binary behind its wrapper script first), or None."
    return _first("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def chromedriver_path() -> str | None:
    "The system chromedriver (Debian's chromium-driver), or None."
    return _first("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def missing_reason() -> str | None:
    "Why a browser test cannot run here (None when it can)."
    try: import selenium  # noqa: F401
    except ImportError: return "selenium is not installed (pip install -e .[dev])"
    if not chromium_path(): return "chromium is not installed (apt-get install chromium; make browsers)"
    if not chromedriver_path(): return "chromedriver is not installed (apt-get install chromium-driver; make browsers)"
    return None


def start_chromium(*, width: int = WINDOW[0], height: int = WINDOW[1], extra_args: list[str] = (), page_load_timeout: float = 60):
    "A headless chromium (selenium webdriver.Chrome) with a width x height window; skips the test when chromium is missing."
    reason = missing_reason()
    if reason: pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_path()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
              "--disable-extensions", "--disable-background-networking", "--mute-audio", f"--window-size={width},{height}",
              *extra_args]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=chromedriver_path()))
    driver.set_page_load_timeout(page_load_timeout)
    driver.set_window_size(width, height)
    return driver


def wait_until(driver, condition: Callable[[Any], Any], *, timeout: float = 30, what: str = "the condition", poll: float = 0.2):
    "Poll `condition(driver)` until it returns something truthy (returned); fail with the page's text after `timeout` s."
    end, last_exc = time.monotonic() + timeout, None
    while True:
        try:
            got = condition(driver)
            if got: return got
        except Exception as e:  # stale elements, half-rendered pages: try again until the deadline
            last_exc = e
        if time.monotonic() > end: break
        time.sleep(poll)
    extra = f" (last error: {type(last_exc).__name__}: {last_exc})" if last_exc else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{extra}; page text:\n{page_text(driver)[:3000]}")


def page_text(driver) -> str:
    "What a person reads on the page: the body's innerText (hidden elements excluded)."
    try: return driver.execute_script("return document.body ? document.body.innerText : ''") or ""
    except Exception: return ""


def wait_for_text(driver, text: str, *, timeout: float = 30, css: str = "body"):
    "Wait until a displayed element matching `css` shows `text`; returns that element."
    from selenium.webdriver.common.by import By
    def found(d):
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed() and text in el.text: return el
    return wait_until(driver, found, timeout=timeout, what=f"{text!r} in {css!r}")


def wait_for_element(driver, css: str, *, timeout: float = 30, displayed: bool = True):
    "Wait for the first element matching `css` (displayed, by default); returns it."
    from selenium.webdriver.common.by import By
    def found(d):
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if not displayed or el.is_displayed(): return el
    return wait_until(driver, found, timeout=timeout, what=f"element {css!r}" + (" displayed" if displayed else ""))


def click_button(driver, label: str, *, timeout: float = 30, css: str = "button"):
    "Click the displayed, enabled button whose text is `label` (waits for it); returns it."
    from selenium.webdriver.common.by import By
    def found(d):
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed() and el.is_enabled() and el.text.strip() == label: return el
    el = wait_until(driver, found, timeout=timeout, what=f"an enabled button {label!r}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()
    return el


def console_errors(driver) -> list[str]:
    "The browser console's SEVERE messages since the last call (chromium's log buffer empties on read)."
    try: return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    except Exception: return []


def screenshot(driver, path: str | os.PathLike) -> Path:
    "Save a PNG of the window (for a failing test's artifacts)."
    p = Path(path); p.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(p))
    return p
