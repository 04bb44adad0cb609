"""The whole pipeline, timed: `quickstart --exit-after-check` wall time, and a batch run in parallel vs one at a time.

1. `voxtral-deploy quickstart --exit-after-check` in a fresh work folder (a new process: Python start-up, the tiny
   Voxtral build, the local hub, publish, the Space build, the smoke check). Goal: <= 40 s wall. Falls back to
   `python -c "quickstart(...)"` while the CLI does not have the subcommand.
2. A batch of 4 deployments (tiny model, full pipeline with a Space and its smoke check each) run with
   `run_batch(parallel=2)` and with `parallel=1`, each against a fresh local hub. Goal: parallel <= 0.7x serial.

0. Results flow forward: one model-only `deploy()` (the tiny Voxtral, a local hub) counts the `whoami` calls made
   through its `HfApi` and the `inspect_model` calls of the pipeline and the publisher, and the card renders.
   Goal: 1 each (the pipeline asks, inspects and renders once and hands the results on).

Usage: python bench/pipeline.py [--quickstart-runs N] [--batch-reps N] [--no-space] [--no-flow]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CANARY = "hf_FakeBenchToken00000000000000000042"


def _cli_has_quickstart() -> bool:
    exe = shutil.which("voxtral-deploy", path=str(Path(sys.executable).parent)) or shutil.which("voxtral-deploy")
    if not exe: return False
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    return "quickstart" in r.stdout + r.stderr


def time_quickstart(workdir: Path) -> tuple[float, str]:
    if _cli_has_quickstart():
        exe = shutil.which("voxtral-deploy", path=str(Path(sys.executable).parent)) or "voxtral-deploy"
        cmd, how = [exe, "quickstart", "--workdir", str(workdir), "--exit-after-check"], "voxtral-deploy quickstart --exit-after-check"
    else:
        cmd = [sys.executable, "-c", f"from voxtral_deploy.quickstart import quickstart; import sys; "
                                     f"sys.exit(0 if quickstart({str(workdir)!r}, exit_after_check=True) else 1)"]
        how = "python -c quickstart(exit_after_check=True) (CLI subcommand not wired yet)"
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"quickstart failed (exit {r.returncode})")
    return dt, how


def time_batch(root: Path, model_dir: Path, fixtures: dict, parallel: int, n: int, space: bool) -> tuple[float, list]:
    from voxtral_deploy.localhub import LocalHub
    from voxtral_deploy.batch import run_batch
    with LocalHub(root / "hub", tokens={CANARY: {"user": "bench", "role": "write"}}) as hub:
        tok = root / "token"; tok.write_text(CANARY + "\n")
        entries = [{"name": f"m{i}", "model_dir": str(model_dir), "repo_id": f"bench/voxtral-{i}", "endpoint": hub.endpoint,
                    "token_file": str(tok), "training_config": str(fixtures["training_config"]),
                    "results": str(fixtures["trainer_state"]), "space": space, "timeout": 300} for i in range(n)]
        t = time.perf_counter()
        rep = run_batch(entries, parallel=parallel, report_dir=root / "reports")
        dt = time.perf_counter() - t
        if not rep.ok:
            print(rep.summary(), file=sys.stderr)
            raise SystemExit("a batch entry failed")
        return dt, [e.seconds for e in rep.entries]


def count_repeated_work(root: Path, model_dir: Path) -> dict:
    "whoami calls, inspections and card renders of one model-only deploy (counted by wrapping them, for this measurement only)."
    import voxtral_deploy.card as card_mod, voxtral_deploy.pipeline as pl, voxtral_deploy.publish as pub
    from huggingface_hub import HfApi
    from voxtral_deploy.localhub import LocalHub
    counts = {"whoami": 0, "inspect_model": 0, "card renders": 0}
    def counted(name, fn):
        def wrapper(*a, **k): counts[name] += 1; return fn(*a, **k)
        return wrapper
    class CountingApi(HfApi):
        def whoami(self, *a, **k): counts["whoami"] += 1; return super().whoami(*a, **k)
    saved = (pl.inspect_model, pub.inspect_model, card_mod.ModelCardGenerator.generate_model_card)
    pl.inspect_model, pub.inspect_model = counted("inspect_model", saved[0]), counted("inspect_model", saved[1])
    card_mod.ModelCardGenerator.generate_model_card = counted("card renders", saved[2])
    try:
        with LocalHub(root / "hub", tokens={CANARY: {"user": "bench", "role": "write"}}) as hub:
            cfg = pl.DeployConfig(model_dir=str(model_dir), repo_id="bench/flow", endpoint=hub.endpoint, space=False, record_dir=str(root / "rec"))
            rec = pl.deploy(cfg, token=CANARY, api=CountingApi(endpoint=hub.endpoint, token=CANARY), progress=False)
            assert rec.status == "ok", rec.summary()
    finally:
        pl.inspect_model, pub.inspect_model, card_mod.ModelCardGenerator.generate_model_card = saved
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quickstart-runs", type=int, default=2)
    ap.add_argument("--no-space", action="store_true", help="batch entries publish the model only")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--batch-reps", type=int, default=1, help="serial/parallel pairs (alternating order); the median ratio is reported")
    ap.add_argument("--no-flow", action="store_true", help="skip counting the repeated work of one deploy")
    args = ap.parse_args()
    from voxtral_deploy.testing import make_tiny_voxtral
    from voxtral_deploy.testing_training import make_training_fixtures
    print(f"machine: {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as d:
        d = Path(d)
        os.environ["VOXTRAL_DEPLOY_CACHE"] = str(d / "cache")
        # 0. results flow forward: each piece of work done once per deploy
        if not args.no_flow:
            counts = count_repeated_work(d / "flow", make_tiny_voxtral(d / "flow-model"))
            print("one deploy (model only): " + ", ".join(f"{k} {v}" for k, v in counts.items())
                  + f"; goal 1 each: {'PASS' if all(v == 1 for v in counts.values()) else 'FAIL'}")
        # 1. quickstart, fresh work folder each time
        times = []
        for i in range(args.quickstart_runs):
            dt, how = time_quickstart(d / f"qs{i}")
            times.append(dt)
            print(f"quickstart run {i+1}: {dt:.1f} s")
        if times:
            print(f"quickstart ({how}): median {statistics.median(times):.1f} s, min {min(times):.1f} s; "
                  f"goal <= 40 s: {'PASS' if statistics.median(times) <= 40 else 'FAIL'}")
        # 2. batch: parallel=1 vs parallel=2, same entries, fresh hub each
        model = make_tiny_voxtral(d / "model")
        fx = make_training_fixtures(d / "training")
        ratios = []
        for rep in range(args.batch_reps):  # alternate the order, so a change in the machine's load hits both
            order = (1, 2) if rep % 2 == 0 else (2, 1)
            res = {}
            for par in order:
                dt, each = time_batch(d / f"b{rep}-p{par}", model, fx, par, args.batch_size, not args.no_space)
                res[par] = dt
                print(f"batch of {args.batch_size}, parallel={par}: {dt:.1f} s (entries: {', '.join(f'{x:.1f}' for x in each)} s)")
            ratios.append(res[2] / res[1])
            print(f"  ratio parallel/serial: {ratios[-1]:.2f}x")
        if not ratios: return
        r = statistics.median(ratios)
        print(f"ratio parallel/serial, median of {len(ratios)}: {r:.2f}x (each: {', '.join(f'{x:.2f}' for x in ratios)}); "
              f"goal <= 0.70x: {'PASS' if r <= 0.70 else 'FAIL'}")


if __name__ == "__main__":
    main()
