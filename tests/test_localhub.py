"""End-to-end tests of the local hub: the real huggingface_hub client and `hf` CLI over real HTTP, real processes."""
import base64, hashlib, json, os, signal, socket, subprocess, sys, threading, time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError)

from conftest import ALICE_READ, ALICE_WRITE, BOB_WRITE, TOKENS
from spacekit import echo_app, wait_stage
from voxtral_deploy.localhub import LocalHub
from voxtral_deploy.testing import assert_no_secrets

pytestmark = pytest.mark.timeout(120)


def _files(d: Path, files: dict) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for k, v in files.items():
        p = d / k; p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(v if isinstance(v, bytes) else v.encode())
    return d


def _raw(hub, method, path, token=None, **kw):
    headers = kw.pop("headers", {})
    if token: headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, hub.endpoint + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("big") / "weights.bin"
    p.write_bytes(os.urandom(20 * 1024 * 1024 + 123))
    return p


# -- users ---------------------------------------------------------------------------------------------
def test_whoami_roles(hub):
    assert HfApi(endpoint=hub.endpoint, token=ALICE_WRITE).whoami()["auth"]["accessToken"]["role"] == "write"
    me = HfApi(endpoint=hub.endpoint, token=ALICE_READ).whoami()
    assert me["name"] == "alice" and me["auth"]["accessToken"]["role"] == "read"
    with pytest.raises(HfHubHTTPError, match="Invalid user token"):
        HfApi(endpoint=hub.endpoint, token="hf_FakeUnknownToken000000000000000009").whoami()


def test_generated_token_file(tmp_path, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="voxtral_deploy")
    with LocalHub(tmp_path / "h") as hub:
        assert hub.token_file.exists() and (hub.token_file.stat().st_mode & 0o777) == 0o600
        tok = hub.token
        assert HfApi(endpoint=hub.endpoint, token=tok).whoami()["name"] == "local"
        assert str(hub.token_file) in caplog.text
        assert_no_secrets(caplog.text, secrets=[tok])
    with LocalHub(tmp_path / "h") as hub2:  # a restart keeps the token
        assert hub2.token == tok


# -- repos and files --------------------------------------------------------------------------------------
def test_upload_download_roundtrip(api, hub, tmp_path, big_file):
    api.create_repo("alice/m")
    src = _files(tmp_path / "src", {"README.md": "---\nlicense: apache-2.0\ntags: [asr]\n---\n# m\n", "config.json": '{"a": 1}',
                                    "sub/deep/notes.txt": "hello"})
    (src / "weights.bin").write_bytes(big_file.read_bytes())
    ci = api.upload_folder(repo_id="alice/m", folder_path=src, commit_message="first")
    info = api.model_info("alice/m")
    assert info.sha == ci.oid and info.card_data.license == "apache-2.0" and info.tags == ["asr"]
    sib = {s.rfilename: s for s in info.siblings}
    assert set(sib) == {".gitattributes", "README.md", "config.json", "sub/deep/notes.txt", "weights.bin"}
    sha = hashlib.sha256(big_file.read_bytes()).hexdigest()
    assert sib["weights.bin"].lfs.sha256 == sha and sib["weights.bin"].lfs.size == big_file.stat().st_size
    assert sib["config.json"].lfs is None
    meta = get_hf_file_metadata(hf_hub_url("alice/m", "weights.bin", endpoint=hub.endpoint), token=ALICE_WRITE)
    assert meta.etag == sha and meta.size == big_file.stat().st_size and meta.commit_hash == ci.oid
    from voxtral_deploy.localhub import git_blob_sha1
    small = get_hf_file_metadata(hf_hub_url("alice/m", "config.json", endpoint=hub.endpoint), token=ALICE_WRITE)
    assert small.etag == git_blob_sha1(b'{"a": 1}') and small.size == 8
    p = hf_hub_download("alice/m", "weights.bin", endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "c")
    assert hashlib.sha256(Path(p).read_bytes()).hexdigest() == sha
    snap = Path(snapshot_download("alice/m", endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "c2"))
    assert (snap / "sub/deep/notes.txt").read_text() == "hello" and (snap / "config.json").read_text() == '{"a": 1}'
    # Range requests
    r = _raw(hub, "GET", "/alice/m/resolve/main/weights.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == big_file.read_bytes()[10:20] and r.headers["Content-Range"].endswith(f"/{big_file.stat().st_size}")
    assert _raw(hub, "GET", "/alice/m/resolve/main/weights.bin", headers={"Range": "bytes=999999999-"}).status_code == 416
    # unchanged re-upload makes no commit
    again = api.upload_folder(repo_id="alice/m", folder_path=src)
    assert again.oid == ci.oid and len(api.list_repo_commits("alice/m")) == 2
    # missing entries and revisions
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("alice/m", "nope.txt", endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "c3")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/m", revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/nothing-here")


def test_deletes_and_history(api, hub, tmp_path):
    api.create_repo("alice/d")
    api.upload_folder(repo_id="alice/d", folder_path=_files(tmp_path / "s", {"a.txt": "a", "b/c.txt": "c", "b/d.txt": "d", "e.txt": "e"}))
    api.delete_file("a.txt", "alice/d")
    api.delete_folder("b", "alice/d")
    assert sorted(api.list_repo_files("alice/d")) == [".gitattributes", "e.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("a.txt", "alice/d")
    commits = api.list_repo_commits("alice/d")
    assert len(commits) == 4 and commits[0].authors == ["alice"] and commits[-1].title == "initial commit"
    # an older revision is intact
    old = commits[2].commit_id
    assert sorted(api.list_repo_files("alice/d", revision=old)) == [".gitattributes", "a.txt", "b/c.txt", "b/d.txt", "e.txt"]


def test_tree_pagination_and_paths_info(api, hub, tmp_path):
    hub.page_size = 3
    api.create_repo("alice/t")
    api.upload_folder(repo_id="alice/t", folder_path=_files(tmp_path / "s", {f"d/f{i}.txt": str(i) for i in range(7)} | {"top.md": "x"}))
    entries = list(api.list_repo_tree("alice/t", recursive=True))
    assert sorted(e.path for e in entries) == sorted([".gitattributes", "top.md", "d"] + [f"d/f{i}.txt" for i in range(7)])
    top = sorted(e.path for e in api.list_repo_tree("alice/t"))
    assert top == [".gitattributes", "d", "top.md"]
    assert sorted(e.path for e in api.list_repo_tree("alice/t", path_in_repo="d")) == [f"d/f{i}.txt" for i in range(7)]
    r = _raw(hub, "GET", "/api/models/alice/t/tree/main?recursive=true")
    assert 'rel="next"' in r.headers["Link"] and len(r.json()) == 3
    info = api.get_paths_info("alice/t", ["top.md", "d", "missing"], expand=True)
    assert [(type(i).__name__, i.path) for i in info] == [("RepoFile", "top.md"), ("RepoFolder", "d")]
    assert info[0].last_commit is not None and info[0].blob_id


def test_tags_and_branches(api, hub, tmp_path):
    api.create_repo("alice/r")
    v1 = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="alice/r").oid
    api.create_tag("alice/r", tag="v1.0", tag_message="first")
    api.create_branch("alice/r", branch="dev")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id="alice/r", revision="dev")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id="alice/r")
    refs = api.list_repo_refs("alice/r")
    assert {b.name for b in refs.branches} == {"main", "dev"} and [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", v1)]
    read = lambda rev: Path(hf_hub_download("alice/r", "f.txt", revision=rev, endpoint=hub.endpoint, cache_dir=tmp_path / rev)).read_bytes()
    assert (read("v1.0"), read("dev"), read("main")) == (b"v1", b"dev", b"v2")
    with pytest.raises(HfHubHTTPError) as e:
        api.create_tag("alice/r", tag="v1.0")
    assert e.value.response.status_code == 409
    api.create_tag("alice/r", tag="v1.0", exist_ok=True)
    api.delete_tag("alice/r", tag="v1.0"); api.delete_branch("alice/r", branch="dev")
    refs = api.list_repo_refs("alice/r")
    assert refs.tags == [] and [b.name for b in refs.branches] == ["main"]
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/r", revision="dev")


def test_private_visibility(api, hub, tmp_path):
    api.create_repo("alice/p", private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id="alice/p")
    anon, bob = HfApi(endpoint=hub.endpoint, token=False), HfApi(endpoint=hub.endpoint, token=BOB_WRITE)
    for other in (anon, bob):
        with pytest.raises(RepositoryNotFoundError):
            other.model_info("alice/p")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("alice/p", "s.txt", endpoint=hub.endpoint, token=other.token, cache_dir=tmp_path / "x")
    assert HfApi(endpoint=hub.endpoint, token=ALICE_READ).model_info("alice/p").private is True
    assert "alice/p" not in _raw(hub, "GET", "/").text
    api.update_repo_settings("alice/p", private=False)
    assert anon.model_info("alice/p").private is False


def test_write_permissions(api, hub):
    api.create_repo("alice/w")
    ro = HfApi(endpoint=hub.endpoint, token=ALICE_READ)
    with pytest.raises(HfHubHTTPError, match="read-only") as e:
        ro.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/w")
    assert e.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError, match="read-only"):
        ro.create_repo("alice/w2")
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=hub.endpoint, token=BOB_WRITE).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/w")
    assert e.value.response.status_code == 403
    assert api.list_repo_files("alice/w") == [".gitattributes"]


def test_stale_parent_commit_refused(api):
    from huggingface_hub import CommitOperationAdd
    api.create_repo("alice/s")
    first = api.model_info("alice/s").sha
    api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id="alice/s")
    with pytest.raises(HfHubHTTPError, match="A commit has happened since") as e:
        api.create_commit("alice/s", [CommitOperationAdd("b.txt", b"2")], commit_message="stale", parent_commit=first)
    assert e.value.response.status_code == 412
    assert api.list_repo_files("alice/s") == [".gitattributes", "a.txt"]


def test_concurrent_uploads(api, hub):
    api.create_repo("alice/c")
    errors = []
    def up(i):
        try: api.upload_file(path_or_fileobj=os.urandom(3 << 20) if i else b"text", path_in_repo=f"f{i}.bin", repo_id="alice/c")
        except Exception as e: errors.append(e)
    ts = [threading.Thread(target=up, args=(i,)) for i in range(2)]
    [t.start() for t in ts]; [t.join() for t in ts]
    assert errors == []
    assert sorted(api.list_repo_files("alice/c")) == [".gitattributes", "f0.bin", "f1.bin"]
    assert len(api.list_repo_commits("alice/c")) == 3


def test_create_delete_types_and_409(api, hub):
    for t in ("model", "dataset"):
        url = api.create_repo(f"alice/x-{t}", repo_type=t)
        assert url.repo_type == t
        r = _raw(hub, "POST", "/api/repos/create", ALICE_WRITE, json={"name": f"x-{t}", "organization": "alice", "type": t})
        assert r.status_code == 409 and r.json()["url"].endswith(f"alice/x-{t}")
        assert api.create_repo(f"alice/x-{t}", repo_type=t, exist_ok=True).repo_id == f"alice/x-{t}"
        api.delete_repo(f"alice/x-{t}", repo_type=t)
        assert not api.repo_exists(f"alice/x-{t}", repo_type=t)
    api.create_repo("alice/sp", repo_type="space", space_sdk="static")
    assert api.space_info("alice/sp").sdk == "static"
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo("alice/never")
    api.delete_repo("alice/never", missing_ok=True)


def test_validate_yaml(api, hub):
    api.create_repo("alice/y")
    bad = "---\nmodel-index:\n- name: m\n  results:\n  - task: {}\n    dataset: {type: x, name: X}\n    metrics: [{type: wer, value: 1}]\n---\n"
    with pytest.raises(ValueError, match="task.type"):
        api.upload_file(path_or_fileobj=bad.encode(), path_in_repo="README.md", repo_id="alice/y")
    good = bad.replace("task: {}", "task: {type: automatic-speech-recognition}")
    api.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id="alice/y")
    info = api.model_info("alice/y")
    assert info.model_index[0]["name"] == "m"


def test_xet_route_says_to_disable_xet(api, hub):
    api.create_repo("alice/xet")
    r = _raw(hub, "GET", "/api/models/alice/xet/xet-write-token/main", ALICE_WRITE)
    assert r.status_code >= 400 and "HF_HUB_DISABLE_XET=1" in r.headers["X-Error-Message"]


# -- robustness ------------------------------------------------------------------------------------------
def _ndjson(*items): return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def test_path_safety(api, hub, tmp_path):
    api.create_repo("alice/ps")
    for bad in ["../escape.txt", "/abs.txt", "a\\b.txt", "a\0b.txt", "x/../../y"]:
        body = _ndjson({"key": "header", "value": {"summary": "x"}},
                       {"key": "file", "value": {"path": bad, "content": base64.b64encode(b"pwn").decode(), "encoding": "base64"}})
        r = _raw(hub, "POST", "/api/models/alice/ps/commit/main", ALICE_WRITE, content=body, headers={"Content-Type": "application/x-ndjson"})
        assert r.status_code == 400 and "Invalid path" in r.headers["X-Error-Message"], bad
    assert not (hub.root.parent / "escape.txt").exists()
    assert api.list_repo_files("alice/ps") == [".gitattributes"]


def test_malformed_requests_then_good_upload(api, hub, tmp_path):
    api.create_repo("alice/mal")
    h = {"Authorization": f"Bearer {ALICE_WRITE}"}
    cases = [
        ("POST", "/api/repos/create", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/api/repos/create", {"content": b"{}", "headers": {"Content-Type": "text/xml"}}),
        ("POST", "/api/models/alice/mal/commit/main", {"content": b"{\"key\": \"header\"\nnot json\n", "headers": {"Content-Type": "application/x-ndjson"}}),
        ("POST", "/api/models/alice/mal/commit/main", {"content": b"[1,2]\n", "headers": {"Content-Type": "application/x-ndjson"}}),
        ("POST", "/api/models/alice/mal/commit/main", {"content": _ndjson({"key": "header", "value": {"summary": "x"}}, {"key": "bogus", "value": {"path": "a"}}), "headers": {"Content-Type": "application/x-ndjson"}}),
        ("POST", "/api/models/alice/mal/preupload/main", {"json": {"files": "nope"}}),
        ("POST", "/alice/mal.git/info/lfs/objects/batch", {"json": {"operation": "upload", "objects": "zz"}}),
        ("GET", "/api/nothing/here", {}),
        ("PATCH", "/api/models/alice/mal", {}),
        ("GET", "/api/models/..%2F..%2Fetc/passwd", {}),
        ("PUT", "/_localhub/lfs/" + "0" * 64 + "?size=1&exp=1&sig=x", {"content": b"x"}),
        ("POST", "/api/validate-yaml", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/api/repos/create", {"content": b"x" * (17 << 20), "headers": {"Content-Type": "application/json"}}),
    ]
    statuses = []
    with httpx.Client(headers=h, timeout=30) as c:
        for i in range(200):
            m, p, kw = cases[i % len(cases)]
            r = c.request(m, hub.endpoint + p, **kw)
            statuses.append(r.status_code)
            assert 400 <= r.status_code < 500, (m, p, r.status_code)
            assert r.headers.get("X-Error-Message"), (m, p)
    for _ in range(5):  # raw garbage on the socket
        with socket.create_connection(("127.0.0.1", hub.port)) as s:
            s.sendall(b"\x00\x01garbage\r\n\r\n"); s.recv(1000)
    assert 413 in statuses and 415 in statuses and 404 in statuses and 405 in statuses
    ci = api.upload_folder(repo_id="alice/mal", folder_path=_files(tmp_path / "g", {"ok.txt": "fine", "w.bin": os.urandom(1 << 20)}))
    assert sorted(api.list_repo_files("alice/mal")) == [".gitattributes", "ok.txt", "w.bin"] and ci.oid


@pytest.mark.parametrize("route,kind,retry_after", [("preupload", "503", 0), ("lfs-batch", "429", 0), ("lfs-upload", "drop", None),
                                                    ("lfs-upload", "500", None), ("resolve", "stall", None)])
def test_injected_faults_are_retried(api, hub, tmp_path, route, kind, retry_after):
    api.create_repo("alice/f")
    data = os.urandom(2 << 20)
    f = hub.inject_fault(route, kind=kind, times=1, retry_after=retry_after, stall_s=1.0)
    t0 = time.monotonic()
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id="alice/f")
    p = hf_hub_download("alice/f", "w.bin", endpoint=hub.endpoint, token=ALICE_WRITE, cache_dir=tmp_path / "c")
    assert Path(p).read_bytes() == data
    assert f.hits == 1 and f.times == 0
    if kind == "stall": assert time.monotonic() - t0 >= 1.0


def test_commit_fault_surfaces_then_recovers(api, hub):
    api.create_repo("alice/cf")
    hub.inject_fault("commit", kind="500")
    with pytest.raises(HfHubHTTPError) as e:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/cf")
    assert e.value.response.status_code == 500 and "Injected fault" in str(e.value)
    assert api.list_repo_files("alice/cf") == [".gitattributes"]
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/cf")
    assert api.list_repo_files("alice/cf") == [".gitattributes", "x.txt"]


def test_fault_over_http_needs_admin_token(hub, api):
    assert _raw(hub, "POST", "/_localhub/faults", ALICE_WRITE, json={"route": "whoami", "kind": "503"}).status_code == 403
    r = _raw(hub, "POST", "/_localhub/faults", hub.admin_token, json={"route": "whoami", "kind": "503", "times": 1})
    assert r.status_code == 200
    assert _raw(hub, "GET", "/api/whoami-v2", ALICE_WRITE).status_code == 503
    assert _raw(hub, "GET", "/api/whoami-v2", ALICE_WRITE).status_code == 200


def test_html_page(api, hub):
    api.create_repo("alice/page")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="hello.txt", repo_id="alice/page", commit_message="add hello")
    r = _raw(hub, "GET", "/")
    assert r.status_code == 200 and "alice/page" in r.text and "hello.txt" in r.text and "add hello" in r.text


# -- crash safety ---------------------------------------------------------------------------------------
def _start_hub_process(root: Path, tokens_file: Path):
    p = subprocess.Popen([sys.executable, "-m", "voxtral_deploy.localhub", "--root", str(root), "--tokens", str(tokens_file), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(p.stdout.readline())
    return p, info


def test_sigkill_mid_upload_and_commit_then_restart(tmp_path, tokens_file):
    root = tmp_path / "hub"
    p, info = _start_hub_process(root, tokens_file)
    try:
        api = HfApi(endpoint=info["endpoint"], token=ALICE_WRITE)
        api.create_repo("alice/k")
        v1 = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="alice/k").oid
        # 1. kill in the middle of an LFS PUT
        data = os.urandom(8 << 20); oid = hashlib.sha256(data).hexdigest()
        batch = httpx.post(info["endpoint"] + "/alice/k.git/info/lfs/objects/batch", headers={"Authorization": f"Bearer {ALICE_WRITE}"},
                           json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}).json()
        href = httpx.URL(batch["objects"][0]["actions"]["upload"]["href"])
        s = socket.create_connection((href.host, href.port))
        s.sendall(f"PUT {href.raw_path.decode()} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data[: len(data) // 2])
        time.sleep(0.3)
        p.kill(); p.wait(); s.close()
        p, info = _start_hub_process(root, tokens_file)
        api = HfApi(endpoint=info["endpoint"], token=ALICE_WRITE)
        assert api.model_info("alice/k").sha == v1
        assert not list((root / ".localhub" / "tmp").iterdir())
        assert not any(b.name == oid for b in (root / ".localhub" / "blobs").rglob("*"))
        # 2. kill while a commit is in flight (the commit route stalls, then the server dies)
        admin = Path(info["admin_token_file"]).read_text().strip()
        assert httpx.post(info["endpoint"] + "/_localhub/faults", headers={"Authorization": f"Bearer {admin}"},
                          json={"route": "commit", "kind": "stall", "stall_s": 30}).status_code == 200
        t = threading.Thread(target=lambda: pytest.raises(Exception, api.upload_file, path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id="alice/k"))
        t.start(); time.sleep(1.0)
        p.send_signal(signal.SIGKILL); p.wait(); t.join(30)
        p, info = _start_hub_process(root, tokens_file)
        api = HfApi(endpoint=info["endpoint"], token=ALICE_WRITE)
        assert api.model_info("alice/k").sha == v1 and len(api.list_repo_commits("alice/k")) == 2
        assert Path(hf_hub_download("alice/k", "f.txt", endpoint=info["endpoint"], cache_dir=tmp_path / "c")).read_bytes() == b"v1"
        # and it still takes writes
        assert api.upload_file(path_or_fileobj=b"v3", path_in_repo="f.txt", repo_id="alice/k").oid != v1
    finally:
        p.send_signal(signal.SIGTERM); p.wait(10)


# -- the hf CLI ---------------------------------------------------------------------------------------
def test_hf_cli(hub, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": ALICE_WRITE, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hfhome"),
           "NO_COLOR": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}
    hf = str(Path(sys.executable).parent / "hf")
    run = lambda *a: subprocess.run([hf, *a], env=env, capture_output=True, text=True, timeout=60)
    r = run("auth", "whoami"); assert r.returncode == 0 and "alice" in r.stdout, r.stderr
    r = run("repos", "create", "alice/cli"); assert r.returncode == 0, r.stderr
    f = tmp_path / "w.bin"; f.write_bytes(os.urandom(1 << 20))
    r = run("upload", "alice/cli", str(f), "w.bin"); assert r.returncode == 0, r.stderr
    r = run("repos", "tag", "create", "alice/cli", "v1"); assert r.returncode == 0, r.stderr
    r = run("download", "alice/cli", "w.bin", "--revision", "v1", "--local-dir", str(tmp_path / "out")); assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "w.bin").read_bytes() == f.read_bytes()
    assert_no_secrets(r.stdout, r.stderr, secrets=[ALICE_WRITE])
    HfApi(endpoint=hub.endpoint, token=ALICE_WRITE).model_info("alice/cli", revision="v1")


# -- Spaces --------------------------------------------------------------------------------------------
APP_OK = echo_app('{k: os.environ.get(k) for k in ("GREETING", "MY_SECRET", "HF_ENDPOINT", "SPACE_ID", "SYSTEM")}')
_wait_stage = wait_stage


def test_space_reaches_running(api, hub, tmp_path):
    api.create_repo("alice/ok", repo_type="space", space_sdk="gradio", space_hardware="cpu-basic",
                    space_variables=[{"key": "GREETING", "value": "hi"}], space_secrets=[{"key": "MY_SECRET", "value": "s3cr3t-value"}])
    api.upload_folder(repo_id="alice/ok", repo_type="space", folder_path=_files(tmp_path / "s", {"app.py": APP_OK, "requirements.txt": "packaging\nhttpx>=0.1\n"}))
    assert api.get_space_runtime("alice/ok").stage in ("BUILDING", "APP_STARTING", "RUNNING")
    rt = _wait_stage(api, "alice/ok", ("RUNNING", "BUILD_ERROR", "RUNTIME_ERROR"))
    assert rt.stage == "RUNNING", rt.raw
    host = api.space_info("alice/ok").host
    assert host == rt.raw["host"] and host.startswith("http://127.0.0.1:")
    env = httpx.get(host).json()
    assert env == {"GREETING": "hi", "MY_SECRET": "s3cr3t-value", "HF_ENDPOINT": hub.endpoint, "SPACE_ID": "alice/ok", "SYSTEM": "spaces"}
    assert set(api.get_space_secrets("alice/ok")) == {"MY_SECRET"} and api.get_space_variables("alice/ok")["GREETING"].value == "hi"
    assert any("app starting" in l for l in api.fetch_space_logs("alice/ok"))
    assert any("requirements" in l for l in api.fetch_space_logs("alice/ok", build=True))
    # Space secrets are kept (0600) in the secrets store only, never in a repo or the hub's other files (issue 12)
    assert_no_secrets(hub.root, secrets=["s3cr3t-value"], ignore=lambda p: p.name == "space-secrets.json")
    pid = hub.space("alice/ok").proc.pid
    # a variable change restarts the app with the new value
    api.add_space_variable("alice/ok", "GREETING", "hello")
    _wait_stage(api, "alice/ok", ("RUNNING",))
    assert httpx.get(api.space_info("alice/ok").host).json()["GREETING"] == "hello"
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)
    assert api.pause_space("alice/ok").stage == "PAUSED"
    assert hub.space("alice/ok").proc is None
    assert api.restart_space("alice/ok").stage == "BUILDING"
    _wait_stage(api, "alice/ok", ("RUNNING",))
    pid = hub.space("alice/ok").proc.pid
    api.delete_repo("alice/ok", repo_type="space")
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)


def test_space_build_error(api, tmp_path):
    api.create_repo("alice/bad", repo_type="space", space_sdk="gradio")
    api.upload_folder(repo_id="alice/bad", repo_type="space",
                      folder_path=_files(tmp_path / "s", {"app.py": APP_OK, "requirements.txt": "packaging<0.1\nno-such-package-voxtral-xyz==1.0\n"}))
    rt = _wait_stage(api, "alice/bad", ("BUILD_ERROR", "RUNNING", "RUNTIME_ERROR"))
    assert rt.stage == "BUILD_ERROR"
    assert "no-such-package-voxtral-xyz is not installed" in rt.raw["errorMessage"] and "packaging" in rt.raw["errorMessage"]
    assert any("ERROR: no-such-package-voxtral-xyz" in l for l in api.fetch_space_logs("alice/bad", build=True))


def test_space_runtime_error(api, tmp_path):
    api.create_repo("alice/crash", repo_type="space", space_sdk="gradio")
    api.upload_folder(repo_id="alice/crash", repo_type="space", folder_path=_files(tmp_path / "s", {"app.py": "print('loading')\nraise RuntimeError('boom at import')\n"}))
    rt = _wait_stage(api, "alice/crash", ("RUNTIME_ERROR", "RUNNING", "BUILD_ERROR"))
    assert rt.stage == "RUNTIME_ERROR" and "boom at import" in rt.raw["errorMessage"]
    logs = "".join(api.fetch_space_logs("alice/crash"))
    assert "loading" in logs and "RuntimeError: boom at import" in logs


def test_hub_stop_stops_space_children(tmp_path):
    with LocalHub(tmp_path / "h", tokens=TOKENS) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        api.create_repo("alice/s", repo_type="space", space_sdk="gradio")
        api.upload_file(path_or_fileobj=APP_OK.encode(), path_in_repo="app.py", repo_id="alice/s", repo_type="space")
        assert hub.space("alice/s").wait(timeout=60) == "RUNNING"
        pid = hub.space("alice/s").proc.pid
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)
    assert hub.space("alice/s").stage == "STOPPED"


def test_odd_names_branches_listing_and_hardware(api, hub, tmp_path):
    api.create_repo("alice/odd")
    name = "dir with space/a b+c é%.txt"
    api.upload_file(path_or_fileobj=b"odd", path_in_repo=name, repo_id="alice/odd")
    api.create_branch("alice/odd", branch="feature/x")
    api.upload_file(path_or_fileobj=b"on branch", path_in_repo="b.txt", repo_id="alice/odd", revision="feature/x")
    assert Path(hf_hub_download("alice/odd", name, endpoint=hub.endpoint, cache_dir=tmp_path / "c")).read_bytes() == b"odd"
    assert Path(hf_hub_download("alice/odd", "b.txt", revision="feature/x", endpoint=hub.endpoint, cache_dir=tmp_path / "c")).read_bytes() == b"on branch"
    assert [e.path for e in api.list_repo_tree("alice/odd", path_in_repo="dir with space")] == [name]
    api.create_repo("bob-not-listed", token=BOB_WRITE)
    assert [m.id for m in api.list_models(author="alice")] == ["alice/odd"]
    api.create_repo("alice/hw", repo_type="space", space_sdk="static")
    rt = api.request_space_hardware("alice/hw", "cpu-upgrade")
    assert rt.requested_hardware == "cpu-upgrade"


def test_space_install_option_uses_a_venv(tmp_path):
    with LocalHub(tmp_path / "h", tokens=TOKENS, space_install=True) as hub:
        api = HfApi(endpoint=hub.endpoint, token=ALICE_WRITE)
        api.create_repo("alice/venv", repo_type="space", space_sdk="gradio")
        app = APP_OK.replace('print("app starting", flush=True)', 'import sys; print("python is", sys.executable, flush=True)')
        api.upload_folder(repo_id="alice/venv", repo_type="space", folder_path=_files(tmp_path / "s", {"app.py": app, "requirements.txt": "packaging\n"}))
        assert hub.space("alice/venv").wait(timeout=90) == "RUNNING", hub.space("alice/venv").error
        assert any("/venv/bin/python" in l for l in api.fetch_space_logs("alice/venv"))


def test_serve_forever_sigterm_stops_spaces(tmp_path, tokens_file):
    p, info = _start_hub_process(tmp_path / "hub", tokens_file)
    try:
        api = HfApi(endpoint=info["endpoint"], token=ALICE_WRITE)
        api.create_repo("alice/s", repo_type="space", space_sdk="gradio")
        api.upload_file(path_or_fileobj=APP_OK.encode(), path_in_repo="app.py", repo_id="alice/s", repo_type="space")
        host = _wait_stage(api, "alice/s", ("RUNNING",)).raw["host"]
        assert httpx.get(host).json()["SPACE_ID"] == "alice/s"
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(host, timeout=2)


def test_gradio_space_answers_gradio_client(api, hub):
    from gradio_client import Client
    app = ('import gradio as gr, os\n'
           'def echo(x): return x + " " + os.environ["GREETING"]\n'
           'demo = gr.Interface(echo, "text", "text")\n'
           'if __name__ == "__main__":\n    demo.launch()\n')
    api.create_repo("alice/gr", repo_type="space", space_sdk="gradio", space_variables=[{"key": "GREETING", "value": "from the space"}])
    api.upload_file(path_or_fileobj=app.encode(), path_in_repo="app.py", repo_id="alice/gr", repo_type="space")
    rt = _wait_stage(api, "alice/gr", ("RUNNING", "RUNTIME_ERROR", "BUILD_ERROR"), timeout=90)
    assert rt.stage == "RUNNING", rt.raw
    c = Client(api.space_info("alice/gr").host, verbose=False)
    assert c.predict("hello", api_name="/echo") == "hello from the space"


def test_chunked_lfs_upload_and_bad_content(api, hub):
    api.create_repo("alice/ch")
    data = os.urandom(3 << 20); oid = hashlib.sha256(data).hexdigest()
    batch = _raw(hub, "POST", "/alice/ch.git/info/lfs/objects/batch", ALICE_WRITE,
                 json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    bad = bytearray(data); bad[0] ^= 1
    r = httpx.put(href, content=iter([bytes(bad[i:i + 65536]) for i in range(0, len(bad), 65536)]))  # chunked, wrong content
    assert r.status_code == 400 and "Upload corrupted" in r.headers["X-Error-Message"]
    r = httpx.put(href, content=iter([data[i:i + 65536] for i in range(0, len(data), 65536)]))  # chunked, right content
    assert r.status_code == 200
    again = _raw(hub, "POST", "/alice/ch.git/info/lfs/objects/batch", ALICE_WRITE,
                 json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).json()
    assert "actions" not in again["objects"][0]  # already stored: the client skips the upload
    body = _ndjson({"key": "header", "value": {"summary": "lfs"}}, {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data)}})
    r = _raw(hub, "POST", "/api/models/alice/ch/commit/main", ALICE_WRITE, content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200
    info = api.model_info("alice/ch", files_metadata=True)
    assert {s.rfilename: (s.lfs.sha256 if s.lfs else None) for s in info.siblings}["w.bin"] == oid
    missing = _ndjson({"key": "header", "value": {"summary": "x"}}, {"key": "lfsFile", "value": {"path": "m.bin", "algo": "sha256", "oid": "1" * 64, "size": 1}})
    r = _raw(hub, "POST", "/api/models/alice/ch/commit/main", ALICE_WRITE, content=missing, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 422 and "never uploaded" in r.headers["X-Error-Message"]


def test_stopped_hub_hangs_up_keep_alive_connections(tmp_path):
    "A client's pooled connection must not keep talking to a stopped hub once another hub has taken its port."
    import http.client
    from conftest import TOKENS, ALICE_WRITE, BOB_WRITE
    from voxtral_deploy.localhub import LocalHub
    hub1 = LocalHub(tmp_path / "one", tokens={ALICE_WRITE: TOKENS[ALICE_WRITE]}).start()
    port = hub1.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/whoami-v2", headers={"Authorization": f"Bearer {ALICE_WRITE}"})
    assert json.loads(conn.getresponse().read())["name"] == "alice"
    hub1.stop()
    with LocalHub(tmp_path / "two", port=port, tokens={BOB_WRITE: TOKENS[BOB_WRITE]}):
        with pytest.raises((http.client.HTTPException, OSError)):  # the old connection was hung up, not served by hub1
            conn.request("GET", "/api/whoami-v2", headers={"Authorization": f"Bearer {ALICE_WRITE}"})
            conn.getresponse().read()
        fresh = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        fresh.request("GET", "/api/whoami-v2", headers={"Authorization": f"Bearer {BOB_WRITE}"})
        assert json.loads(fresh.getresponse().read())["name"] == "bob"
