"""What the demo app adds on top of the transcription engine: per-request overhead and cold start.

Same run, same clip, tiny model published to a local hub, the Space rendered by `render_demo_space` and run
with `python app.py`, exactly as the tests do.

Every request figure is taken through two clients of the same app, in the same run:
- gradio_client (`Client.predict`/`submit`), which opens a new connection for each request and reads the
  server's messages from its own queue every 50 ms (`gradio_client.utils.stream_sse_v1plus` sleeps 0.05 s whenever
  the queue is empty), so each of its requests waits up to 50 ms after the result has arrived;
- `BrowserClient` below, which speaks the protocol the demo page's JavaScript speaks (upload, `queue/join`, then the
  session's server-sent events on `queue/data`) on one kept-alive connection and acts on each message as it comes.

- Overhead: `transcribe` through each client minus a direct `Transcriber.transcribe` (p50); goal <= 90 ms.
- Cold start: spawn of `python app.py` to the first transcription answered through gradio_client, against
  one process that imports torch, transformers and gradio and loads the model (fresh download cache for
  both); goal <= 1.3x.
- Streaming: on a 10 s clip, the time until the first words reach a client that streams (first non-empty text)
  over the time of the whole transcription; goal <= 0.3x.
- Batching: 8 concurrent clients, each sending requests back to back, against the app batching up to 8 requests per
  `generate` call and against the same app serving one request at a time (MAX_BATCH_SIZE=1, the demo before
  batching); throughput ratio (goal >= 2.5x) and p50/p95 latency of each, for two workloads: the 2 s clip with 32
  new tokens (the model's work ~50 ms, less than Gradio's own per request) and the 10 s clip with up to 256 (the
  model's work dominates, as it does for a real Voxtral on any hardware). The batching app is also run with
  BATCH_REGROUP_MS=0 (a batch starts as soon as nothing more is being read, as before regrouping). The three apps
  run side by side and take turns on each workload in ROUNDS rounds (the order rotating), so that each round's ratio
  compares measurements seconds apart; the ratio reported is the rounds' pooled throughputs, with each round's
  beside it. Each load test reports the mean batch size from the app's `model_info` and the cores its app's
  processes and the clients kept busy (CPU seconds over wall seconds: 2.0 is all of a 2-core machine). The 8
  gradio_client clients run in 8 processes (as 8 threads of one process they saturated its GIL at 1.07 cores); even
  so they take ~180 ms of CPU a request, ~1 core of a 2-core machine, so their figures measure the callers as much
  as the app (BENCHMARKS.md). The browser-protocol clients are threads (~20 ms of CPU a request, 0.05-0.10 cores in
  all). Beside each workload, its ceiling: the same 8 requests in one `transcribe_together` call against one by one,
  in the bench's own process with no server, which bounds what any app can get from batching them.

`python bench/app.py [--skip-cold]` (the cold starts take most of the run).
"""
import os

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json, shutil, statistics, subprocess, sys, tempfile, time, uuid
from pathlib import Path

from voxtral_deploy.core import free_port  # imports no huggingface_hub: the endpoint below is still set in time

ALICE = "hf_FakeAliceWriteToken0000000000000001"
REPO = "alice/tiny-voxtral"
MAX_NEW_TOKENS = 32
N = 40        # paired requests for the overhead
COLD = 5      # cold starts of each kind (min and median reported: the machines are shared and noisy)
STREAM_RUNS = 10         # streamed requests on the 10 s clip
STREAM_TOKENS = 256      # ... each generating up to this many tokens
CLIENTS, PER_CLIENT = 8, 6  # batching: concurrent clients, requests each (short workload)
LONG_PER_CLIENT = 3         # ... requests each on the 10 s clip with STREAM_TOKENS new tokens
ROUNDS = 3                  # batching: rounds in which the three apps take turns on each workload

BASELINE = """
import sys, time
import torch, transformers, gradio
from inference import Transcriber
t = Transcriber.from_pretrained(sys.argv[1], revision=sys.argv[2])
print("loaded", flush=True)
t.transcribe(sys.argv[3], max_new_tokens=int(sys.argv[4]))
print("transcribed", flush=True)
"""


class BrowserClient:
    "The demo page's protocol: upload the clip, join the queue, read the session's event stream (one kept-alive connection)."
    def __init__(self, url: str):
        import httpx
        self.http = httpx.Client(timeout=120)
        config = self.http.get(url.rstrip("/") + "/config").json()
        self.api = url.rstrip("/") + "/" + config.get("api_prefix", "/gradio_api").strip("/") + "/"
        self.fn_index = next(d.get("id", i) for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "transcribe")

    def submit(self, clip: Path, language: str, max_new_tokens: int):
        "Each streamed output (a list, one item per output component) as it arrives; the final one last."
        clip = Path(clip)
        with open(clip, "rb") as fh:
            r = self.http.post(self.api + "upload", files={"files": (clip.name, fh, "audio/wav")}); r.raise_for_status()
        audio = {"path": r.json()[0], "orig_name": clip.name, "meta": {"_type": "gradio.FileData"}}
        session = uuid.uuid4().hex
        r = self.http.post(self.api + "queue/join", json={"data": [audio, language, max_new_tokens], "fn_index": self.fn_index,
                                                         "session_hash": session, "trigger_id": None, "event_data": None})
        r.raise_for_status(); event = r.json()["event_id"]
        with self.http.stream("GET", self.api + "queue/data", params={"session_hash": session}) as stream:
            buffer = ""
            for chunk in stream.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    line, buffer = buffer.split("\n\n", 1)
                    if not line.startswith("data:"): continue
                    msg = json.loads(line[5:])
                    if msg.get("event_id", event) != event: continue
                    if msg["msg"] == "process_generating": yield msg["output"]["data"]
                    elif msg["msg"] == "process_completed":
                        if not msg.get("success", True): raise RuntimeError(f"the app failed: {msg.get('output')}")
                        yield msg["output"]["data"]; return
        raise RuntimeError("the event stream ended before the result")

    def predict(self, clip: Path, language: str, max_new_tokens: int) -> list:
        for out in self.submit(clip, language, max_new_tokens): pass
        return out


def env_for(hub, space_vars: dict, hf_home: Path) -> dict:
    from voxtral_deploy.testing import demo_app_env
    return demo_app_env(hub.endpoint, space_vars, hf_home=hf_home)


def baseline_cold(space: Path, env: dict, sha: str, clip: Path) -> tuple[float, float]:
    "Seconds from spawn to 'model loaded' and to 'first transcription' for a bare process."
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", BASELINE, REPO, sha, str(clip), str(MAX_NEW_TOKENS)], cwd=space, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    marks = {}
    for line in p.stdout:
        marks[line.strip()] = time.perf_counter() - t0
    p.wait()
    return marks["loaded"], marks["transcribed"]


def streamed(client, clip: Path, max_new_tokens: int) -> tuple[float, float, str]:
    "Seconds until the first non-empty text reaches the client, seconds until the final result, and the text."
    from gradio_client import handle_file
    t0 = time.perf_counter()
    browser = isinstance(client, BrowserClient)
    job = client.submit(clip, "auto", max_new_tokens) if browser else \
        client.submit(handle_file(str(clip)), "auto", max_new_tokens, api_name="/transcribe")
    first, update = None, None
    for update in job:
        if first is None and isinstance(update[0], str) and update[0]: first = time.perf_counter() - t0
    final = update if browser else job.result()  # BrowserClient.submit yields the final outputs last
    return first, time.perf_counter() - t0, final[0]


def ask(client, clip: Path, max_new_tokens: int) -> list:
    "One request's final outputs, through either client."
    from gradio_client import handle_file
    if isinstance(client, BrowserClient): return client.predict(clip, "auto", max_new_tokens)
    return client.predict(handle_file(str(clip)), "auto", max_new_tokens, api_name="/transcribe")


def _client_process(url: str, clip: str, max_new_tokens: int, per_client: int, barrier, results):
    "One gradio_client client in a process of its own: `per_client` requests back to back after the barrier."
    from gradio_client import Client, handle_file
    client = Client(url, verbose=False)
    barrier.wait()
    cpu0, out = time.process_time(), []
    for _ in range(per_client):
        t = time.perf_counter()
        text = client.predict(handle_file(clip), "auto", max_new_tokens, api_name="/transcribe")[0]
        out.append((time.perf_counter() - t, text))
    results.put((out, time.process_time() - cpu0))


def load_test(app, clip: Path, max_new_tokens: int = MAX_NEW_TOKENS, per_client: int = PER_CLIENT,
              browser: bool = False) -> tuple[float, list[float], list[str], float, tuple[float, float]]:
    """CLIENTS clients, `per_client` requests each, back to back: wall seconds, each request's latency, the texts, the mean
    batch size, and the cores busy meanwhile (CPU seconds over wall seconds) in the app's processes and in the clients'.
    BrowserClients are threads of this process (together they keep ~0.1 core busy); gradio_client clients are a process
    each, since 8 of them as threads of one process saturate its GIL (~1.07 cores) and measure the load generator."""
    import concurrent.futures as cf, multiprocessing as mp, threading, psutil
    info = app.client()
    batching = lambda: info.predict(api_name="/model_info")["batching"]
    before = batching()
    procs = [psutil.Process(app.proc.pid)]
    procs += procs[0].children(recursive=True)
    cpu = lambda ps: sum(sum(p.cpu_times()[:2]) for p in ps)
    if browser:
        clients, barrier = [BrowserClient(app.url) for _ in range(CLIENTS)], threading.Barrier(CLIENTS + 1)

        def work(client):
            barrier.wait()
            out = []
            for _ in range(per_client):
                t = time.perf_counter()
                text = ask(client, clip, max_new_tokens)[0]
                out.append((time.perf_counter() - t, text))
            return out

        me = psutil.Process()
        with cf.ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(work, c) for c in clients]
            barrier.wait()
            app0, me0, t0 = cpu(procs), cpu([me]), time.perf_counter()
            results = [r for f in futures for r in f.result()]
        wall, app1, clients_cpu = time.perf_counter() - t0, cpu(procs), cpu([me]) - me0
    else:
        ctx = mp.get_context("spawn")
        barrier, queue = ctx.Barrier(CLIENTS + 1), ctx.Queue()
        workers = [ctx.Process(target=_client_process, args=(app.url, str(clip), max_new_tokens, per_client, barrier, queue))
                   for _ in range(CLIENTS)]
        for w in workers: w.start()
        barrier.wait(timeout=300)
        app0, t0 = cpu(procs), time.perf_counter()
        done = [queue.get(timeout=900) for _ in workers]
        wall, app1 = time.perf_counter() - t0, cpu(procs)
        for w in workers: w.join(timeout=60)
        results, clients_cpu = [r for out, _ in done for r in out], sum(c for _, c in done)
    after = batching()
    mean_batch = (after["requests"] - before["requests"]) / max(1, after["batches"] - before["batches"])
    return wall, [r[0] for r in results], [r[1] for r in results], mean_batch, ((app1 - app0) / wall, clients_cpu / wall)


def main():
    skip_cold = "--skip-cold" in sys.argv[1:]
    d = Path(tempfile.mkdtemp(prefix="bench-app-"))
    # huggingface_hub reads its endpoint and cache folder at import: set them first (the direct Transcriber
    # in this process downloads from the same local hub as the app).
    port = free_port()
    os.environ["HF_ENDPOINT"], os.environ["HF_HOME"] = f"http://127.0.0.1:{port}", str(d / "home-direct")
    from gradio_client import handle_file
    from huggingface_hub import HfApi
    from voxtral_deploy.demo_app import render_demo_space, space_variables
    from voxtral_deploy.localhub import LocalHub
    from voxtral_deploy.testing import make_clip, make_tiny_voxtral, start_demo_app
    with LocalHub(d / "hub", port=port, tokens={ALICE: {"user": "alice", "role": "write"}}) as hub:
        assert hub.endpoint.rstrip("/") == os.environ["HF_ENDPOINT"], hub.endpoint
        model = make_tiny_voxtral(d / "tiny")
        clip = make_clip(d / "clip.wav", 2.0)
        ten = make_clip(d / "ten.wav", 10.0, kind="noise")
        api = HfApi(endpoint=hub.endpoint, token=ALICE)
        api.create_repo(REPO)
        sha = api.upload_folder(repo_id=REPO, folder_path=model).oid
        space = d / "space"
        render_demo_space(space, model_id=REPO, revision=sha)
        variables = space_variables(REPO, revision=sha, max_new_tokens=MAX_NEW_TOKENS)
        warm_vars = space_variables(REPO, revision=sha, max_new_tokens=STREAM_TOKENS, queue_size=2 * CLIENTS * PER_CLIENT)

        # ---- cold start: alternate the bare process and the app, each with an empty download cache ----
        app_cold, base_load, base_first = [], [], []
        for i in range(0 if skip_cold else COLD):
            l, f = baseline_cold(space, env_for(hub, variables, d / f"home-base-{i}"), sha, clip)
            base_load.append(l); base_first.append(f)
            with start_demo_app(space, env_for(hub, variables, d / f"home-app-{i}"), log=d / f"app-{i}.log", poll=0.02) as app:
                app.client().predict(handle_file(str(clip)), "auto", MAX_NEW_TOKENS, api_name="/transcribe")
                app_cold.append(time.perf_counter() - app.started)

        # ---- overhead: one warm app, one direct Transcriber in this process, same clip, paired requests ----
        from voxtral_deploy.inference import Transcriber
        direct = Transcriber.from_pretrained(REPO, revision=sha)
        app = start_demo_app(space, env_for(hub, warm_vars, d / "home-warm"), log=d / "app-warm.log")
        clients = {"gradio_client": app.client(), "browser protocol": BrowserClient(app.url)}
        via_direct = lambda: direct.transcribe(str(clip), max_new_tokens=MAX_NEW_TOKENS)
        for c in clients.values():
            for _ in range(3): ask(c, clip, MAX_NEW_TOKENS); via_direct()
            assert ask(c, clip, MAX_NEW_TOKENS)[0] == via_direct().text, "the app and the engine disagree on the same clip"
        t_app, t_direct = {name: [] for name in clients}, []
        for _ in range(N):  # rounds alternate: direct, then each client
            t = time.perf_counter(); via_direct(); t_direct.append(time.perf_counter() - t)
            for name, c in clients.items():
                t = time.perf_counter(); ask(c, clip, MAX_NEW_TOKENS); t_app[name].append(time.perf_counter() - t)

        # ---- streaming: first words vs whole transcription, 10 s clip, same warm app, both clients ----
        plain_ten = direct.transcribe(str(ten), max_new_tokens=STREAM_TOKENS)
        runs = {}
        for name, c in clients.items():
            streamed(c, ten, STREAM_TOKENS)
            runs[name] = [streamed(c, ten, STREAM_TOKENS) for _ in range(STREAM_RUNS)]
            assert all(r[2] == plain_ten.text for r in runs[name]), "the streamed result differs from the plain one"

        # ---- the ceiling of batching: the same 8 requests in one `generate` call against one by one, in this process,
        # no server: what the app's ratio is bounded by ----
        from voxtral_deploy.live import prepare_request, transcribe_together
        from features import interleaved  # bench/features.py: the two take turns in every round
        ceiling = {}
        for long, (c, n) in ((False, (clip, MAX_NEW_TOKENS)), (True, (ten, STREAM_TOKENS))):
            fresh = lambda: [prepare_request(str(c), max_new_tokens=n) for _ in range(CLIENTS)]
            alone = lambda: [transcribe_together(direct, [r]) for r in fresh()]
            together = lambda: transcribe_together(direct, fresh())
            alone(); together()  # warm-up
            ceiling[long] = interleaved(alone, together, 3)

        # ---- batching: 8 clients against the batching app (this one), the same app not regrouping, and one request
        # at a time. The three run side by side and take turns in every round (the order rotating), so that each
        # round's ratio compares measurements taken seconds apart on a shared machine.
        apps = {"batched": app}
        apps["nore"] = start_demo_app(space, env_for(hub, {**warm_vars, "BATCH_REGROUP_MS": "0"}, d / "home-nore"), log=d / "app-nore.log")
        apps["one"] = start_demo_app(space, env_for(hub, {**warm_vars, "MAX_BATCH_SIZE": "1"}, d / "home-one"), log=d / "app-one.log")
        try:
            for a in list(apps.values())[1:]:
                for _ in range(3): ask(a.client(), clip, MAX_NEW_TOKENS)
            workloads = [(browser, long) for browser in (False, True) for long in (False, True)]
            loads = {key: {name: [] for name in apps} for key in workloads}
            for r in range(ROUNDS):
                for key in workloads:
                    names = list(apps)[r % 3:] + list(apps)[:r % 3]
                    for name in names:
                        browser, long = key
                        args = (ten, STREAM_TOKENS, LONG_PER_CLIENT) if long else (clip,)
                        loads[key][name].append(load_test(apps[name], *args, browser=browser))
        finally:
            for a in apps.values(): a.stop()
        for key, by_app in loads.items():
            texts = [t for runs in by_app.values() for run in runs for t in run[2]]
            assert len(set(texts)) == 1, f"texts differ between the apps or requests on {key}: {set(texts)}"
            if key[1]: assert set(texts) == {plain_ten.text}, "a batched long result differs from the plain one"
    shutil.rmtree(d, ignore_errors=True)

    p50 = statistics.median
    p90 = lambda xs: sorted(xs)[int(0.9 * (len(xs) - 1))]
    show = lambda xs: f"min {min(xs):.2f} s, median {p50(xs):.2f} s {[round(x, 2) for x in xs]}"
    print(f"direct Transcriber.transcribe: p50 {p50(t_direct)*1e3:.1f} ms, p90 {p90(t_direct)*1e3:.1f} ms, min {min(t_direct)*1e3:.1f} ms (n={N})")
    for name, ts in t_app.items():
        overhead = p50(ts) - p50(t_direct)
        paired = p50([a - b for a, b in zip(ts, t_direct)])
        print(f"through {name}: p50 {p50(ts)*1e3:.1f} ms, p90 {p90(ts)*1e3:.1f} ms, min {min(ts)*1e3:.1f} ms; "
              f"overhead p50 {overhead*1e3:.1f} ms (paired p50 {paired*1e3:.1f} ms)  goal <= 90 ms: {'PASS' if overhead <= 0.09 else 'FAIL'}")
    for name, rs in runs.items():
        firsts, fulls = [r[0] for r in rs], [r[1] for r in rs]
        ratio = p50([f / t for f, t in zip(firsts, fulls)])
        print(f"streaming through {name}, 10 s clip, {plain_ten.num_tokens} tokens: first words p50 {p50(firsts)*1e3:.0f} ms, "
              f"whole text p50 {p50(fulls)*1e3:.0f} ms; first/whole p50 {ratio:.2f}x  goal <= 0.3x: {'PASS' if ratio <= 0.3 else 'FAIL'}")
    p95 = lambda xs: sorted(xs)[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    names = {"batched": "batched (up to 8 per generate)", "nore": "batched, not regrouping (BATCH_REGROUP_MS=0)",
             "one": "one at a time (MAX_BATCH_SIZE=1)"}
    for (browser, long), by_app in loads.items():
        per = LONG_PER_CLIENT if long else PER_CLIENT
        label = (f"10 s clip, {plain_ten.num_tokens} new tokens" if long else f"2 s clip, {MAX_NEW_TOKENS} new tokens") + \
                f", {CLIENTS} {'browser-protocol' if browser else 'gradio_client'} clients"
        n = CLIENTS * per
        for name, runs in by_app.items():
            wall = sum(r[0] for r in runs)
            lat = [x for r in runs for x in r[1]]
            app_cores = sum(r[4][0] * r[0] for r in runs) / wall
            bench_cores = sum(r[4][1] * r[0] for r in runs) / wall
            mean_batch = statistics.mean(r[3] for r in runs)
            print(f"{label}, {names[name]}: {n * len(runs) / wall:.2f} requests/s ({n} requests x {len(runs)} rounds in {wall:.1f} s; "
                  f"rounds {[round(n / r[0], 2) for r in runs]}), latency p50 {p50(lat)*1e3:.0f} ms, p95 {p95(lat)*1e3:.0f} ms, "
                  f"mean batch {mean_batch:.1f}; cores busy: app {app_cores:.2f}, clients {bench_cores:.2f}")
        ratio = lambda name: sum(r[0] for r in by_app["one"]) / sum(r[0] for r in by_app[name])
        rounds = lambda name: [round(o[0] / b[0], 2) for o, b in zip(by_app["one"], by_app[name])]
        speedup = ratio("batched")
        alone, together = ceiling[long]
        print(f"{label}: the ceiling, {CLIENTS} requests in one generate call against one by one in this process "
              f"(no server): {alone * 1e3:.0f} / {together * 1e3:.0f} ms = {alone / together:.2f}x")
        print(f"{label}: batching throughput ratio {speedup:.2f}x (rounds {rounds('batched')})  goal >= 2.5x: "
              f"{'PASS' if speedup >= 2.5 else 'FAIL'}   (not regrouping: {ratio('nore'):.2f}x, rounds {rounds('nore')})")
    if not skip_cold:
        print(f"bare process, import torch+transformers+gradio + load model: {show(base_load)}")
        print(f"bare process, ... + first transcription:                     {show(base_first)}")
        print(f"app cold start, spawn to first transcription via client:     {show(app_cold)}")
    for name, f in (() if skip_cold else (("min", min), ("median", p50))):
        ratio = f(app_cold) / f(base_load)
        print(f"cold start ratio ({name}s, app / bare load): {ratio:.2f}x  goal <= 1.3x: {'PASS' if ratio <= 1.3 else 'FAIL'}"
              f"   (app / bare load + first transcription: {f(app_cold)/f(base_first):.2f}x)")

if __name__ == "__main__":
    main()
