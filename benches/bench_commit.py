"""Commit time against image size: on overlay it should not grow with the image.

Makes images of ~50, ~200 and ~500 MB (busybox-static plus generated files,
imported from a generated tar) in a private store on a tmpfs, then for each
one runs a container that changes 1 MB (writes a new 1 MB file and appends to
/etc/passwd) and times ``moorage commit`` (the CLI, as a user runs it)
several times. Prints the median per image size. Everything it makes (mount,
processes, files) is removed at the end, even on error.

Run as root:
    python benches/bench_commit.py [--sizes 50,200,500] [--runs 5] [--driver overlay]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import BUSYBOX, make_busybox_tar


def make_image_tar(path: Path, mb: int) -> None:
    """busybox rootfs + ``mb`` MB of incompressible-ish data in 1 MB files under /data."""
    base = path.with_suffix(".base.tar")
    make_busybox_tar(base)
    block = os.urandom(1 << 20)
    with tarfile.open(base) as src, tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for m in src.getmembers():
            tar.addfile(m, src.extractfile(m) if m.isreg() else None)
        d = tarfile.TarInfo("data")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for i in range(mb):
            ti = tarfile.TarInfo(f"data/f{i:04d}")
            ti.size, ti.mode = len(block), 0o644
            import io

            tar.addfile(ti, io.BytesIO(block[i % 256:] + block[:i % 256]))
    base.unlink()


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50,200,500")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--driver", default="overlay")
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists(BUSYBOX):
        print("needs root and busybox-static", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-commit-"))
    runroot = Path(f"/run/bench-commit-{os.getpid()}")
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", str(work)], check=True)
        mounted = True
        m = [sys.executable, "-m", "moorage.cli", "--root", str(work / "root"), "--runroot", str(runroot),
             "-s", args.driver]
        results = []
        for mb in (int(s) for s in args.sizes.split(",")):
            tar = work / f"img{mb}.tar"
            make_image_tar(tar, mb)
            run([*m, "import", str(tar), f"img:{mb}"])
            tar.unlink()
            times = []
            for _ in range(args.runs):
                cid = run([*m, "create", f"img:{mb}", "sh", "-c",
                           "head -c 1000000 /data/f0001 > /new; head -c 48576 /bin/busybox >> /etc/passwd"]).strip()
                run([*m, "start", "-a", cid])
                t0 = time.perf_counter()
                iid = run([*m, "commit", cid]).strip()
                times.append(time.perf_counter() - t0)
                run([*m, "rm", cid])
                run([*m, "rmi", iid])
            results.append((mb, statistics.median(times), min(times)))
            run([*m, "rmi", f"img:{mb}"])
        print(f"driver={args.driver} store on tmpfs, 1 MB changed, {args.runs} runs each (CLI wall time)")
        print(f"{'image':>8} {'median':>9} {'min':>9}")
        for mb, med, lo in results:
            print(f"{mb:>6}MB {med * 1000:>7.0f}ms {lo * 1000:>7.0f}ms")
        return 0
    finally:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if str(runroot).encode() in (proc / "cmdline").read_bytes() and int(proc.name) != os.getpid():
                    os.kill(int(proc.name), 9)
            except OSError:
                pass
        with open("/proc/self/mountinfo") as f:
            subs = [ln.split()[4] for ln in f if ln.split()[4].startswith(str(work) + "/")]
        for mp in sorted(subs, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], check=False)
        if mounted:
            subprocess.run(["umount", "-l", str(work)], check=False)
        subprocess.run(["rm", "-rf", str(work), str(runroot)], check=False)


if __name__ == "__main__":
    sys.exit(main())
