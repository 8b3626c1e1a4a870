"""Shared fixtures: a busybox-static image made locally, private engine roots,
and a CLI runner. Integration tests run real containers on this kernel and
must leave nothing behind: every fixture tears down what it made."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox", path="/bin:/usr/bin") or "/bin/busybox"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="integration tests need root"))
            elif not os.path.exists(BUSYBOX):
                item.add_marker(pytest.mark.skip(reason="busybox-static is not installed"))


def make_busybox_tar(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A root filesystem tarball: busybox-static plus its applet symlinks, /etc/passwd and /etc/group."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    files: dict[str, bytes] = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                      b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                      b"alice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
        "etc/group": b"root:x:0:\ndaemon:x:1:\nusers:x:100:alice\nalice:x:1000:\nnogroup:x:65534:\n",
        **(extra or {}),
    }
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, 1700000000
            tar.addfile(ti)

        for d in ("bin", "etc", "proc", "sys", "dev", "root", "home", "home/alice", "var", "run"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        ti = tar.gettarinfo(BUSYBOX, "bin/busybox")
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        with open(BUSYBOX, "rb") as f:
            tar.addfile(ti, f)
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, "busybox", 1700000000
            tar.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
            tar.addfile(ti, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_busybox_tar(tmp_path_factory.mktemp("image") / "busybox.tar")


def _mounts_under(prefix: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(prefix):
                out.append(mp)
    return out


@dataclass
class Roots:
    root: Path
    runroot: Path

    def args(self) -> list[str]:
        return ["--root", str(self.root), "--runroot", str(self.runroot)]


def _teardown_roots(roots: Roots) -> list[str]:
    """Remove every container of a private root; return what had leaked."""
    leaks: list[str] = []
    try:
        from moorage.engine import Engine

        eng = Engine(roots.root, roots.runroot)
        for rec in eng._mgr.list():
            try:
                eng._mgr.remove(rec.id, force=True)
            except Exception as e:  # keep tearing down; report at the end
                leaks.append(f"container {rec.name}: {e}")
        eng.ctx.db.close()
    except Exception as e:
        leaks.append(f"engine: {e}")
    for base in (roots.root, roots.runroot):
        for mp in sorted(_mounts_under(str(base) + "/"), key=len, reverse=True):
            leaks.append(f"mount {mp}")
            subprocess.run(["umount", "-l", mp], check=False)
    marks = (str(roots.root).encode(), str(roots.runroot).encode())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if int(proc.name) != os.getpid() and any(m in cmdline for m in marks):
            leaks.append(f"process {proc.name}: {cmdline[:80]!r}")
            try:
                os.kill(int(proc.name), 9)
            except OSError:
                pass
    shutil.rmtree(roots.root, ignore_errors=True)
    shutil.rmtree(roots.runroot, ignore_errors=True)
    return leaks


def _moorage_cgroups() -> set[Path]:
    """Container cgroups (directories under the shared ``/moorage`` parent, which stays, as ``/docker`` does)."""
    found = set(Path("/sys/fs/cgroup").glob("*/moorage/*")) | set(Path("/sys/fs/cgroup").glob("moorage/*"))
    return {p for p in found if p.is_dir()}


def _parent_cgroups() -> set[Path]:
    return {p for p in Path("/sys/fs/cgroup").glob("*/moorage") if p.is_dir()} | (
        {Path("/sys/fs/cgroup/moorage")} if Path("/sys/fs/cgroup/moorage").is_dir() else set()
    )


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[Roots]:
    before = _moorage_cgroups()
    parents_before = _parent_cgroups()
    r = Roots(tmp_path / "root", Path("/run") / f"moorage-test-{os.getpid()}-{time.monotonic_ns()}")
    yield r
    leaks = _teardown_roots(r)
    for cg in sorted(_moorage_cgroups() - before):
        leaks.append(f"cgroup {cg}")
        try:
            cg.rmdir()
        except OSError:
            pass
    for parent in _parent_cgroups() - parents_before:
        try:
            parent.rmdir()  # the shared /moorage parent this test made (empty once its containers are gone)
        except OSError as e:
            leaks.append(f"cgroup parent {parent}: {e}")
    assert not leaks, f"test left things behind: {leaks}"


@pytest.fixture
def engine(roots: Roots):  # type: ignore[no-untyped-def]
    from moorage.engine import Engine

    eng = Engine(roots.root, roots.runroot)
    yield eng
    eng.ctx.db.close()


@pytest.fixture
def image(engine, busybox_tar: Path) -> str:  # type: ignore[no-untyped-def]
    engine.images.import_(str(busybox_tar), "busybox", "latest")
    return "busybox"


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, roots: Roots) -> None:
        self.roots = roots

    def __call__(self, *args: str, input: str | bytes | None = None, timeout: float = 60) -> Result:
        data = input.encode() if isinstance(input, str) else input
        p = subprocess.run([sys.executable, "-m", "moorage.cli", *self.roots.args(), *args],
                           input=data, capture_output=True, timeout=timeout,
                           stdin=None if data is not None else subprocess.DEVNULL)
        return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def ok(self, *args: str, **kw: object) -> str:
        r = self(*args, **kw)  # type: ignore[arg-type]
        assert r.code == 0, f"moorage {' '.join(args)} exited {r.code}: {r.err}"
        return r.out


def run_in_pty(argv: list[str], stdin_devnull: bool = False, timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` with a fresh pty as its terminal; return (exit code, what it printed, CR removed)."""
    import pty

    master, slave = pty.openpty()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL if stdin_devnull else slave, stdout=slave, stderr=slave,
                           timeout=timeout)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the pty has no other users
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return p.returncode, out.decode(errors="replace").replace("\r", "")


@pytest.fixture
def cli(roots: Roots, busybox_tar: Path) -> Cli:
    c = Cli(roots)
    c.ok("import", str(busybox_tar), "busybox")
    return c
