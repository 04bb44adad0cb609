"""`voxtral-deploy ci-init` writes a GitHub Actions workflow and the deploy.yaml it runs; here the workflow's `run:` steps
run in order in a fresh folder, the token given as the repository secret would be, against the local hub, and end in a
published model and a RUNNING Space."""
import os, re, shutil, subprocess, sys
from pathlib import Path

import pytest
import yaml

from conftest import ALICE_WRITE, TOKENS

BIN = Path(sys.executable).parent
MODEL, SPACE = "alice/ci-voxtral", "alice/ci-voxtral-demo"


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    return subprocess.run([str(BIN / "voxtral-deploy"), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def _step_env(step: dict, secrets: dict) -> dict:
    "The step's environment as Actions gives it: `${{ secrets.NAME }}` replaced by the repository secret."
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_TOKEN")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               HF_HUB_DISABLE_XET="1", VOXTRAL_DEPLOY_CACHE=env.get("VOXTRAL_DEPLOY_CACHE", ""))
    for k, v in (step.get("env") or {}).items():
        env[k] = re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets[m.group(1)], str(v))
    return {k: v for k, v in env.items() if v != ""}


@pytest.mark.space
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ci_init_workflow_runs_to_a_published_model_and_a_running_space(hub, api, tiny_model_dir, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(tiny_model_dir, repo / "model")
    out = _cli("ci-init", "model", "--repo-id", MODEL, "--space-id", SPACE, "--endpoint", hub.endpoint, "--on-push", "--json", cwd=repo)
    assert out.returncode == 0, out.stderr
    wf_path, cfg_path = repo / ".github/workflows/deploy-voxtral.yml", repo / "deploy.yaml"
    assert wf_path.is_file() and cfg_path.is_file()
    wf, cfg = yaml.safe_load(wf_path.read_text()), yaml.safe_load(cfg_path.read_text())
    assert (cfg["model_dir"], cfg["repo_id"], cfg["space_id"], cfg["endpoint"]) == ("model", MODEL, SPACE, hub.endpoint)
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert "workflow_dispatch" in on and on["push"]["paths"][0] == "deploy.yaml"
    steps = wf["jobs"]["deploy"]["steps"]
    deploy_step = next(s for s in steps if s.get("name") == "Deploy")
    assert deploy_step["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}" and "--config deploy.yaml" in deploy_step["run"]
    for tok in TOKENS: assert tok not in wf_path.read_text() + cfg_path.read_text()

    ran = []
    for step in steps:
        if "run" not in step: continue  # `uses:` steps (checkout, setup-python, upload-artifact) are GitHub's own
        r = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=_step_env(step, {"HF_TOKEN": ALICE_WRITE}),
                           capture_output=True, text=True, timeout=800)
        assert r.returncode == 0, f"step {step.get('name')!r} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        assert ALICE_WRITE not in r.stdout + r.stderr
        ran.append(step.get("name"))
    assert ran == ["Install torch (CPU) first", "Install voxtral-deploy", "Deploy"]
    assert "model.safetensors" in api.list_repo_files(MODEL)
    assert str(api.get_space_runtime(SPACE).stage) == "RUNNING"
    records = list((repo / "deployments").glob("*.json"))
    assert records and ALICE_WRITE not in records[0].read_text()

    again = _cli("ci-init", "model", "--repo-id", MODEL, cwd=repo)  # an existing config is not overwritten silently
    assert again.returncode != 0 and "--force" in again.stderr
