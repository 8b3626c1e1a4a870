"""Layer extraction speed: GNU tar against moorage._core.apply_layer.

Builds a layer of ~20k small files (~300 MB, text-like so gzip ratio is
realistic) on a tmpfs, then extracts it with ``tar -xf`` / ``tar -xzf`` and with
``apply_layer`` (plain and gzip), alternating the two tools run by run so
neither gets a warmer cache, onto the same tmpfs. Prints the median of each,
MB/s of uncompressed data, and the ratio (tar time / apply time: > 1 means
moorage is faster). Everything it makes is removed at the end, even on error.

Run as root (so both tools chown, as they would for a real layer):
    python benches/bench_layer.py [--files 20000] [--mb 300] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from moorage import _core


def make_tree(root: Path, files: int, total_mb: int, seed: int = 7) -> int:
    """~``files`` files in ~``files/20`` directories, sizes skewed small like a
    distro layer (most under 16 KiB, a few large ones carry the bulk)."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    corpus = " ".join(rng.choice(words) for _ in range(1_200_000)).encode()
    small = int(files * 0.95)
    large = files - small
    small_sizes = [min(int(rng.expovariate(1 / 6000)) + 64, 64 * 1024) for _ in range(small)]
    left = max(total_mb * 1024 * 1024 - sum(small_sizes), large)
    large_sizes = [left // large] * large
    dirs = [root / f"usr/share/d{i // 50:03d}/s{i:04d}" for i in range(max(files // 20, 1))]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    total = 0
    for i, size in enumerate(small_sizes + large_sizes):
        data = bytearray()
        while len(data) < size:
            off = rng.randrange(0, len(corpus) - 4096)
            data += corpus[off : off + min(size - len(data), rng.randint(512, 1 << 20))]
        (dirs[i % len(dirs)] / f"f{i:05d}.txt").write_bytes(data)
        total += size
    return total


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base", default="/dev/shm", help="a tmpfs to work in")
    args = ap.parse_args()
    if not shutil.which("tar"):
        print("GNU tar not found", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="moorage-bench-layer-", dir=args.base))
    try:
        src = work / "src"
        src.mkdir()
        payload = make_tree(src, args.files, args.mb)
        plain = work / "layer.tar"
        subprocess.run(["tar", "-cf", str(plain), "-C", str(src), "."], check=True)
        shutil.rmtree(src)
        gz = work / "layer.tar.gz"
        with open(gz, "wb") as out:
            subprocess.run(["gzip", "-c", "-6", str(plain)], stdout=out, check=True)
        size = plain.stat().st_size
        print(
            f"layer: {args.files} files, {payload / 1e6:.0f} MB payload, tar {size / 1e6:.0f} MB, "
            f"gzip {gz.stat().st_size / 1e6:.0f} MB; on {args.base}; {args.runs} runs each, alternating"
        )

        n = 0

        def fresh() -> Path:
            nonlocal n
            n += 1
            d = work / f"x{n}"
            d.mkdir()
            return d

        def run_tar(blob: Path, flag: str) -> float:
            d = fresh()
            try:
                return timed(
                    lambda: subprocess.run(["tar", flag, str(blob), "-C", str(d)], check=True)
                )
            finally:
                shutil.rmtree(d)

        def run_apply(blob: Path) -> float:
            d = fresh()
            try:
                return timed(lambda: _core.apply_layer(str(blob), str(d), "overlay"))
            finally:
                shutil.rmtree(d)

        for label, blob, flag in (("plain", plain, "-xf"), ("gzip", gz, "-xzf")):
            tar_t, apply_t = [], []
            # One untimed run each to settle page cache and allocator.
            run_tar(blob, flag)
            run_apply(blob)
            for _ in range(args.runs):
                tar_t.append(run_tar(blob, flag))
                apply_t.append(run_apply(blob))
            mt, ma = statistics.median(tar_t), statistics.median(apply_t)
            print(
                f"{label:5}  tar {flag:5} {mt:6.3f}s {size / mt / 1e6:7.0f} MB/s   "
                f"apply_layer {ma:6.3f}s {size / ma / 1e6:7.0f} MB/s   ratio {mt / ma:4.2f}x   "
                f"(tar runs {', '.join(f'{t:.3f}' for t in tar_t)}; apply {', '.join(f'{t:.3f}' for t in apply_t)})"
            )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
