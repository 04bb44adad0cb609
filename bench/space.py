"""Deploying the demo Space costs little beyond the app's own cold start.

In one run, on one local hub with the tiny Voxtral published:
- cold start: `python app.py` alone (the rendered Space, HF_ENDPOINT at the hub, an empty HF_HOME) from spawn
  to its first transcription through gradio_client;
- deploy: `DemoSpaceDeployer.deploy()` to a new Space, from the call to the smoke check's pass (create, commit,
  build by the hub's Space runtime, app start, smoke transcription compared with a local run), in a fresh
  process that has imported `voxtral_deploy.space` only (so torch/transformers imports are not pre-paid).
Rounds alternate the two. Goal: deploy <= cold start + 3 s (medians).

    .venv/bin/python bench/space.py [--rounds 3]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

TOKEN = "hf_FakeBenchWriteToken000000000000000001"
MODEL = "bench/tiny-voxtral"

DEPLOY_CHILD = r"""
import json, os, sys, time
from voxtral_deploy.space import DemoSpaceDeployer
from huggingface_hub import HfApi
endpoint, token, model, name = sys.argv[1:5]
t = time.perf_counter()
r = DemoSpaceDeployer.for_model(model, api=HfApi(endpoint=endpoint, token=token), space_name=name).deploy(timeout=600)
total = time.perf_counter() - t
print(json.dumps({"total": total, "timings": r.timings, "matched": r.smoke.matched_local}))
"""


def cold_start(hub, space_dir: Path, variables: dict, clip: Path, work: Path) -> float:
    "Spawn the app alone; seconds until its first transcription answers."
    from gradio_client import handle_file
    from voxtral_deploy.testing import demo_app_env, start_demo_app
    env = demo_app_env(hub.endpoint, variables, hf_home=tempfile.mkdtemp(dir=work))
    with start_demo_app(space_dir, env, log=Path(tempfile.mkstemp(dir=work, suffix=".log")[1]), timeout=600, poll=0.1) as app:
        app.client(download_files=False, analytics_enabled=False).predict(handle_file(str(clip)), "auto", 64, api_name="/transcribe")
        return time.perf_counter() - app.started


def deploy_once(hub, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", DEPLOY_CHILD, hub.endpoint, TOKEN, MODEL, name],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from huggingface_hub import HfApi
    from voxtral_deploy.demo_app import render_demo_space, space_variables
    from voxtral_deploy.localhub import LocalHub
    from voxtral_deploy.testing import make_clip, make_tiny_voxtral
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        model_dir = make_tiny_voxtral(work / "tiny")
        clip = make_clip(work / "smoke.wav", seconds=2.0)
        with LocalHub(work / "hub", tokens={TOKEN: {"user": "bench", "role": "write"}}) as hub:
            api = HfApi(endpoint=hub.endpoint, token=TOKEN)
            api.create_repo(MODEL)
            sha = api.upload_folder(repo_id=MODEL, folder_path=model_dir).oid
            space_dir = work / "space"
            render_demo_space(space_dir, model_id=MODEL, revision=sha)
            variables = space_variables(MODEL, revision=sha)
            cold_start(hub, space_dir, variables, clip, work)  # warm the page cache; not counted
            colds, deploys, details = [], [], []
            for i in range(args.rounds):
                first_cold = i % 2 == 0
                if first_cold: colds.append(cold_start(hub, space_dir, variables, clip, work))
                r = deploy_once(hub, f"demo-{i}")
                assert r["matched"] is True, r
                deploys.append(r["total"]); details.append(r["timings"])
                if not first_cold: colds.append(cold_start(hub, space_dir, variables, clip, work))
                print(f"round {i + 1}: cold start {colds[-1]:.2f} s, deploy {deploys[-1]:.2f} s  {r['timings']}", flush=True)
                api.pause_space(f"bench/demo-{i}")  # one app at a time on the machine
    cold, dep = statistics.median(colds), statistics.median(deploys)
    diffs = [d - c for d, c in zip(deploys, colds)]
    print(f"cold start (spawn -> first transcription): median {cold:.2f} s  (all: {', '.join(f'{x:.2f}' for x in colds)})")
    print(f"deploy (call -> smoke check passed):       median {dep:.2f} s  (all: {', '.join(f'{x:.2f}' for x in deploys)})")
    print(f"paired overhead per round (deploy - cold start of the same round): {', '.join(f'{x:+.2f}' for x in diffs)}; "
          f"median {statistics.median(diffs):+.2f} s")
    print(f"overhead of the medians: {dep - cold:+.2f} s  ratio {dep / cold:.2f}x  "
          f"goal <= cold start + 3 s: {'PASS' if dep <= cold + 3 else 'FAIL'}")


if __name__ == "__main__":
    main()
