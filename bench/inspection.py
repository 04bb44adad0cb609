"""Inspecting a model folder costs the same whatever the weights weigh.

A 5 GiB checkpoint (sparse files with valid safetensors headers, 4 shards + index) is inspected beside a
5 MiB one in the same run; goal: the 5 GiB folder inspects in under 0.2 s, and the ratio stays near 1.
"""
import statistics, tempfile, time
from pathlib import Path

from voxtral_deploy.artifacts import inspect_model
from voxtral_deploy.testing import make_fake_voxtral_folder

def best_of(fn, n=20):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)

def main():
    with tempfile.TemporaryDirectory() as d:
        small = make_fake_voxtral_folder(Path(d) / "small", sparse_bytes=5 * 2**20, shards=4)
        big = make_fake_voxtral_folder(Path(d) / "big", sparse_bytes=5 * 2**30, shards=4)
        a_small, a_big = inspect_model(small), inspect_model(big)
        assert a_big.weights_size > 5 * 2**30 - 2**20, a_big.weights_size
        s_min, s_med = best_of(lambda: inspect_model(small))
        b_min, b_med = best_of(lambda: inspect_model(big))
        print(f"5 MiB folder: median {s_med*1e3:.2f} ms (min {s_min*1e3:.2f})")
        print(f"5 GiB folder: median {b_med*1e3:.2f} ms (min {b_min*1e3:.2f})  goal < 200 ms: {'PASS' if b_med < 0.2 else 'FAIL'}")
        print(f"ratio 5 GiB / 5 MiB (medians): {b_med/s_med:.2f}x")

if __name__ == "__main__":
    main()
