"""Local hub benchmark: 1 GiB upload + download through the real client vs `sha256sum`, and small API call latency.

    python bench/localhub.py [--size-mib 1024] [--calls 300]

Prints the figures and the ratios measured in this one run (goals: transfer <= 4x sha256sum, small calls p50 <= 5 ms),
and what two attacks of issue 12 cost the hub now: the 4 KB YAML alias bomb on validate-yaml (10.6 s of CPU before the
caps) and a 10,000-object LFS batch (the PIN oracle: now answered the same for every hash).
"""
import argparse, hashlib, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx  # noqa: E402
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url  # noqa: E402

from voxtral_deploy.localhub import LocalHub  # noqa: E402

TOKEN = "hf_FakeBenchWriteToken0000000000000001"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--calls", type=int, default=300)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        d = Path(d)
        src = d / "big.bin"
        block = os.urandom(16 << 20)
        with open(src, "wb") as f:
            for _ in range(a.size_mib // 16): f.write(block)
        size = src.stat().st_size
        subprocess.run(["sha256sum", str(src)], check=True, capture_output=True)  # warm the page cache like the client will see it
        t = time.perf_counter(); subprocess.run(["sha256sum", str(src)], check=True, capture_output=True); t_sum = time.perf_counter() - t

        with LocalHub(d / "hub", tokens={TOKEN: {"user": "bench", "role": "write"}}) as hub:
            api = HfApi(endpoint=hub.endpoint, token=TOKEN)
            api.create_repo("bench/big")
            t = time.perf_counter()
            api.upload_file(path_or_fileobj=str(src), path_in_repo="big.bin", repo_id="bench/big")
            t_up = time.perf_counter() - t
            t = time.perf_counter()
            p = hf_hub_download("bench/big", "big.bin", endpoint=hub.endpoint, token=TOKEN, cache_dir=d / "cache")
            t_down = time.perf_counter() - t
            assert Path(p).stat().st_size == size

            api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="bench/big")
            url = hf_hub_url("bench/big", "config.json", endpoint=hub.endpoint)
            lat = {"model_info": [], "HEAD resolve": [], "whoami": []}
            for _ in range(a.calls):
                t = time.perf_counter(); api.model_info("bench/big"); lat["model_info"].append(time.perf_counter() - t)
                t = time.perf_counter(); get_hf_file_metadata(url, token=TOKEN); lat["HEAD resolve"].append(time.perf_counter() - t)
                t = time.perf_counter(); api.whoami(); lat["whoami"].append(time.perf_counter() - t)

            bomb = "a0: &a0 [" + ", ".join(["lol"] * 9) + "]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
            bomb = "---\n" + bomb + "".join(f"k{i}: &k{i} [{', '.join(['*a8'] * 9)}]\n" for i in range(65)) + "---\n"
            t = time.perf_counter()
            r = httpx.post(hub.endpoint + "/api/validate-yaml", json={"content": bomb, "repoType": "model"}, timeout=60)
            t_bomb = time.perf_counter() - t
            guesses = [{"oid": hashlib.sha256(f"PIN={i:04d}\n".encode()).hexdigest(), "size": 9} for i in range(10_000)]
            t = time.perf_counter()
            rb = httpx.post(hub.endpoint + "/bench/big.git/info/lfs/objects/batch", headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"operation": "upload", "transfers": ["basic"], "objects": guesses}, timeout=60)
            t_batch = time.perf_counter() - t

    gib = size / 2**30
    ratio = (t_up + t_down) / t_sum
    print(f"file: {gib:.2f} GiB")
    print(f"sha256sum:          {t_sum:6.2f} s")
    print(f"upload (client):    {t_up:6.2f} s  ({gib / t_up * 1024:.0f} MiB/s)")
    print(f"download (client):  {t_down:6.2f} s  ({gib / t_down * 1024:.0f} MiB/s)")
    print(f"upload+download / sha256sum = {ratio:.2f}x  (goal <= 4x) {'OK' if ratio <= 4 else 'MISSED'}")
    print(f"validate-yaml, {len(bomb)} B alias bomb: HTTP {r.status_code} in {t_bomb * 1000:.0f} ms (was 10.6 s of CPU before the caps)")
    print(f"LFS batch of 10,000 guessed oids: HTTP {rb.status_code} in {t_batch:.2f} s, "
          f"{sum('actions' in o for o in rb.json()['objects'])} of 10000 asked for upload (no existence oracle)")
    for k, v in lat.items():
        p50 = statistics.median(v) * 1000; p95 = sorted(v)[int(len(v) * 0.95)] * 1000
        print(f"{k:13s} p50 {p50:5.2f} ms  p95 {p95:5.2f} ms  (goal p50 <= 5 ms) {'OK' if p50 <= 5 else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
