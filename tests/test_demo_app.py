"""The demo Space end to end: a tiny Voxtral published to the local hub, the rendered Space run with
`python app.py` (HF_ENDPOINT pointing at the hub), and real clients talking to it: gradio_client for
the API, headless Chromium for the page.
"""
import concurrent.futures as cf
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ALICE_WRITE, TOKENS
from voxtral_deploy.testing import demo_app_env, start_demo_app

REPO_ID = "alice/tiny-voxtral"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAX_AUDIO_SECONDS = 6
QUEUE_SIZE = 4

pytestmark = pytest.mark.space  # every test here runs the Space app


def _app_env(hub, space_vars: dict, hf_home: Path, **extra) -> dict:
    return demo_app_env(hub.endpoint, space_vars, hf_home=hf_home, MAX_AUDIO_SECONDS=MAX_AUDIO_SECONDS,
                        QUEUE_SIZE=QUEUE_SIZE, MAX_NEW_TOKENS=64, STREAM_INTERVAL=0, **extra)


# ---- Fixtures: one hub, one published model, one rendered Space, one running app per module -----------
@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_model_dir):
    "The tiny model published to a local hub as alice: (hub, api, first commit id)."
    from huggingface_hub import HfApi
    from voxtral_deploy.localhub import LocalHub
    with LocalHub(tmp_path_factory.mktemp("demo-hub"), tokens=TOKENS) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        api.create_repo(REPO_ID)
        commit = api.upload_folder(repo_id=REPO_ID, folder_path=tiny_model_dir, commit_message="tiny voxtral")
        yield hub, api, commit.oid


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    "Every kind of input a visitor may send."
    from voxtral_deploy.testing import make_clip
    d = tmp_path_factory.mktemp("clips")
    c = {"wav": make_clip(d / "clip.wav", 2.0), "flac": make_clip(d / "clip.flac", 2.0),
         "mp3": make_clip(d / "clip.mp3", 2.0), "stereo44k": make_clip(d / "stereo.wav", 2.0, sample_rate=44100, channels=2),
         "silence": make_clip(d / "silence.wav", 1.0, kind="silence"),
         "long": make_clip(d / "long.wav", MAX_AUDIO_SECONDS + 2.0),
         "short": make_clip(d / "short.wav", 0.5)}
    (d / "empty.wav").write_bytes(b""); c["empty"] = d / "empty.wav"
    (d / "text.wav").write_text("This is a text file wearing a .wav name.\n"); c["text"] = d / "text.wav"
    return c


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory, published, clips) -> Path:
    "The Space rendered for the first commit, with one example clip."
    from voxtral_deploy.demo_app import render_demo_space
    hub, api, commit = published
    ex = tmp_path_factory.mktemp("examples")
    shutil.copy(clips["wav"], ex / "tone.wav")
    dest = tmp_path_factory.mktemp("space") / "space"
    render_demo_space(dest, model_id=REPO_ID, revision=commit, model_name="Tiny Voxtral", hf_username="alice",
                      branding={"title": "Tiny Voxtral {{ 7*7 }}", "description": "A *test* demo.",
                                "links": {"Docs": "https://example.org/docs"}},
                      examples_dir=ex, license="apache-2.0")
    return dest


@pytest.fixture(scope="module")
def app(published, space_dir, tmp_path_factory):
    hub, api, commit = published
    from voxtral_deploy.demo_app import space_variables
    variables = space_variables(REPO_ID, revision=commit, model_name="Tiny Voxtral", hf_username="alice",
                                branding={"title": "Tiny Voxtral {{ 7*7 }}", "description": "A *test* demo.",
                                          "links": {"Docs": "https://example.org/docs"}})
    env = _app_env(hub, variables, tmp_path_factory.mktemp("hf-home"))
    with start_demo_app(space_dir, env, log=tmp_path_factory.mktemp("logs") / "app.log") as running:
        yield running


def _predict(client, path, language="auto", max_new_tokens=16):
    from gradio_client import handle_file
    return client.predict(handle_file(str(path)), language, max_new_tokens, api_name="/transcribe")


def _assert_serving(app):
    assert app.proc.poll() is None, app.log_text()[-3000:]
    info = app.client().predict(api_name="/model_info")
    assert info["model"] == REPO_ID


# ---- The rendered Space --------------------------------------------------------------------------------
def test_rendered_space_files(space_dir, published):
    import ast
    import gradio
    from huggingface_hub import RepoCard
    hub, api, commit = published
    assert sorted(p.relative_to(space_dir).as_posix() for p in space_dir.rglob("*") if p.is_file()) == \
        ["README.md", "app.py", "examples/tone.wav", "feedback.py", "inference.py", "live.py", "metrics.py", "realtime.py", "requirements.txt"]
    ast.parse((space_dir / "app.py").read_text())
    card = RepoCard((space_dir / "README.md").read_text())
    assert card.data.sdk == "gradio" and card.data.sdk_version == gradio.__version__
    assert card.data.app_file == "app.py" and card.data.models == [REPO_ID] and card.data.license == "apache-2.0"
    assert card.data.title == "Tiny Voxtral {{ 7*7 }}" and len(card.data.short_description) <= 60
    assert card.data.preload_from_hub == [REPO_ID]
    assert commit in card.text
    reqs = (space_dir / "requirements.txt").read_text().splitlines()
    pinned = [r for r in reqs if r and not r.startswith("#")]
    assert all("==" in r for r in pinned) and not any(r.lower().startswith("gradio") for r in pinned)
    assert not any(r.startswith(("bitsandbytes", "accelerate")) for r in pinned)
    for module in ("inference", "live", "realtime"):
        src = Path(__import__(f"voxtral_deploy.{module}", fromlist=["x"]).__file__).read_bytes()
        assert (space_dir / f"{module}.py").read_bytes() == src


# ---- The running app -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["wav", "flac", "mp3", "stereo44k", "silence"])
def test_transcribes_audio_formats(app, clips, kind):
    text, confidence, tokens, details, summary = _predict(app.client(), clips[kind])
    assert isinstance(text, str) and 0.0 <= confidence <= 1.0
    assert details["revision"] == app.env["MODEL_REVISION"] and details["model"] == REPO_ID
    expected = 1.0 if kind == "silence" else 2.0
    assert abs(details["duration"] - expected) < 0.1
    assert isinstance(tokens, list) and all({"token", "class_or_confidence"} <= set(t) for t in tokens)
    assert f"Mean confidence {confidence:.3f}" in summary  # what the page shows besides the text
    if kind == "silence": assert any("silent" in w for w in details["warnings"]) and "⚠️ The audio is silent" in summary
    _assert_serving(app)


@pytest.mark.parametrize("kind, words", [("empty", "empty"), ("text", "not an audio file"),
                                         ("long", f"more than the {MAX_AUDIO_SECONDS} s")])
def test_bad_audio_gets_a_clear_error(app, clips, kind, words):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as e:
        _predict(app.client(), clips[kind])
    msg = str(e.value)
    assert words in msg and "Traceback" not in msg and len(msg) < 300
    _assert_serving(app)


def test_languages_and_options(app, clips):
    from gradio_client.exceptions import AppError
    c = app.client()
    text, _, _, details, _ = _predict(c, clips["wav"], language="fr", max_new_tokens=4)
    assert details["language"] == "fr" and details["num_tokens"] <= 4
    with pytest.raises(AppError, match="not in the list of choices"):
        _predict(c, clips["wav"], language="klingon")
    _assert_serving(app)


def test_no_audio_is_a_user_error(app):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="No audio"):
        app.client().predict(None, "auto", 8, api_name="/transcribe")
    _assert_serving(app)


def test_api_is_deterministic_and_reports_its_commit(app, clips, published):
    hub, api, commit = published
    c = app.client()
    info = c.predict(api_name="/model_info")
    assert info["commit"] == commit and info["revision"] == commit and info["queue_size"] == QUEUE_SIZE
    a, b = _predict(c, clips["wav"])[0], _predict(c, clips["wav"])[0]
    assert a == b
    assert f"serving {REPO_ID} at commit {commit}" in app.log_text()


def test_streamed_text_grows_into_the_plain_result(app, clips):
    "A caller who asks to stream sees the text grow token by token; the last update is what predict returns."
    from gradio_client import handle_file
    c = app.client()
    plain = _predict(c, clips["wav"], max_new_tokens=48)
    job = c.submit(handle_file(str(clips["wav"])), "auto", 48, api_name="/transcribe")
    final = job.result(timeout=120)
    assert final[0] == plain[0] and final[3]["num_tokens"] == plain[3]["num_tokens"] and final[1] == plain[1]
    texts = [o[0] for o in job.outputs() if isinstance(o[0], str)]
    assert texts[-1] == final[0]
    growing = [t for t in texts[:-1] if t]
    assert len(set(growing)) >= 3, texts  # shown while generated, not only at the end
    assert all(final[0].startswith(t) for t in growing), texts


def _predict_retrying(client, path, max_new_tokens):
    "predict, trying again while the queue is full (a client would)."
    while True:
        try: return _predict(client, path, max_new_tokens=max_new_tokens)
        except Exception as e:
            if "Queue is full" not in str(e): raise
            time.sleep(0.05)


def test_concurrent_requests_share_generate_calls_and_get_their_plain_results(app, clips):
    "Requests arriving together run in one generate call (padding-aware); each gets the text it gets alone."
    from gradio_client import Client
    c = app.client()
    jobs = [(clips["wav"], 12), (clips["short"], 6), (clips["flac"], 9), (clips["stereo44k"], 16)] * 2
    plain = [_predict(c, path, max_new_tokens=n) for path, n in jobs]  # one at a time
    before = c.predict(api_name="/model_info")["batching"]
    clients = [Client(app.url, verbose=False) for _ in jobs]
    barrier = threading.Barrier(len(jobs))

    def one(client, job):
        barrier.wait()
        return _predict_retrying(client, *job)

    with cf.ThreadPoolExecutor(len(jobs)) as pool: got = list(pool.map(one, clients, jobs))
    after = c.predict(api_name="/model_info")["batching"]
    assert [g[0] for g in got] == [p[0] for p in plain]
    assert [g[3]["num_tokens"] for g in got] == [p[3]["num_tokens"] for p in plain]
    assert all(abs(g[1] - p[1]) < 1e-3 for g, p in zip(got, plain))
    assert after["requests"] - before["requests"] == len(jobs)
    assert after["batches"] - before["batches"] < len(jobs) and after["largest_batch"] > 1, (before, after)
    _assert_serving(app)


def test_cut_short_text_says_so_outside_the_details(app, clips):
    text, _, _, details, warnings = _predict(app.client(), clips["wav"], max_new_tokens=1)
    assert details["num_tokens"] <= 1
    if details["num_tokens"] == 1:  # it did not end by itself: the person is told, not only the JSON
        assert "max_new_tokens=1" in warnings and "max_new_tokens=1" in " ".join(details["warnings"])


@pytest.mark.parametrize("value", [0, 10_000, 2.5, "lots", None])
def test_bad_max_new_tokens_gets_a_clear_error(app, clips, value):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as e:
        _predict(app.client(), clips["wav"], max_new_tokens=value)
    msg = str(e.value)
    assert "max_new_tokens" in msg and "1 to 64" in msg and "upstream" not in msg, msg
    _assert_serving(app)


def test_concurrent_clients_get_an_answer_or_busy(app, clips):
    "32 clients at once: each gets a transcription or the queue's clear 'busy' answer; the app survives."
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    clients = [Client(app.url, verbose=False) for _ in range(32)]
    barrier = threading.Barrier(32)

    def one(client):
        barrier.wait()
        try: return "ok" if isinstance(_predict(client, clips["short"], max_new_tokens=8)[0], str) else "bad"
        except Exception as e:  # the client's QueueError for a full queue; anything else is a failure
            return "busy" if "Queue is full" in str(e) else f"error: {type(e).__name__}: {e}"

    with cf.ThreadPoolExecutor(32) as pool: outcomes = list(pool.map(one, clients))
    errors = [o for o in outcomes if o not in ("ok", "busy")]
    assert not errors, errors
    assert outcomes.count("ok") >= 1 and outcomes.count("busy") >= 1, outcomes  # QUEUE_SIZE is 4: some must be told busy
    _assert_serving(app)


@pytest.mark.slow
def test_memory_stays_bounded_over_500_requests(app, clips):
    import psutil
    proc = psutil.Process(app.proc.pid)
    clients = [app.client() for _ in range(4)]  # 4 workers keep the queue (size 4) full without overflowing it
    done, lock = [0], threading.Lock()

    def work(client, n):
        for _ in range(n):
            while True:
                try: _predict(client, clips["short"], max_new_tokens=2); break
                except Exception as e:
                    if "Queue is full" not in str(e): raise
                    time.sleep(0.05)
            with lock: done[0] += 1

    assert proc.environ().get("MALLOC_ARENA_MAX") == "2"  # the Space variable the deployer sets, as a Space gets it
    for c in clients: _predict(c, clips["short"], max_new_tokens=2)  # warm up allocator and caches
    rss_start = proc.memory_info().rss
    samples = []
    for _ in range(10):  # 10 rounds of 50
        with cf.ThreadPoolExecutor(4) as pool: list(pool.map(work, clients, [13, 13, 12, 12]))
        samples.append(proc.memory_info().rss)
    assert done[0] == 500
    mib = [x >> 20 for x in [rss_start, *samples]]
    # Bounded means a plateau: allocator arenas, thread pools and caches grow the process in steps during the
    # first requests, and it may step up and back down later, but what it keeps does not grow. So the smallest of the
    # last three samples (requests 351-500) must stay within 20 MB of the typical size over the first 250 (the median
    # of five samples). A leak would not: each request's input features alone are 1.5 MB (Voxtral pads audio to 30 s),
    # and even 0.1 MB kept per request adds 25 MB between the third sample and the eighth, and every sample after it is
    # larger still. A step of the allocator that comes back down does not count (seen: +20 MB for four samples from
    # request 251, then back to +2 MB at the last); one of 20 MB or more that stays fails, as a leak would.
    warm, steady = samples[:5], samples[-3:]
    assert min(steady) - statistics.median(warm) < 20 * 2**20, mib
    assert max(samples) - rss_start < 200 * 2**20, mib
    _assert_serving(app)


# ---- Pinning: a new push never changes what the demo serves -------------------------------------------
def _import_app(space: Path, env: dict, script: str, timeout: float = 180) -> subprocess.CompletedProcess:
    code = "import json, sys\nsys.path.insert(0, '.')\nimport app\n" + script
    return subprocess.run([sys.executable, "-c", code], cwd=space, env=env, capture_output=True, text=True, timeout=timeout)


def test_pinned_revision_survives_a_new_push(app, published, space_dir, clips, tmp_path):
    from voxtral_deploy.testing import make_tiny_voxtral
    hub, api, first = published
    before = _predict(app.client(), clips["wav"])[0]
    other = make_tiny_voxtral(tmp_path / "other", seed=1)
    second = api.upload_folder(repo_id=REPO_ID, folder_path=other, commit_message="retrained").oid
    assert second != first and api.model_info(REPO_ID).sha == second
    # The running demo is unchanged...
    assert app.client().predict(api_name="/model_info")["commit"] == first
    assert _predict(app.client(), clips["wav"])[0] == before
    # ...and a fresh start (a Space restart) with the same MODEL_REVISION still loads the first commit,
    # importing app.py without launching a server. This start also plays a ZeroGPU Space: with `spaces`
    # importable and SPACES_ZERO_GPU set, generation runs under @spaces.GPU (a stand-in module records it).
    fake = tmp_path / "fake"; fake.mkdir()
    (fake / "spaces.py").write_text(  # stands in for Hugging Face's `spaces` package (not installable offline)
        "CALLS = []\n"
        "def GPU(duration=60):\n"
        "    def wrap(fn):\n"
        "        def run(*a, **k):\n"
        "            CALLS.append(duration)\n"
        "            return fn(*a, **k)\n"
        "        return run\n"
        "    return wrap\n")
    script = ("import gradio as gr\nassert isinstance(app.demo, gr.Blocks)\n"
              f"r = list(app.transcribe({str(clips['wav'])!r}, 'auto', 16))[-1]\n"
              "calls = sys.modules['spaces'].CALLS if app.spaces else None\n"
              "print(json.dumps({'commit': app.MODEL_COMMIT, 'text': r[0], 'zerogpu': app.ON_ZEROGPU, 'gpu_calls': calls}))")
    env = {**app.env, "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(fake)}
    r = _import_app(space_dir, {**env, "SPACES_ZERO_GPU": "true"}, script)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"commit": first, "text": before, "zerogpu": True, "gpu_calls": [150]}
    assert "Running on" not in r.stdout + r.stderr  # imported, not launched
    # Pointing MODEL_REVISION at the new commit is what changes the demo (and off ZeroGPU nothing is wrapped).
    r2 = _import_app(space_dir, {**env, "MODEL_REVISION": second}, script)
    assert r2.returncode == 0, r2.stderr[-3000:]
    got2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert got2["commit"] == second and got2["zerogpu"] is False and got2["gpu_calls"] == []


@pytest.mark.parametrize("change, words", [
    ({"MODEL_REVISION": "0" * 40}, "Cannot load alice/tiny-voxtral at revision 0000"),
    ({"MODEL_REVISION": ""}, "MODEL_REVISION is not set"),
    ({"HF_MODEL_ID": "alice/does-not-exist"}, "Cannot load alice/does-not-exist"),
    ({"HF_MODEL_ID": ""}, "HF_MODEL_ID is not set"),
    ({"QUEUE_SIZE": "lots"}, "QUEUE_SIZE='lots' is not a number"),
])
def test_missing_model_fails_loudly_at_start(app, space_dir, tmp_path, change, words):
    r = _import_app(space_dir, {**app.env, "HF_HOME": str(tmp_path / "hf-home"), **change}, "print('started')")
    assert r.returncode != 0 and "started" not in r.stdout
    assert words in r.stderr, r.stderr[-2000:]


# ---- The page in a real browser ------------------------------------------------------------------------
def _chromium(url: str, profile: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--window-size=1280,1600", "--virtual-time-budget=15000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_page_in_headless_chromium(app, tmp_path):
    r = _chromium(app.url, tmp_path / "profile", "--dump-dom")
    dom = r.stdout
    assert 'id="audio-input"' in dom, (r.stderr[-2000:], dom[:2000])
    for elem_id in ("language", "transcription", "token-confidence", "transcribe-button"):
        assert f'id="{elem_id}"' in dom, elem_id
    assert "Tiny Voxtral {{ 7*7 }}" in dom  # user text shown literally
    assert app.env["MODEL_REVISION"] in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "demo_app.png"
    shot.unlink(missing_ok=True)
    r = _chromium(app.url, tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    _assert_serving(app)
