"""The local Space runtime against an attacker and as the Hub behaves (issue 12): one regression test per attack.

Each test drives the real `huggingface_hub` client (and `gradio_client`, `hub serve`, the quickstart) against a
`LocalHub`; the apps are real child processes in the runtime's sandbox (bubblewrap where it works).
"""
import json, logging, os, signal, subprocess, sys, time, uuid
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi

from voxtral_deploy.core import MASK
from voxtral_deploy.localhub import LocalHub
from voxtral_deploy.localhub.sandbox import bwrap_path
from conftest import ALICE_READ, ALICE_WRITE, BOB_WRITE, TOKENS
from spacekit import echo_app, wait_stage

pytestmark = pytest.mark.space

ROOT = os.geteuid() == 0
needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap (bwrap) is not usable here: make sysdeps")

APP_SERVE = echo_app('{"space": os.environ.get("SPACE_ID"), "uid": os.getuid()}')


def _wait_stage(api, repo_id, stages, timeout=90): return wait_stage(api, repo_id, stages, timeout)


def _space(api, repo_id, app: str, *, private=False, variables=None, secrets=None, files=None):
    "Create Space `repo_id` and commit `app` (and `files`) in one commit."
    from huggingface_hub import CommitOperationAdd
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, space_variables=variables, space_secrets=secrets)
    ops = [CommitOperationAdd(p, c.encode()) for p, c in {"app.py": app, **(files or {})}.items()]
    api.create_commit(repo_id, ops, commit_message="app", repo_type="space")


def _logs(api, repo_id, build=False) -> str:
    return "".join(api.fetch_space_logs(repo_id, build=build))


def _pids_with(marker: str) -> list[int]:
    "Processes whose environment holds `marker` (a Space variable): the app and its sandbox."
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try:
            if marker.encode() in (d / "environ").read_bytes(): found.append(int(d.name))
        except OSError: pass
    return found


def _descendants(pid: int) -> set[int]:
    "Every process below `pid` (children, their children, ...)."
    parent = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit(): continue
        try: parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError): pass
    out, todo = set(), [pid]
    while todo:
        p = todo.pop(); kids = [c for c, pp in parent.items() if pp == p and c not in out]; out.update(kids); todo += kids
    return out


def _alive(pids) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in (Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[:1] or ["Z"])]


CLI = str(Path(sys.executable).parent / "voxtral-deploy")


def _gone(marker: str, timeout=15.0) -> list[int]:
    end = time.monotonic() + timeout
    while (left := _pids_with(marker)) and time.monotonic() < end: time.sleep(0.2)
    return left


# -- attack 2: untrusted Space code -----------------------------------------------------------------------------------
EVIL_APP = '''import glob, json, os
def grab(what, path):
    try:
        data = open(path, "rb").read()
        print(f"READ {what}: {len(data)} bytes: {data[:200]!r}", flush=True)
    except OSError as e: print(f"DENIED {what}: {type(e).__name__}", flush=True)
p = json.loads(os.environ["TARGETS"])
grab("admin-token", p["admin"]); grab("tokens file", p["tokens"])
for b in glob.glob(p["blobs"] + "/**/*", recursive=True)[:50] + [p["blob"]]: grab("blob", b)
for rel in ("../.localhub/admin-token", "../../.localhub/admin-token", "../../../.localhub/admin-token"): grab("relative", rel)
for f in glob.glob(p["other_space"] + "/**/*", recursive=True)[:50] + [p["other_space"] + "/run.log"]: grab("other space", f)
grab("hub environ", f"/proc/{p['hub_pid']}/environ")
print("uid", os.getuid(), "cwd", os.getcwd(), "HF_TOKEN" in os.environ, sorted(os.environ), flush=True)
print("EVIL DONE", flush=True)
'''


@needs_bwrap
def test_untrusted_space_code(tmp_path, monkeypatch):
    "bob's app.py tries to read the admin token, the tokens file, the blobs and alice's Space, and prints them: it reads none."
    root = tmp_path / "hub"; (root / ".localhub").mkdir(parents=True)
    (root / ".localhub" / "tokens.json").write_text(json.dumps(TOKENS)); os.chmod(root / ".localhub" / "tokens.json", 0o600)
    monkeypatch.setenv("HF_TOKEN", "hf_FakeHubOwnerToken000000000000000009")  # the hub's own environment
    private = b"ALICE-PRIVATE-DATA-" + uuid.uuid4().hex.encode()
    with LocalHub(root, tokens=None) as hub:
        alice, bob = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE), HfApi(endpoint=hub.endpoint, token=BOB_WRITE)
        alice.create_repo("alice/private-model", private=True)
        sha = alice.upload_file(path_or_fileobj=private, path_in_repo="secret.txt", repo_id="alice/private-model").oid
        _space(alice, "alice/secret-space", APP_SERVE, private=True, files={"private.txt": private.decode()},
               secrets=[{"key": "ALICE_SECRET", "value": "hf_FakeAliceSpaceSecret00000000000007"}])
        assert _wait_stage(alice, "alice/secret-space", ("RUNNING", "RUNTIME_ERROR")).stage == "RUNNING"
        import hashlib
        targets = {"admin": str(hub.admin_token_file), "tokens": str(root / ".localhub" / "tokens.json"),
                   "blobs": str(root), "blob": str(hub.store.blobs.path(hashlib.sha256(private).hexdigest())),
                   "other_space": str(hub.spaces.space_dir("alice/secret-space")), "hub_pid": os.getpid()}
        assert Path(targets["blob"]).read_bytes() == private and sha  # the blob is where the app looks
        _space(bob, "bob/evil", EVIL_APP, variables=[{"key": "TARGETS", "value": json.dumps(targets)}])
        _wait_stage(bob, "bob/evil", ("RUNTIME_ERROR", "RUNNING"))
        logs = _logs(bob, "bob/evil")
    assert "EVIL DONE" in logs, logs[-3000:]
    assert "READ " not in logs, logs[-3000:]
    assert logs.count("DENIED") >= 6
    assert private.decode() not in logs and MASK not in logs  # nothing read, so nothing even to mask
    assert "hf_FakeHubOwnerToken" not in logs and " False [" in logs  # no HF_TOKEN from the hub's environment
    assert "cwd /home/user/app" in logs
    if ROOT: assert "uid 65534 " in logs


def test_untrusted_space_code_without_bwrap_says_so(tmp_path):
    "Without bubblewrap the app still runs outside the hub root with a scrubbed environment, and the log says so once."
    with LocalHub(tmp_path / "hub", tokens=TOKENS) as hub:
        hub.spaces.sandbox = "plain"
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        _space(api, "alice/plain", "import os; print('cwd', os.getcwd(), flush=True); print(sorted(os.environ), flush=True)\n")
        _wait_stage(api, "alice/plain", ("RUNTIME_ERROR", "RUNNING"))
        build, run = _logs(api, "alice/plain", build=True), _logs(api, "alice/plain")
    assert build.count("bubblewrap is not available here") == 1
    cwd = Path(run.split("cwd ", 1)[1].split()[0])
    assert not cwd.is_relative_to(hub.root)
    assert "'HF_ENDPOINT'" in run and "'HF_TOKEN'" not in run and "'PYTEST_CURRENT_TEST'" not in run


# -- attack 5: secrets lost on restart --------------------------------------------------------------------------------
APP_PRIVATE_MODEL = '''import os, sys, urllib.request
req = urllib.request.Request(os.environ["HF_ENDPOINT"] + "/alice/private-model/resolve/main/weights.txt",
                             headers={"Authorization": "Bearer " + os.environ["HF_TOKEN"]})
print("model:", urllib.request.urlopen(req).read().decode(), flush=True)
''' + APP_SERVE


def test_secrets_lost_on_restart(tmp_path):
    "A private model's RUNNING demo (its token a Space secret) is RUNNING again after a hub restart; the secret is kept 0600."
    root = tmp_path / "hub"
    with LocalHub(root, tokens=TOKENS) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        api.create_repo("alice/private-model", private=True)
        api.upload_file(path_or_fileobj=b"tiny weights", path_in_repo="weights.txt", repo_id="alice/private-model")
        _space(api, "alice/demo", APP_PRIVATE_MODEL, secrets=[{"key": "HF_TOKEN", "value": ALICE_READ}])
        assert _wait_stage(api, "alice/demo", ("RUNNING", "RUNTIME_ERROR")).stage == "RUNNING"
    f = root / ".localhub" / "space-secrets.json"
    assert f.stat().st_mode & 0o777 == 0o600 and ALICE_READ in f.read_text()
    with LocalHub(root, tokens=TOKENS) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        rt = _wait_stage(api, "alice/demo", ("RUNNING", "RUNTIME_ERROR"))
        assert rt.stage == "RUNNING", (rt.raw, _logs(api, "alice/demo"))
        assert "model: tiny weights" in _logs(api, "alice/demo")
        assert list(api.get_space_secrets("alice/demo")) == ["HF_TOKEN"]
        r = httpx.get(f"{hub.endpoint}/api/spaces/alice/demo/secrets", headers={"Authorization": f"Bearer {ALICE_WRITE}"})
        assert r.status_code == 200 and ALICE_READ not in r.text
        for path in (".localhub/space-secrets.json", "space-secrets.json", "api/spaces/alice/demo/secrets/HF_TOKEN"):
            assert ALICE_READ not in httpx.get(f"{hub.endpoint}/{path}", headers={"Authorization": f"Bearer {ALICE_WRITE}"}).text
        api.delete_repo("alice/demo", repo_type="space")
    assert ALICE_READ not in f.read_text()


# -- attack 9: a short secret in clear in the run log -----------------------------------------------------------------
APP_PRINTS_SECRETS = '''import os
print(f"pin={os.environ['PIN']} code={os.environ['CODE']} word={os.environ['WORD']} on port 7861", flush=True)
raise SystemExit(f"failed with {os.environ['CODE']}")
'''


def test_short_space_secret_in_run_log(hub, api):
    "Secrets of 1, 3 and 5 characters printed by the app are masked in the run log and in run.log; other digits stay."
    _space(api, "alice/leaky", APP_PRINTS_SECRETS, secrets=[{"key": "PIN", "value": "7"}, {"key": "CODE", "value": "x9z"},
                                                           {"key": "WORD", "value": "pa55w"}])
    rt = _wait_stage(api, "alice/leaky", ("RUNTIME_ERROR", "RUNNING"))
    logs = _logs(api, "alice/leaky")
    assert f"pin={MASK} code={MASK} word={MASK} on port 7861" in logs, logs
    assert "x9z" not in logs and "pa55w" not in logs and "pin=7" not in logs
    assert "x9z" not in (rt.raw["errorMessage"] or "") and f"failed with {MASK}" in rt.raw["errorMessage"]
    run_log = (hub.spaces.space_dir("alice/leaky") / "run.log").read_text()
    assert "pa55w" not in run_log and f"pin={MASK}" in run_log


# -- attack 10: a private Space's app answers anyone ------------------------------------------------------------------
@needs_bwrap
@pytest.mark.skipif(not ROOT, reason="a network namespace per app needs the hub to run as root")
def test_private_space_app_answers_anyone(hub, api):
    "The host of a private Space answers only callers whose token may read it; a public Space answers everyone."
    _space(api, "alice/private-app", APP_SERVE, private=True)
    _space(api, "alice/public-app", APP_SERVE)
    for sid in ("alice/private-app", "alice/public-app"): assert _wait_stage(api, sid, ("RUNNING", "RUNTIME_ERROR")).stage == "RUNNING"
    host = api.space_info("alice/private-app").host
    assert httpx.get(host).status_code == 401
    assert httpx.get(host, headers={"Authorization": f"Bearer {BOB_WRITE}"}).status_code == 401  # bob may not read it
    assert httpx.get(host, headers={"Authorization": "Bearer hf_FakeUnknownToken0000000000000000"}).status_code == 401
    r = httpx.get(host, headers={"Authorization": f"Bearer {ALICE_READ}"})
    assert r.status_code == 200 and r.json()["space"] == "alice/private-app"
    public = api.space_info("alice/public-app").host
    assert httpx.get(public).json()["space"] == "alice/public-app"
    api.update_repo_settings("alice/public-app", private=True, repo_type="space")  # asked at each connection: no restart needed
    assert httpx.get(public).status_code == 401 and httpx.get(public, headers={"Authorization": f"Bearer {ALICE_READ}"}).status_code == 200


GRADIO_APP = '''import gradio as gr
demo = gr.Interface(lambda text: text[::-1], "text", "text", api_name="reverse")
demo.launch()
'''


@needs_bwrap
@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="a network namespace per app needs the hub to run as root")
def test_private_space_app_answers_anyone_gradio_client(hub, api):
    "What the smoke check does (gradio_client with the token, at the host the hub reports) works on a private Space; without a token it is refused."
    from gradio_client import Client
    _space(api, "alice/private-gradio", GRADIO_APP, private=True)
    assert _wait_stage(api, "alice/private-gradio", ("RUNNING", "RUNTIME_ERROR"), timeout=180).stage == "RUNNING"
    host = api.space_info("alice/private-gradio").host
    assert Client(host, token=ALICE_READ, verbose=False, analytics_enabled=False).predict("abc", api_name="/reverse") == "cba"
    with pytest.raises(Exception): Client(host, verbose=False, analytics_enabled=False)


# -- a build racing a delete or a re-create ---------------------------------------------------------------------------
def test_space_build_racing_delete(hub, api, caplog):
    "Deleting (and creating again) a Space while it builds cancels the build: no error inside the hub, no app left."
    marker = f"RACE-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG, logger="voxtral_deploy.localhub")
    for i in range(6):
        _space(api, "alice/racy", APP_SERVE, variables=[{"key": "MARKER", "value": marker}])
        time.sleep((0.0, 0.05, 0.2, 0.5, 1.0, 1.5)[i])
        api.delete_repo("alice/racy", repo_type="space")
    _space(api, "alice/racy", APP_SERVE, variables=[{"key": "MARKER", "value": marker}])
    assert _wait_stage(api, "alice/racy", ("RUNNING", "RUNTIME_ERROR", "BUILD_ERROR")).stage == "RUNNING"
    assert len(_pids_with(marker)) >= 1
    api.delete_repo("alice/racy", repo_type="space")
    assert _gone(marker) == []
    bad = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    assert not any(p.name == "alice" and any(p.iterdir()) for p in hub.spaces.work_dir().iterdir())


# -- stages as a client polling every second sees them ----------------------------------------------------------------
def test_space_stages_observed(hub, api):
    "After a commit with app.py a client polling every second sees BUILDING, then RUNNING; pause gives PAUSED, restart leaves it."
    api.create_repo("alice/stages", repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=APP_SERVE.encode(), path_in_repo="app.py", repo_id="alice/stages", repo_type="space")
    seen = []
    for _ in range(60):
        seen.append(api.get_space_runtime("alice/stages").stage)
        if seen[-1] == "RUNNING": break
        time.sleep(1.0)
    assert seen[0] == "BUILDING" and seen[-1] == "RUNNING", seen
    assert set(seen) <= {"BUILDING", "APP_STARTING", "RUNNING"} and seen.index("RUNNING") > seen.index("BUILDING")
    assert api.pause_space("alice/stages").stage == "PAUSED"
    assert api.get_space_runtime("alice/stages").stage == "PAUSED"
    assert api.restart_space("alice/stages").stage == "BUILDING"
    assert _wait_stage(api, "alice/stages", ("RUNNING", "RUNTIME_ERROR")).stage == "RUNNING"


# -- a demo orphaned by SIGTERM / SIGKILL -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("sig,sandbox", [(signal.SIGTERM, "auto"), (signal.SIGHUP, "auto"), (signal.SIGKILL, "auto"), (signal.SIGKILL, "plain")],
                         ids=["SIGTERM", "SIGHUP", "SIGKILL", "SIGKILL-without-bwrap"])
def test_hub_serve_killed_leaves_no_app(tmp_path, tokens_file, sig, sandbox):
    "`hub serve` stopped with SIGTERM or SIGHUP, or killed outright with SIGKILL (bwrap --die-with-parent, or PR_SET_PDEATHSIG), leaves no app."
    marker = f"ORPHAN-{uuid.uuid4().hex}"
    proc = subprocess.Popen([CLI, "hub", "serve", "--root", str(tmp_path / "hub"), "--tokens", str(tokens_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            env={**os.environ, "VOXTRAL_SPACE_SANDBOX": sandbox})
    try:
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), endpoint
        api = HfApi(endpoint=endpoint, token=ALICE_WRITE)
        _space(api, "alice/orphan", APP_SERVE, variables=[{"key": "MARKER", "value": marker}])
        assert _wait_stage(api, "alice/orphan", ("RUNNING", "RUNTIME_ERROR")).stage == "RUNNING"
        assert _pids_with(marker)
        proc.send_signal(sig); proc.wait(30)
        assert _gone(marker) == []
        if sig != signal.SIGKILL: assert proc.returncode == 0
    finally:
        if proc.poll() is None: proc.kill()
        for pid in _pids_with(marker): os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_quickstart_sigterm_leaves_no_app(tmp_path, tiny_model_dir):
    "`voxtral-deploy quickstart` stopped with SIGTERM (a CI timeout, `kill`) stops the demo's app and the hub, as Ctrl-C does."
    import re  # (a given model skips the quickstart's evaluation: the signal handling is the same)
    proc = subprocess.Popen([CLI, "quickstart", "--workdir", str(tmp_path / "demo"), "--model", str(tiny_model_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "HF_HUB_DISABLE_XET": "1", "PYTHONUNBUFFERED": "1"})
    try:
        lines, host, deadline = [], None, time.monotonic() + 300
        while time.monotonic() < deadline and host is None:
            line = proc.stdout.readline()
            if not line: break
            lines.append(line); m = re.search(r"The demo is up: open (\S+) in a browser", line); host = m and m.group(1)
        assert host, "".join(lines[-40:])
        children = _descendants(proc.pid)
        assert children, "the demo's app was not found"
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
        assert "stopping the demo" in rest, rest[-2000:]
        time.sleep(0.5)
        assert _alive(children) == []
        with pytest.raises(httpx.HTTPError): httpx.get(host, timeout=5)
    finally:
        if proc.poll() is None: proc.kill()
