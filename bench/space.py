"""Deploying the demo Space costs little beyond the app's own cold start.

In one run, on one local hub with the tiny Voxtral published:
- cold start: `python app.py` alone (the rendered Space, HF_ENDPOINT at the hub, an empty HF_HOME) from spawn
  to its first transcription through gradio_client;
- deploy: `DemoSpaceDeployer.deploy()` to a new Space, from the call to the smoke check's pass (create, commit,
  build by the hub's Space runtime, app start, smoke transcription compared with a local run), in a fresh
  process that has imported `voxtral_deploy.space` only (so torch/transformers imports are not pre-paid).
Rounds alternate the two. Goal: deploy <= cold start + 3 s (medians).

Then the sandbox (issue 12): the same rendered Space committed to the hub and started by its Space runtime, from the
commit to its first transcription through gradio_client, with the app in bubblewrap (as `nobody` behind the
`AppGate` when root) and with the sandbox off, rounds alternating. Goal: the sandbox costs at most 10% of that
cold start (medians).

    .venv/bin/python bench/space.py [--rounds 3] [--sandbox-only]
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


def hub_cold_start(hub, api, name: str, space_dir: Path, variables: dict, clip: Path, sandbox: str) -> float:
    "Commit the rendered Space to a new Space started in `sandbox`; seconds from the commit to its first transcription."
    from gradio_client import Client, handle_file
    hub.spaces.sandbox = sandbox
    api.create_repo(name, repo_type="space", space_sdk="gradio", space_variables=[{"key": k, "value": v} for k, v in variables.items()])
    t = time.perf_counter()
    api.upload_folder(repo_id=name, repo_type="space", folder_path=space_dir)
    sp = hub.space(name)
    stage = sp.wait(timeout=600)
    assert stage == "RUNNING", (stage, sp.log_tail("run", 20))
    running = time.perf_counter() - t
    Client(sp.host, token=TOKEN, verbose=False, download_files=False, analytics_enabled=False).predict(
        handle_file(str(clip)), "auto", 64, api_name="/transcribe")
    took = time.perf_counter() - t
    print(f"  {name}: RUNNING after {running:.2f} s, first transcription after {took:.2f} s", flush=True)
    api.pause_space(name)
    return took


def sandbox_fixed_cost(hub, n: int = 15) -> tuple[float, float]:
    "Medians (s) of starting `python -c pass` as the runtime does, in the sandbox (bwrap, nobody, netns + gate) and off."
    from voxtral_deploy.localhub.sandbox import SPACE_UID, AppGate, bwrap_argv, open_gate, sandbox_mode
    mode, root = sandbox_mode("auto"), os.geteuid() == 0
    on, off = [], []
    with tempfile.TemporaryDirectory() as d:
        home = Path(d, "home"); app = Path(d, "app"); home.mkdir(); app.mkdir(); os.chmod(d, 0o755); os.chmod(home, 0o777); os.chmod(app, 0o777)
        env = {"PATH": "/usr/bin:/bin"}
        for _ in range(n):
            t = time.perf_counter(); subprocess.run([sys.executable, "-c", "pass"], env=env, cwd=app, check=True); off.append(time.perf_counter() - t)
            t = time.perf_counter()
            if mode == "bwrap":
                netns = root
                fds = (*os.pipe(), *os.pipe()) if netns else ()
                argv = bwrap_argv([sys.executable, "-c", "pass"], home=home, app_dir=app, python=sys.executable, hide=(str(hub.root),),
                                  uid=SPACE_UID if root else None, netns=netns, status_fd=fds[1] if fds else None, block_fd=fds[2] if fds else None)
                p = subprocess.Popen(argv, env=env, pass_fds=(fds[1], fds[2]) if fds else ())
                if fds:
                    os.close(fds[1]); os.close(fds[2]); gate = AppGate(hub.port); open_gate(gate, fds[0], fds[3])
                p.wait()
                if fds: gate.close()
            on.append(time.perf_counter() - t)
    return statistics.median(on), statistics.median(off)


def sandbox_rounds(hub, api, space_dir: Path, variables: dict, clip: Path, rounds: int):
    "Cold starts through the hub with the sandbox and without it, alternating; prints medians and the ratio."
    from voxtral_deploy.localhub.sandbox import sandbox_mode
    mode = sandbox_mode("auto")
    hub_cold_start(hub, api, "bench/sandbox-warm", space_dir, variables, clip, mode)  # warm caches; not counted
    on, off = [], []
    for i in range(rounds):
        order = (mode, "off") if i % 2 == 0 else ("off", mode)
        for m in order: (on if m == mode else off).append(hub_cold_start(hub, api, f"bench/sb-{m}-{i}", space_dir, variables, clip, m))
        print(f"sandbox round {i + 1}: {mode} {on[-1]:.2f} s, off {off[-1]:.2f} s", flush=True)
    a, b = statistics.median(on), statistics.median(off)
    fon, foff = sandbox_fixed_cost(hub)
    print(f"starting `python -c pass` as the runtime does: sandbox {mode} median {fon * 1000:.0f} ms, off {foff * 1000:.0f} ms: "
          f"fixed cost of the sandbox {1000 * (fon - foff):+.0f} ms = {100 * (fon - foff) / b:+.2f}% of the cold start (off)")
    print(f"paired differences (sandbox - off, same round): {', '.join(f'{x - y:+.2f}' for x, y in zip(on, off))} s")
    print(f"hub cold start (commit -> first transcription), sandbox {mode}: median {a:.2f} s  (all: {', '.join(f'{x:.2f}' for x in on)})")
    print(f"hub cold start, sandbox off:                                 median {b:.2f} s  (all: {', '.join(f'{x:.2f}' for x in off)})")
    print(f"sandbox cost: {a - b:+.2f} s = {100 * (a - b) / b:+.1f}% of the cold start; goal <= 10%: {'PASS' if a <= 1.10 * b else 'FAIL'}")


def deploy_once(hub, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", DEPLOY_CHILD, hub.endpoint, TOKEN, MODEL, name],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sandbox-only", action="store_true", help="only the sandbox rounds")
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
            sandbox_rounds(hub, api, space_dir, variables, clip, args.rounds)
            if args.sandbox_only: return
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
