"""Operations end to end on the local hub: a transient Space failure rebuilt once (no rollback), a deterministic one
rolled back without a rebuild; the runtime metrics of the demo app; status of a Space and of a model."""
import json
from pathlib import Path

import pytest

from conftest import ALICE_WRITE

MODEL = "alice/tiny-voxtral"
SPACE = "alice/ops-demo"
TIMEOUT = 240
TINY_APP = ("import http.server, os\nprint('serving', flush=True)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), "
            "http.server.SimpleHTTPRequestHandler).serve_forever()\n")


def _template(tmp_path, name, app) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "app.py").write_text(app); (d / "requirements.txt").write_text("")
    return d


@pytest.fixture
def published(api, tiny_model_dir):
    api.create_repo(MODEL, exist_ok=True)
    return api.upload_folder(repo_id=MODEL, folder_path=tiny_model_dir, commit_message="tiny voxtral").oid


def _deploy(api, template, events, **kw):
    from voxtral_deploy.space import DemoSpaceDeployer
    return DemoSpaceDeployer(api=api, model_id=MODEL, space_name=SPACE, template_dir=template,
                             progress=events.append).deploy(timeout=TIMEOUT, smoke_check=False, **kw)


def _rebuilds(events) -> list:
    return [e for e in events if e.stage == "build" and e.status == "warning" and "Rebuilding" in e.message]


@pytest.mark.space
@pytest.mark.slow
def test_transient_failures_are_rebuilt_once_and_run_without_rollback(hub, api, published, tmp_path):
    hub.faults.inject_space(SPACE, "index-timeout")  # the first build: pip times out on the index
    events = []
    r = _deploy(api, _template(tmp_path, "good", TINY_APP), events)
    assert r.stage == "RUNNING" and r.created
    assert r.failure["transient"] and r.failure["rebuilt"] and r.failure["cause"] == "package-index"
    assert r.failure["stage"] == "BUILD_ERROR" and "Read timed out" in r.failure["evidence"]
    assert len(_rebuilds(events)) == 1 and not [e for e in events if e.stage == "rollback"]
    assert any("factory rebuild" in l for l in api.fetch_space_logs(SPACE, build=True))
    assert [c.title for c in api.list_repo_commits(SPACE, repo_type="space")][0].startswith("Deploy the demo")

    hub.faults.inject_space(SPACE, "oom")  # a redeploy whose app is killed for memory while starting
    events = []
    r2 = _deploy(api, _template(tmp_path, "good2", TINY_APP.replace("'serving'", "'serving v2'")), events)
    assert r2.stage == "RUNNING" and r2.committed and r2.failure["cause"] == "out-of-memory" and r2.failure["stage"] == "RUNTIME_ERROR"
    assert len(_rebuilds(events)) == 1 and not [e for e in events if e.stage == "rollback"]
    json.dumps(r2.to_dict())


@pytest.mark.space
@pytest.mark.slow
def test_deterministic_failure_is_rolled_back_without_rebuild(hub, api, published, tmp_path):
    from voxtral_deploy.core import SpaceBuildError
    good = _deploy(api, _template(tmp_path, "good", TINY_APP), [])
    events = []
    with pytest.raises(SpaceBuildError) as ei:
        _deploy(api, _template(tmp_path, "bad", "import not_a_module_anywhere\n"), events)
    e = ei.value
    assert e.rolled_back and e.stage == "RUNTIME_ERROR"
    assert e.failure == {**e.failure, "transient": False, "cause": "import-error", "rebuilt": False}
    assert "ModuleNotFoundError" in e.failure["evidence"] and not _rebuilds(events)
    assert str(api.get_space_runtime(SPACE).stage) == "RUNNING"
    assert not any("factory rebuild" in l for l in api.fetch_space_logs(SPACE, build=True))

    hub.faults.inject_space(SPACE, "hub-5xx", times=2)  # transient, but the rebuild fails too: then the rollback
    events = []
    with pytest.raises(SpaceBuildError) as ei:
        _deploy(api, _template(tmp_path, "good3", TINY_APP.replace("'serving'", "'serving v3'")), events)
    e = ei.value
    assert e.rolled_back and e.failure["transient"] and e.failure["rebuilt"] and e.failure["cause"] == "hub-5xx"
    assert e.failure["after_rebuild"]["cause"] == "hub-5xx" and len(_rebuilds(events)) == 1
    assert str(api.get_space_runtime(SPACE).stage) == "RUNNING" and good.commit_oid


# ---- Runtime metrics of the demo app ------------------------------------------------------------------
@pytest.fixture
def metrics_app(hub, api, published, tmp_path):
    "The real demo app on the published tiny model, with a queue of one place (so a burst gets refusals)."
    from voxtral_deploy.demo_app import render_demo_space, space_variables
    from voxtral_deploy.testing import demo_app_env, start_demo_app
    dest = render_demo_space(tmp_path / "space", model_id=MODEL, revision=published)
    env = demo_app_env(hub.endpoint, space_variables(MODEL, revision=published), hf_home=tmp_path / "hf-home",
                       QUEUE_SIZE=1, MAX_BATCH_SIZE=1, MAX_NEW_TOKENS=24, STREAM_INTERVAL=0)
    with start_demo_app(tmp_path / "space", env, log=tmp_path / "app.log") as running:
        yield running


@pytest.mark.space
@pytest.mark.slow
def test_metrics_count_requests_errors_and_queue_refusals(metrics_app, published, tmp_path):
    import concurrent.futures
    from gradio_client import handle_file
    from voxtral_deploy.testing import make_clip
    clip = make_clip(tmp_path / "clip.wav", 2.0)
    (tmp_path / "text.wav").write_text("not audio at all\n")
    c = metrics_app.client()
    before = c.predict(api_name="/metrics")
    assert before["requests"] == 0 and before["model_commit"] == published and before["uptime_s"] >= 0
    n = 3
    for _ in range(n): c.predict(handle_file(str(clip)), "auto", 24, api_name="/transcribe")
    errors = {"bad-input": 0, "bad-audio": 0}
    for kind, audio in (("bad-input", None), ("bad-audio", handle_file(str(tmp_path / "text.wav")))):
        with pytest.raises(Exception):
            c.predict(audio, "auto", 24, api_name="/transcribe")
        errors[kind] += 1
    m = c.predict(api_name="/metrics")
    assert (m["requests"], m["ok"], m["errors"], m["errors_total"]) == (n + 2, n, errors, 2)
    assert m["audio_seconds"] == pytest.approx(2.0 * n, abs=0.05)
    assert m["latency_ms"]["p50"] > 0 and m["latency_ms"]["p95"] >= m["latency_ms"]["p50"] and m["rtf"]["p50"] > 0

    def one(_):  # a burst against a queue of one: some are refused; the app counts exactly those
        try: metrics_app.client().predict(handle_file(str(clip)), "auto", 24, api_name="/transcribe"); return "ok"
        except Exception as e: return "full" if "queue is full" in str(e).lower() else f"other: {e}"
    with concurrent.futures.ThreadPoolExecutor(8) as pool: outcomes = list(pool.map(one, range(8)))
    m2 = c.predict(api_name="/metrics")
    assert not [o for o in outcomes if o.startswith("other")], outcomes
    assert m2["queue_rejections"] == outcomes.count("full")
    assert m2["ok"] == n + outcomes.count("ok") and m2["requests"] == n + 2 + outcomes.count("ok")


@pytest.mark.space
@pytest.mark.slow
def test_status_of_a_space_and_its_model_as_users_act_on_them(hub, api, published, tmp_path):
    import subprocess, sys
    from gradio_client import Client, handle_file
    from voxtral_deploy.space import DemoSpaceDeployer
    from voxtral_deploy.status import status, status_summary
    from voxtral_deploy.testing import make_clip
    before = api.model_info(MODEL).downloads
    r = DemoSpaceDeployer(api=api, model_id=MODEL, space_name=SPACE).deploy(timeout=TIMEOUT, smoke_check=False)
    clip = make_clip(tmp_path / "clip.wav", 2.0)
    c = Client(r.host, verbose=False)
    for _ in range(2): c.predict(handle_file(str(clip)), "auto", 16, api_name="/transcribe")
    with pytest.raises(Exception): c.predict(None, "auto", 16, api_name="/transcribe")

    s = status(SPACE, api=api, repo_type="space")
    assert s["stage"] == "RUNNING" and s["health"]["ok"]
    m = s["metrics"]
    assert (m["requests"], m["ok"], m["errors"]) == (3, 2, {"bad-input": 1}) and m["model_commit"] == published
    assert "requests: 3 (2 ok; errors: bad-input 1" in status_summary(s)

    api.create_discussion(MODEL, title="Wrong on numbers")
    api.create_pull_request(MODEL, title="Fix the card")
    ms = status(MODEL, api=api)
    assert ms["linked_spaces"] == [SPACE] and ms["open"] == {"discussions": 1, "pull_requests": 1}
    assert ms["downloads"] > before  # the Space's app read config.json: the Hub's rule for a model download
    assert ms["feedback"] == {f"alice/{SPACE.split('/')[1]}-feedback": None}  # no flags yet: no dataset
    out = subprocess.run([str(Path(sys.executable).parent / "voxtral-deploy"), "status", MODEL, "--endpoint", hub.endpoint, "--json"],
                         capture_output=True, text=True, env={**__import__("os").environ, "HF_TOKEN": ALICE_WRITE}, timeout=120)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["linked_spaces"] == [SPACE] and d["open"]["pull_requests"] == 1 and ALICE_WRITE not in out.stdout + out.stderr
