"""Resharding costs about what copying the bytes costs, in flat memory.

A 1 GiB checkpoint (one model.safetensors of 64 BF16 tensors of 16 MiB, random bytes) is resharded into 4
shards + index (`shard.plan_shards` + `write_shards`) and, in the same run, the file is copied with
`shutil.copyfile`. Printed: the best of 5 of each (run alternately), the ratio reshard / copy (goal: under 1.5x), and the peak
memory the resharding added (goal: a few tens of MiB, not the 1 GiB of the model).
"""
import os, resource, shutil, tempfile, time
from pathlib import Path

from voxtral_deploy.artifacts import make_fake_voxtral_folder, write_safetensors_stub
from voxtral_deploy.shard import INDEX_NAME, plan_shards, write_shards

GIB, TENSOR = 2**30, 16 * 2**20

def make_model(d: Path) -> Path:
    make_fake_voxtral_folder(d)  # config and processor files
    n = GIB // TENSOR
    path = write_safetensors_stub(d / "model.safetensors", {f"layer.{i:02d}.weight": ("BF16", [TENSOR // 2]) for i in range(n)}, sparse=True)
    head = path.stat().st_size - GIB
    with open(path, "r+b") as f:  # real bytes, not a hole: both sides read 1 GiB from disk or page cache
        f.seek(head)
        for _ in range(n): f.write(os.urandom(TENSOR))
    return d

def timed(fn) -> float:
    t = time.perf_counter(); fn(); return time.perf_counter() - t

def interleaved(a, b, n=5) -> tuple[float, float]:
    "Best of `n` for each of `a` and `b`, run alternately so that load from other processes hits both alike."
    ta, tb = [], []
    for _ in range(n): ta.append(timed(a)); tb.append(timed(b))
    return min(ta), min(tb)

def main():
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        src = make_model(Path(tmp) / "model")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        plan = plan_shards(src, 2**28)
        assert len(plan.shards) == 4, plan
        write_shards(plan, src, Path(tmp) / "shards")
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reshard, copy = interleaved(lambda: write_shards(plan, src, Path(tmp) / "shards"),
                                    lambda: shutil.copyfile(src / "model.safetensors", Path(tmp) / "copy.safetensors"))
        assert (Path(tmp) / "shards" / INDEX_NAME).exists()
        print(f"copy 1 GiB (shutil.copyfile):      {copy:.3f} s ({GIB / copy / 2**20:.0f} MiB/s)")
        print(f"reshard 1 GiB into 4 shards+index: {reshard:.3f} s ({GIB / reshard / 2**20:.0f} MiB/s)")
        print(f"ratio reshard / copy: {reshard / copy:.2f}x  goal < 1.5x: {'PASS' if reshard / copy < 1.5 else 'FAIL'}")
        print(f"peak memory added by resharding: {(rss1 - rss0) / 1024:.1f} MiB (the model is 1024 MiB)")

if __name__ == "__main__":
    main()
