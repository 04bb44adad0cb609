"""A CLI that never shows a traceback: every way a person gets the command line wrong ends in one line that says what to
do, against a real local hub (and a port where nothing listens), on a model folder made by a real `Trainer` run.

Most cases call the command's entry point (`cli.main`) in this process, which is what the `voxtral-deploy` script runs; a
traceback there would fail the test itself. `hub serve` and one token-file case run the installed script in a subprocess.
"""
import contextlib, io, json, os, signal, subprocess, sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from conftest import ALICE_READ, ALICE_WRITE, TOKENS

pytestmark = pytest.mark.slow
EXE = str(Path(sys.executable).with_name("voxtral-deploy"))
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there
BASE_ID = "mistralai/Voxtral-Mini-3B-2507"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from voxtral_deploy.localhub import LocalHub
    d = tmp_path_factory.mktemp("hub")
    (d / "alice.token").write_text(ALICE_WRITE + "\n"); (d / "alice-read.token").write_text(ALICE_READ + "\n")
    with LocalHub(d / "root", tokens=TOKENS) as hub:
        yield SimpleNamespace(hub=hub, endpoint=hub.endpoint, token=d / "alice.token", read_token=d / "alice-read.token",
                              api=HfApi(endpoint=hub.endpoint, token=ALICE_WRITE))


def cli(*args) -> SimpleNamespace:
    from voxtral_deploy.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in args])
    r = SimpleNamespace(rc=rc, out=out.getvalue(), err=err.getvalue())
    r.errors = [l for l in r.err.splitlines() if l.startswith("error:")]
    assert "Traceback" not in r.err
    return r


def hub_args(s, token=None): return ["--endpoint", s.endpoint, "--token-file", token or s.token]


def one_error(r, *needles) -> str:
    "The single `error:` line of a failed command, checked to hold every needle."
    assert r.rc == 1 and len(r.errors) == 1, r.err
    for n in needles: assert n in r.errors[0], r.errors[0]
    return r.errors[0]


def test_token_file_missing_or_unreadable_is_one_line(served, trained_run, tmp_path):
    for args in (["publish", trained_run.output_dir], ["status", "alice/x"], ["deploy", trained_run.output_dir, "--no-space"],
                 ["space", "--model-id", "alice/x"]):
        one_error(cli(*args, "--endpoint", served.endpoint, "--token-file", tmp_path / "nope"), "token file", "does not exist")
    one_error(cli("status", "alice/x", "--endpoint", served.endpoint, "--token-file", tmp_path), "is a folder")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    one_error(cli("status", "alice/x", "--endpoint", served.endpoint, "--token-file", tmp_path / "bin"), "is not text")
    r = subprocess.run([EXE, "status", "alice/x", "--token-file", tmp_path / "nope"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr  # the real script too


def test_network_failures_name_the_endpoint(served, trained_run):
    for args in (["status", "alice/x"], ["publish", trained_run.output_dir, "--repo-id", "alice/x"],
                 ["deploy", trained_run.output_dir, "--repo-id", "alice/x", "--no-space"]):
        line = one_error(cli(*args, "--endpoint", NOWHERE, "--token-file", served.token), f"cannot reach {NOWHERE}", "is the hub running?")
        assert "Errno" not in line
    r = cli("publish", trained_run.output_dir, "--repo-id", "alice/x", "--endpoint", NOWHERE, "--token-file", served.token, "--json")
    assert r.rc == 1 and json.loads(r.out)["type"] == "ConnectError"


@pytest.mark.parametrize("route", ["^GET /api/whoami-v2", r"^GET /api/models/alice/voxtral-drop/revision/"])
def test_publish_json_when_the_connection_drops(served, trained_run, route):
    served.hub.inject_fault(route, "drop", times=20)
    try: r = cli("publish", trained_run.output_dir, "--repo-id", "alice/voxtral-drop", *hub_args(served), "--json")
    finally: served.hub.clear_faults()
    err = json.loads(r.out)  # exactly one JSON object on stdout
    assert r.rc == 1 and "dropped" in err["error"] and served.endpoint in err["error"] and len(r.errors) == 1
    assert not served.api.repo_exists("alice/voxtral-drop")


def test_status_of_a_mistyped_model_and_invalid_ids(served, trained_run):
    one_error(cli("status", "alice/no-such-model", *hub_args(served)), "No model (or Space) alice/no-such-model", "check the id")
    one_error(cli("status", "alice/no-such-demo", "--space", *hub_args(served)), "No Space alice/no-such-demo")
    for cmd in (["publish", trained_run.output_dir], ["deploy", trained_run.output_dir]):
        line = one_error(cli(*cmd, "--repo-id", "alice/bad id!", *hub_args(served)), "--repo-id 'alice/bad id!' is not a valid repo id")
        assert line.count("alice/bad id!") == 1 and "[inspect]" not in cli(*cmd, "--repo-id", "x/y/z", *hub_args(served)).err  # refused first


def test_repo_id_from_url_and_default_from_folder(served, trained_run):
    r = cli("publish", trained_run.output_dir, "--repo-id", "https://huggingface.co/alice/voxtral-pasted", *hub_args(served), "--json")
    assert r.rc == 0 and json.loads(r.out)["repo_id"] == "alice/voxtral-pasted"
    r = cli("publish", trained_run.output_dir, *hub_args(served), "--json")  # no --repo-id: <user>/<folder name>, as the wizard does
    assert r.rc == 0 and json.loads(r.out)["repo_id"] == f"alice/{trained_run.output_dir.name}"
    s = cli("status", f"{served.endpoint}/alice/voxtral-pasted", *hub_args(served), "--json")
    assert s.rc == 0 and json.loads(s.out)["repo_id"] == "alice/voxtral-pasted"


def test_deploy_and_publish_take_the_card_metadata(served, trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTRAL_DEPLOY_RECORDS", str(tmp_path / "records"))
    meta = ["--base-model", BASE_ID, "--language", "fr", "--language", "en", "--license", "mit", "--name", "Voxtral kitchen",
            "--description", "Transcribes kitchen orders."]
    r = cli("deploy", trained_run.output_dir, "--repo-id", "alice/voxtral-meta", "--no-space", *meta, *hub_args(served), "--json")
    assert r.rc == 0, r.err
    card = ModelCard.load(hf_hub_download("alice/voxtral-meta", "README.md", endpoint=served.endpoint))
    assert (card.data.base_model, card.data.language, card.data.license) == (BASE_ID, ["fr", "en"], "mit")
    assert "# Voxtral kitchen" in card.text and "Transcribes kitchen orders." in card.text and "| **Base model** | [mistralai/" in card.text
    rec = json.loads(r.out)
    path = Path(rec["path"])  # the one records folder, not beside the model folder; no spaces in the name
    assert path.parent == tmp_path / "records" and " " not in path.name and not (trained_run.output_dir.parent / "deployments").exists()
    r = cli("publish", trained_run.output_dir, "--repo-id", "alice/voxtral-meta-p", *meta[:4], *hub_args(served), "--json")
    warn = " ".join(json.loads(r.out)["warnings"])
    assert r.rc == 0 and "--base-model" not in warn and "--language" not in warn  # both known: only what no flag gives is missing


def test_records_never_for_a_missing_folder(served, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTRAL_DEPLOY_RECORDS", str(tmp_path / "records"))
    one_error(cli("deploy", tmp_path / "no such model", "--repo-id", "alice/nothing", "--no-space", *hub_args(served)), "does not exist")
    assert not (tmp_path / "records").exists()


def test_private_model_space_write_token_refused_before_publishing(served, trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTRAL_DEPLOY_RECORDS", str(tmp_path / "records"))
    base = ["deploy", trained_run.output_dir, "--repo-id", "alice/voxtral-private", "--private", "--base-model", BASE_ID]
    one_error(cli(*base, *hub_args(served)), "write token", "Nothing was published")
    one_error(cli(*base, "--space-token-file", served.token, *hub_args(served)), "write token")
    assert not served.api.repo_exists("alice/voxtral-private")  # refused BEFORE the model was published
    r = cli(*base, "--space-token-file", served.read_token, *hub_args(served), "--dry-run", "--json")
    assert r.rc == 0 and json.loads(r.out)["space"]["space_id"] == "alice/voxtral-private-demo"  # a read token is fine


def test_hub_serve_says_where_its_token_is(tmp_path, trained_run):
    proc = subprocess.Popen([EXE, "hub", "serve", "--root", tmp_path / "hub"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "HF_HUB_DISABLE_XET": "1"})
    try:
        endpoint = proc.stdout.readline().strip()
        help_lines = [proc.stderr.readline() for _ in range(4)]
        token_file = tmp_path / "hub" / ".localhub" / "tokens.json"
        assert endpoint.startswith("http://127.0.0.1:") and f"token: {token_file} (pass it as is to --token-file)" in help_lines[1]
        assert f"--endpoint {endpoint} --token-file {token_file}" in help_lines[2]
        r = cli("publish", trained_run.output_dir, "--repo-id", "voxtral-served", "--endpoint", endpoint, "--token-file", token_file, "--json")
        assert r.rc == 0 and json.loads(r.out)["repo_id"] == "local/voxtral-served"  # the default token file, as it is
    finally:
        proc.send_signal(signal.SIGINT); proc.communicate(timeout=60)
