"""The local hub behaves like the Hub: pull requests and discussions, organisations, refs, ids and errors, files, card
checks and fine-grained tokens, each driven by the real huggingface_hub client over HTTP and checked against what the
Hub answers."""
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, RepoCard, HfFileSystem, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from conftest import ALICE_READ, ALICE_WRITE, BOB_WRITE
from voxtral_deploy.localhub import LocalHub

pytestmark = pytest.mark.timeout(120)

CAROL_WRITE = "hf_FakeCarolWriteToken00000000000000004"
DAVE_WRITE = "hf_FakeDaveWriteToken000000000000000005"
ALICE_FEEDBACK = "hf_FakeAliceFineGrainedFeedback0000006"
TOKENS = {"tokens": {ALICE_WRITE: {"user": "alice", "role": "write"}, ALICE_READ: {"user": "alice", "role": "read"},
                     BOB_WRITE: {"user": "bob", "role": "write"}, CAROL_WRITE: {"user": "carol", "role": "write"},
                     DAVE_WRITE: {"user": "dave", "role": "write"},
                     ALICE_FEEDBACK: {"user": "alice", "role": "fineGrained",
                                      "scoped": [{"entity": "datasets/alice/fb", "permissions": ["repo.content.read", "repo.write"]}]}},
          "orgs": {"acme": {"fullname": "Acme Corp", "members": {"alice": "admin", "bob": "contributor", "carol": "read"}}}}


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub", tokens=TOKENS) as h:
        yield h


def _api(hub, tok): return HfApi(endpoint=hub.endpoint, token=tok)


def _status(e) -> int: return e.value.response.status_code


# -- pull requests -----------------------------------------------------------------------------------------
def test_pull_request_open_review_merge(hub, tmp_path):
    alice, bob, dave = _api(hub, ALICE_WRITE), _api(hub, BOB_WRITE), _api(hub, DAVE_WRITE)
    alice.create_repo("alice/m")
    main0 = alice.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="alice/m").oid
    # any user with a write token opens a pull request on a public repo; main stays as it was
    info = bob.upload_file(path_or_fileobj=b"from bob", path_in_repo="new.txt", repo_id="alice/m", create_pr=True, commit_message="Add new.txt")
    assert (info.pr_num, info.pr_revision, info.pr_url) == (1, "refs/pr/1", f"{hub.endpoint}/alice/m/discussions/1")
    assert alice.model_info("alice/m").sha == main0 and "new.txt" not in alice.list_repo_files("alice/m")
    # refs/pr/1 is a revision everywhere
    assert alice.model_info("alice/m", revision="refs/pr/1").sha == info.oid
    assert sorted(alice.list_repo_files("alice/m", revision="refs/pr/1")) == [".gitattributes", "f.txt", "new.txt"]
    assert [p.path for p in alice.get_paths_info("alice/m", ["new.txt"], revision="refs/pr/1")] == ["new.txt"]
    assert [c.commit_id for c in alice.list_repo_commits("alice/m", revision="refs/pr/1")][:2] == [info.oid, main0]
    assert Path(hf_hub_download("alice/m", "new.txt", revision="refs/pr/1", endpoint=hub.endpoint, cache_dir=tmp_path / "c1")).read_bytes() == b"from bob"
    snap = Path(snapshot_download("alice/m", revision="refs/pr/1", endpoint=hub.endpoint, cache_dir=tmp_path / "c2"))
    assert (snap / "new.txt").read_bytes() == b"from bob"
    fs = HfFileSystem(endpoint=hub.endpoint, token=ALICE_WRITE)
    assert fs.read_text("alice/m@refs/pr/1/new.txt") == "from bob"
    refs = alice.list_repo_refs("alice/m", include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", info.oid)]
    assert alice.list_repo_refs("alice/m").pull_requests is None
    alice.create_tag("alice/m", tag="pr-1-head", revision="refs/pr/1")
    assert alice.model_info("alice/m", revision="pr-1-head").sha == info.oid
    # the discussions API sees it, with its events
    [d] = list(alice.get_repo_discussions("alice/m"))
    assert (d.num, d.author, d.is_pull_request, d.status, d.git_reference) == (1, "bob", True, "open", "refs/pr/1")
    alice.comment_discussion("alice/m", 1, "Thanks, one more file please")
    # the author pushes to the pull request; another user may not; an LFS file goes through the batch API as a non-writer
    folder = tmp_path / "more"; folder.mkdir(); (folder / "w.bin").write_bytes(b"\0" * 2000)
    bob.upload_folder(repo_id="alice/m", folder_path=folder, revision="refs/pr/1", commit_message="Add weights")
    with pytest.raises(HfHubHTTPError) as e:
        dave.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/m", revision="refs/pr/1")
    assert _status(e) == 403
    det = alice.get_discussion_details("alice/m", 1)
    assert [ev.type for ev in det.events] == ["comment", "commit", "comment", "commit"]
    assert det.events[1].summary == "Add new.txt" and det.target_branch == "refs/heads/main" and det.conflicting_files == []
    assert "+from bob" in det.diff and "w.bin" in det.diff
    # only writers of the target merge
    for other in (bob, dave):
        with pytest.raises(HfHubHTTPError) as e:
            other.merge_pull_request("alice/m", 1)
        assert _status(e) == 403
    alice.merge_pull_request("alice/m", 1, comment="Merged, thanks")
    det = alice.get_discussion_details("alice/m", 1)
    main = alice.model_info("alice/m")
    assert det.status == "merged" and det.merge_commit_oid == main.sha and det.events[-1].new_status == "merged"
    assert sorted(s.rfilename for s in main.siblings) == [".gitattributes", "f.txt", "new.txt", "w.bin"]
    with pytest.raises(HfHubHTTPError):
        alice.change_discussion_status("alice/m", 1, "open")


def test_discussions_status_conflicts_and_rights(hub):
    alice, bob, dave, ro = _api(hub, ALICE_WRITE), _api(hub, BOB_WRITE), _api(hub, DAVE_WRITE), _api(hub, ALICE_READ)
    alice.create_repo("alice/m")
    alice.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="alice/m")
    q = bob.create_discussion("alice/m", "Does it run on CPU?", description="Asking")
    assert (q.num, q.is_pull_request, q.events[0].content) == (1, False, "Asking")
    with pytest.raises(HfHubHTTPError) as e:  # neither its author nor a writer
        dave.change_discussion_status("alice/m", 1, "closed")
    assert _status(e) == 403
    assert alice.change_discussion_status("alice/m", 1, "closed", comment="Yes").new_status == "closed"
    assert bob.change_discussion_status("alice/m", 1, "open").new_status == "open"
    assert bob.rename_discussion("alice/m", 1, "CPU support").new_title == "CPU support"
    # a pull request opened empty is a draft until its first commit
    pr = bob.create_pull_request("alice/m", "Change f.txt")
    assert (pr.num, pr.status, pr.git_reference) == (2, "draft", "refs/pr/2")
    bob.upload_file(path_or_fileobj=b"bob's f", path_in_repo="f.txt", repo_id="alice/m", revision=pr.git_reference)
    alice.upload_file(path_or_fileobj=b"alice's f", path_in_repo="f.txt", repo_id="alice/m")
    det = alice.get_discussion_details("alice/m", 2)
    assert (det.status, det.conflicting_files) == ("open", ["f.txt"])
    with pytest.raises(HfHubHTTPError, match="conflicts") as e:
        alice.merge_pull_request("alice/m", 2)
    assert _status(e) == 409
    assert [d.num for d in alice.get_repo_discussions("alice/m", discussion_type="pull_request")] == [2]
    assert [d.num for d in alice.get_repo_discussions("alice/m", author="bob", discussion_status="open")] == [2, 1]
    with pytest.raises(HfHubHTTPError) as e:  # a read token can't post
        ro.create_discussion("alice/m", "hi")
    assert _status(e) == 403
    alice.create_repo("alice/p", private=True)
    with pytest.raises(RepositoryNotFoundError):
        list(bob.get_repo_discussions("alice/p"))


# -- organisations --------------------------------------------------------------------------------------------
def test_organisation_members_and_roles(hub):
    alice, bob, carol, dave = (_api(hub, t) for t in (ALICE_WRITE, BOB_WRITE, CAROL_WRITE, DAVE_WRITE))
    assert [(o["name"], o["roleInOrg"]) for o in alice.whoami()["orgs"]] == [("acme", "admin")]
    assert [o["roleInOrg"] for o in bob.whoami()["orgs"]] == ["contributor"] and dave.whoami()["orgs"] == []
    assert sorted(u.username for u in alice.list_organization_members("acme")) == ["alice", "bob", "carol"]
    alice.create_repo("acme/model", private=True)
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="acme/model")
    # a contributor creates repos in the org and writes to those, not to the others
    bob.create_repo("acme/bobs")
    bob.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="acme/bobs")
    with pytest.raises(HfHubHTTPError, match="contributor") as e:
        bob.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="acme/model")
    assert _status(e) == 403
    # a reader reads private org repos and writes nothing; a non-member sees nothing private and creates nothing
    assert carol.model_info("acme/model").private is True
    for who, rid in ((carol, "acme/c"), (dave, "acme/d")):
        with pytest.raises(HfHubHTTPError) as e:
            who.create_repo(rid)
        assert _status(e) == 403
    with pytest.raises(RepositoryNotFoundError):
        dave.model_info("acme/model")
    assert not dave.repo_exists("acme/model") and carol.repo_exists("acme/model")
    assert "acme/model" not in [m.id for m in dave.list_models(author="acme")]


# -- refs --------------------------------------------------------------------------------------------------
def test_refs_namespaces_short_ids_and_texts(hub, tmp_path):
    alice = _api(hub, ALICE_WRITE)
    alice.create_repo("alice/r")
    v1 = alice.upload_file(path_or_fileobj=b"tagged", path_in_repo="f.txt", repo_id="alice/r").oid
    alice.create_tag("alice/r", tag="v1")
    alice.create_branch("alice/r", branch="v1")  # a branch may share a tag's name
    alice.upload_file(path_or_fileobj=b"branch", path_in_repo="f.txt", repo_id="alice/r", revision="v1")
    read = lambda rev: Path(hf_hub_download("alice/r", "f.txt", revision=rev, endpoint=hub.endpoint, cache_dir=tmp_path / rev.replace("/", "_"))).read_bytes()
    assert (read("refs/tags/v1"), read("refs/heads/v1"), read(v1[:7])) == (b"tagged", b"branch", b"tagged")
    assert alice.model_info("alice/r", revision=v1[:10]).sha == v1
    with pytest.raises(HfHubHTTPError, match="Reference refs/heads/v1 already exists") as e:
        alice.create_branch("alice/r", branch="v1")
    assert _status(e) == 409
    with pytest.raises(HfHubHTTPError, match="Reference refs/tags/v1 already exists"):
        alice.create_tag("alice/r", tag="v1")
    with pytest.raises(HfHubHTTPError, match="Cannot delete refs/heads/main") as e:
        alice.delete_branch("alice/r", branch="main")
    assert _status(e) == 403
    with pytest.raises(RevisionNotFoundError):
        alice.model_info("alice/r", revision="0000000")


# -- ids and errors ----------------------------------------------------------------------------------------
def test_ids_errors_and_request_ids(hub):
    alice = _api(hub, ALICE_WRITE)
    alice.create_repo("alice/Model")
    assert alice.model_info("ALICE/model").id == "alice/Model"  # matched case-insensitively, stored case kept
    with pytest.raises(HfHubHTTPError) as e:
        alice.create_repo("alice/MODEL")
    assert _status(e) == 409
    assert alice.create_repo("alice/model", exist_ok=True).repo_id == "alice/model"
    alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ALICE/MODEL")
    assert alice.list_repo_files("alice/Model") == [".gitattributes", "x.txt"]
    for rid, rtype in (("alice/nope", "model"), ("gpt2", "model"), ("nope", "dataset"), ("alice/nope", "space")):
        assert alice.repo_exists(rid, repo_type=rtype) is False
        assert alice.file_exists(rid, "x.txt", repo_type=rtype) is False
    with pytest.raises(RepositoryNotFoundError):
        list(alice.list_repo_tree("gpt2"))
    for method, path, code in (("GET", "/api/models/alice/Model", 200), ("GET", "/api/models/gpt2", 404), ("GET", "/api/whoami-v2", 401)):
        r = httpx.request(method, hub.endpoint + path, timeout=30)
        assert r.status_code == code and r.headers["X-Request-Id"].startswith("Root=1-")
        if code == 404: assert r.headers["X-Error-Code"] == "RepoNotFound"
    first = alice.model_info("alice/Model").sha
    alice.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id="alice/Model")
    with pytest.raises(HfHubHTTPError, match="The branch was updated since you opened this page") as e:
        alice.create_commit("alice/Model", [CommitOperationAdd("z.txt", b"z")], commit_message="stale", parent_commit=first)
    assert _status(e) == 412 and e.value.request_id
    with pytest.raises(HfHubHTTPError) as e:
        alice.upload_file(path_or_fileobj=b"x", path_in_repo="..\\x", repo_id="alice/Model")
    assert _status(e) == 422


# -- files ---------------------------------------------------------------------------------------------------
def test_folder_deletes_gitignore_and_space_readme(hub, tmp_path):
    alice = _api(hub, ALICE_WRITE)
    alice.create_repo("alice/f")
    src = tmp_path / "src"
    for p in ("a/1.txt", "a/2.txt", "b/3.txt", "keep.txt"): (src / p).parent.mkdir(parents=True, exist_ok=True); (src / p).write_text(p)
    alice.upload_folder(repo_id="alice/f", folder_path=src)
    alice.delete_folder("a/", "alice/f")  # a trailing '/'
    alice.create_commit("alice/f", [CommitOperationDelete("b", is_folder=False)], commit_message="rm b")  # a file delete on a folder path
    assert sorted(alice.list_repo_files("alice/f")) == [".gitattributes", "keep.txt"]
    alice.upload_file(path_or_fileobj=b"*.log\nsecret/\n", path_in_repo=".gitignore", repo_id="alice/f")
    more = tmp_path / "more"
    for p in ("x.log", "secret/k.txt", "d/y.log", "ok.txt"): (more / p).parent.mkdir(parents=True, exist_ok=True); (more / p).write_text(p)
    alice.upload_folder(repo_id="alice/f", folder_path=more)
    assert sorted(alice.list_repo_files("alice/f")) == [".gitattributes", ".gitignore", "keep.txt", "ok.txt"]
    alice.create_repo("alice/my-demo", repo_type="space", space_sdk="gradio")
    card = RepoCard(Path(hf_hub_download("alice/my-demo", "README.md", repo_type="space", endpoint=hub.endpoint, cache_dir=tmp_path / "c")).read_text())
    assert (card.data.title, card.data.sdk, card.data.app_file, card.data.pinned) == ("My Demo", "gradio", "app.py", False)
    assert card.data.emoji and card.data.colorFrom and "spaces-config-reference" in card.text


def test_validate_yaml_license(hub):
    alice = _api(hub, ALICE_WRITE)
    alice.create_repo("alice/y")
    with pytest.raises((ValueError, HfHubHTTPError), match="license"):
        alice.upload_file(path_or_fileobj=b"---\nlicense: not-a-license\n---\n# y\n", path_in_repo="README.md", repo_id="alice/y")
    alice.upload_file(path_or_fileobj=b"---\nlicense: apache-2.0\n---\n# y\n", path_in_repo="README.md", repo_id="alice/y")
    assert alice.model_info("alice/y").card_data.license == "apache-2.0"


# -- fine-grained tokens ----------------------------------------------------------------------------------------
def test_fine_grained_token_limited_to_its_repo(hub):
    alice, fg = _api(hub, ALICE_WRITE), _api(hub, ALICE_FEEDBACK)
    me = fg.whoami()
    at = me["auth"]["accessToken"]
    assert me["name"] == "alice" and at["role"] == "fineGrained"
    assert at["fineGrained"]["scoped"][0]["entity"]["type"] == "dataset" and at["fineGrained"]["scoped"][0]["entity"]["name"] == "alice/fb"
    assert at["fineGrained"]["scoped"][0]["permissions"] == ["repo.content.read", "repo.write"]
    alice.create_repo("alice/fb", repo_type="dataset", private=True)
    alice.create_repo("alice/model")
    alice.create_repo("alice/private", private=True)
    # allowed on its dataset: read it (private) and write to it
    fg.upload_file(path_or_fileobj=b'{"flag": 1}\n', path_in_repo="data/f.jsonl", repo_id="alice/fb", repo_type="dataset")
    assert "data/f.jsonl" in fg.list_repo_files("alice/fb", repo_type="dataset")
    # refused everywhere else, even in its own user's namespace
    with pytest.raises(HfHubHTTPError, match="repo.write") as e:
        fg.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/model")
    assert _status(e) == 403
    with pytest.raises(HfHubHTTPError) as e:
        fg.create_repo("alice/new")
    assert _status(e) == 403
    with pytest.raises(RepositoryNotFoundError):
        fg.model_info("alice/private")
    with pytest.raises(HfHubHTTPError) as e:
        fg.update_repo_settings("alice/model", private=True)
    assert _status(e) == 403
    assert alice.model_info("alice/model").private is False


def test_issued_fine_grained_token_survives_restart(tmp_path):
    root = tmp_path / "hub"
    with LocalHub(root, tokens=TOKENS) as hub:
        _api(hub, ALICE_WRITE).create_repo("alice/space-feedback", repo_type="dataset", private=True)
        tok = hub.issue_token("alice", "fineGrained", scoped=[{"entity": "datasets/alice/space-feedback", "permissions": ["repo.write"]}])
        assert tok.startswith("hf_") and tok not in TOKENS["tokens"]
        assert oct((root / ".localhub" / "issued-tokens.json").stat().st_mode & 0o777) == "0o600"
    with LocalHub(root, tokens=TOKENS) as hub:
        fb = _api(hub, tok)
        fb.upload_file(path_or_fileobj=b"{}", path_in_repo="f.json", repo_id="alice/space-feedback", repo_type="dataset")
        with pytest.raises(HfHubHTTPError) as e:
            fb.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/model-x")
        assert _status(e) in (403, 404)
        _api(hub, ALICE_WRITE).create_repo("alice/model-x")
        with pytest.raises(HfHubHTTPError) as e:
            fb.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/model-x")
        assert _status(e) == 403
    with pytest.raises(Exception, match="unknown permission"):
        LocalHub(tmp_path / "h2", tokens=TOKENS).issue_token("alice", "fineGrained", global_perms=["repo.wirte"])
