"""Shared by the benchmarks: a busybox rootfs/tarball and OCI bundles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from conftest import make_busybox_tar


def busybox_tar(workdir: Path) -> Path:
    return make_busybox_tar(workdir / "busybox.tar")


def busybox_rootfs(workdir: Path) -> Path:
    rootfs = workdir / "rootfs"
    if not rootfs.exists():
        rootfs.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(rootfs), "-xf", str(busybox_tar(workdir))], check=True)
    return rootfs


def bundle(workdir: Path, args: list[str], name: str = "bundle") -> Path:
    """An OCI bundle like `runc spec` makes (no terminal), running ``args``."""
    b = workdir / name
    b.mkdir(exist_ok=True)
    rootfs = busybox_rootfs(workdir)
    if (b / "config.json").exists():
        (b / "config.json").unlink()
    spec = subprocess.run(["runc", "spec"], cwd=b, capture_output=True)
    if spec.returncode != 0:
        raise RuntimeError("runc spec failed: " + spec.stderr.decode())
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    cfg["linux"].pop("resources", None)  # no device cgroup rules: same work for every runtime
    # runc and crun create a cgroup even without one named; make moorage do the same work.
    cfg["linux"]["cgroupsPath"] = f"/moorage-bench/{name}"
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def runtime_binary(runroot: Path) -> str:
    from moorage import _core

    return str(_core.runtime_binary(str(runroot / "bin")))


def which(name: str) -> str | None:
    return shutil.which(name)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def private_kib(pid: int) -> int:
    """Memory only this process holds (Private_Clean + Private_Dirty): what
    one more container costs, with the pages shared with its siblings left out."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1])
    return total


def is_root() -> bool:
    return os.geteuid() == 0
