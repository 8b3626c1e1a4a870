#!/usr/bin/env python3
"""`save | load` of a ~300 MB image: moorage against podman, side by side.

    python benches/bench_save_load.py [--rounds 3] [--small-mb 90] [--large-mb 200]

The image (busybox, a layer of many small files, a layer of a few large
ones) is made here as an OCI archive and loaded into a private moorage root
and a private podman store. Each round times, alternating moorage and podman,
``save IMAGE | load`` into a second, empty store (made fresh every round), and
the script prints the median seconds of each and the ratio (goal: moorage ≤
0.5× podman)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _fixtures as fx

PY = sys.executable
MT = 1700000000


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, MT
    tar.addfile(ti, io.BytesIO(data))


def _dir(tar: tarfile.TarFile, name: str) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MT
    tar.addfile(ti)


def _sha_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_image(work: Path, small_mb: int, large_mb: int) -> Path:
    """An OCI archive: busybox + many small files (1–8 KiB) + four large files."""
    seed = os.urandom(1 << 20)
    layers = [fx.busybox_tar(work)]
    small = work / "small.tar"
    with tarfile.open(small, "w") as t:
        _dir(t, "small")
        total, i = 0, 0
        while total < small_mb << 20:
            n = 1024 + (i * 7919) % 7168
            if i % 1000 == 0:
                _dir(t, f"small/d{i // 1000:03d}")
            _add(t, f"small/d{i // 1000:03d}/f{i:06d}", seed[i % 4096: i % 4096 + n])
            total, i = total + n, i + 1
    layers.append(small)
    large = work / "large.tar"
    with tarfile.open(large, "w") as t:
        _dir(t, "large")
        for k in range(4):
            data = b"".join(hashlib.sha256(seed + bytes([k, j % 256, j // 256])).digest() * 32768
                            for j in range(large_mb // 4))
            _add(t, f"large/f{k}", data)
    layers.append(large)
    descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha_file(p), "size": p.stat().st_size}
             for p in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
    cdig = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig,
                                      "size": len(config)}, "layers": descs}).encode()
    mdig = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                 "digest": mdig, "size": len(manifest),
                                                 "annotations": {"org.opencontainers.image.ref.name":
                                                                 "localhost/big:latest"}}]}
    out = work / "big.oci.tar"
    with tarfile.open(out, "w") as t:
        _add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(t, "index.json", json.dumps(index).encode())
        _add(t, f"blobs/sha256/{cdig[7:]}", config)
        _add(t, f"blobs/sha256/{mdig[7:]}", manifest)
        for p, d in zip(layers, descs, strict=True):
            t.add(p, f"blobs/sha256/{d['digest'][7:]}")
    for p in (small, large):
        p.unlink()
    return out


class Moorage:
    name = "moorage"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.src = self._roots("src")

    def _roots(self, tag: str) -> list[str]:
        root = self.work / f"m-{tag}"
        run = Path(tempfile.mkdtemp(prefix=f"moorage-bench-{tag}-", dir="/run"))
        return [PY, "-m", "moorage.cli", "--root", str(root), "--runroot", str(run)]

    def load_source(self, archive: Path) -> None:
        p = subprocess.run([*self.src, "load", "-q", "-i", str(archive)], capture_output=True)
        if p.returncode:
            raise RuntimeError(f"{self.name} load failed: {p.stderr.decode()}")

    def round(self) -> float:
        dst = self._roots("dst")
        t = time.perf_counter()
        a = subprocess.Popen([*self.src, "save", "localhost/big:latest"], stdout=subprocess.PIPE)
        b = subprocess.run([*dst, "load", "-q"], stdin=a.stdout, capture_output=True)
        assert a.stdout is not None
        a.stdout.close()
        rc = a.wait()
        took = time.perf_counter() - t
        if rc or b.returncode:
            raise RuntimeError(f"moorage save|load failed: {b.stderr.decode()}")
        self._drop(dst)
        os.sync()  # the next round starts with no writeback pending from this one
        return took

    @staticmethod
    def _drop(args: list[str]) -> None:
        shutil.rmtree(args[4], ignore_errors=True)
        shutil.rmtree(args[6], ignore_errors=True)

    def close(self) -> None:
        self._drop(self.src)


class Podman:
    name = "podman"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.src = self._store("src")

    def _store(self, tag: str) -> list[str]:
        base = self.work / f"p-{tag}"
        (base / "tmp").mkdir(parents=True, exist_ok=True)
        run = tempfile.mkdtemp(prefix="pb-", dir="/run")  # podman wants a runroot under 50 characters
        return ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc",
                "--storage-driver", "overlay", "--root", str(base / "root"), "--runroot", run,
                "--tmpdir", str(base / "tmp")]

    def load_source(self, archive: Path) -> None:
        p = subprocess.run([*self.src, "load", "-q", "-i", str(archive)], capture_output=True)
        if p.returncode:
            raise RuntimeError(f"{self.name} load failed: {p.stderr.decode()}")

    def round(self) -> float:
        dst = self._store("dst")
        t = time.perf_counter()
        a = subprocess.Popen([*self.src, "save", "localhost/big:latest"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        b = subprocess.run([*dst, "load", "-q"], stdin=a.stdout, capture_output=True)
        assert a.stdout is not None
        a.stdout.close()
        rc = a.wait()
        took = time.perf_counter() - t
        if rc or b.returncode:
            raise RuntimeError(f"podman save|load failed: {b.stderr.decode()}")
        self._drop(dst)
        os.sync()
        return took

    def _drop(self, args: list[str]) -> None:
        subprocess.run([*args, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(Path(args[args.index("--root") + 1]).parent, ignore_errors=True)
        shutil.rmtree(args[args.index("--runroot") + 1], ignore_errors=True)

    def close(self) -> None:
        self._drop(self.src)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small-mb", type=int, default=90)
    ap.add_argument("--large-mb", type=int, default=200)
    ap.add_argument("--dir", default=None, help="where the stores live (e.g. /dev/shm to leave the disk out)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    work = Path(tempfile.mkdtemp(prefix="moorage-bench-saveload-", dir=args.dir))
    engines: list[Moorage | Podman] = []
    try:
        archive = make_image(work, args.small_mb, args.large_mb)
        print(f"image: {archive.stat().st_size / 1e6:.0f} MB archive, 3 layers; stores under {work}", flush=True)
        engines.append(Moorage(work))
        if shutil.which("podman"):
            engines.append(Podman(work))
        else:
            print("podman: absent")
        for e in engines:
            e.load_source(archive)
        os.sync()
        times: dict[str, list[float]] = {e.name: [] for e in engines}
        for r in range(args.rounds):
            for e in engines:
                times[e.name].append(e.round())
                print(f"round {r + 1} {e.name}: {times[e.name][-1]:.2f}s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print("\nsave | load, median of", args.rounds)
        for k, v in med.items():
            print(f"  {k:8s} {v:6.2f}s")
        if "podman" in med:
            print(f"  ratio moorage/podman = {med['moorage'] / med['podman']:.2f}  (goal ≤ 0.5)")
    finally:
        for e in engines:
            e.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
