#!/usr/bin/env python3
"""Side-by-side: the same workloads under moorage and the peers installed
here (podman, docker, runc, crun), in one run, alternating A B A B …, with
medians and ratios. Peers that are not installed are reported as absent.

    python benches/compare_peers.py [--rounds N] [--only start,runtime,rss,parallel]

Workloads (issue 2's goals):
  start     `run --rm --network none busybox /bin/true`    goal ≤ 0.25× podman
  runtime   bundle create+start+wait+delete (runtime alone) goal ≤ 1.0× crun
  rss       RSS of the monitor of an idle detached container (conmon, shim)  goal ≤ 1 MiB
  parallel  20 containers started concurrently with `run -d`   goal ≤ 0.2× podman
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _fixtures as fx

PY = sys.executable


def pids_where(pred: Callable[[Path], bool]) -> list[int]:
    """Pids whose /proc entry satisfies ``pred`` (processes that vanish meanwhile are skipped)."""
    out = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if pred(p):
                out.append(int(p.name))
        except OSError:
            pass
    return out


class Moorage:
    name = "moorage"

    def __init__(self, work: Path) -> None:
        self.root, self.run_ = work / "m-root", Path(tempfile.mkdtemp(prefix="moorage-bench-", dir="/run"))
        self.base = [PY, "-m", "moorage.cli", "--root", str(self.root), "--runroot", str(self.run_)]
        # The console script beside this interpreter: on PATH there may be a
        # version manager's shim instead (pyenv's costs ~0.1 s of bash per call).
        exe = Path(sys.executable).parent / "moorage"
        if exe.exists():
            self.base = [str(exe), "--root", str(self.root), "--runroot", str(self.run_)]
        subprocess.run([*self.base, "import", str(fx.busybox_tar(work)), "bbench"], check=True, capture_output=True)

    def run_true(self) -> None:
        subprocess.run([*self.base, "run", "--rm", "--network", "none", "bbench", "/bin/true"], check=True)

    def run_d(self, name: str) -> None:
        subprocess.run([*self.base, "run", "-d", "--name", name, "--network", "none", "bbench", "sleep", "600"],
                       check=True, capture_output=True)

    def rm(self, names: list[str]) -> None:
        subprocess.run([*self.base, "rm", "-f", *names], capture_output=True)

    def monitor_pids(self) -> list[int]:
        mark = str(self.run_).encode()
        return pids_where(lambda p: (lambda cmd: len(cmd) > 1 and cmd[1] == b"monitor" and mark in b" ".join(cmd))(
            (p / "cmdline").read_bytes().split(b"\0")))

    def close(self) -> None:
        ids = subprocess.run([*self.base, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*self.base, "rm", "-f", *ids], capture_output=True)
        shutil.rmtree(self.run_, ignore_errors=True)


class MoorageAPI:
    """The same engine driven in-process (``moorage.Engine``), no CLI process per container."""

    name = "moorage-api"

    def __init__(self, cli: Moorage) -> None:
        from moorage import Engine

        self.engine = Engine(cli.root, cli.run_)

    def run_true(self) -> None:
        self.engine.containers.run("bbench", ["/bin/true"], remove=True, network_mode="none")

    def run_d(self, name: str) -> None:
        self.engine.containers.run("bbench", ["sleep", "600"], detach=True, name=f"api-{name}", network_mode="none")

    def rm(self, names: list[str]) -> None:
        for n in names:
            self.engine.containers.get(f"api-{n}").remove(force=True)

    def monitor_pids(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


class Podman:
    name = "podman"

    def __init__(self, work: Path) -> None:
        d = work / "podman"
        self.base = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc",
                     "--storage-driver", "overlay", "--root", str(d / "root"), "--runroot", str(d / "runroot"),
                     "--tmpdir", str(d / "tmp")]
        self.ulimits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
        subprocess.run([*self.base, "import", str(fx.busybox_tar(work)), "bbench"], check=True, capture_output=True)

    def run_true(self) -> None:
        subprocess.run([*self.base, "run", "--rm", "--network", "none", *self.ulimits, "bbench", "/bin/true"],
                       check=True, capture_output=True)

    def run_d(self, name: str) -> None:
        subprocess.run([*self.base, "run", "-d", "--name", name, "--network", "none", *self.ulimits, "bbench",
                        "sleep", "600"], check=True, capture_output=True)

    def rm(self, names: list[str]) -> None:
        subprocess.run([*self.base, "rm", "-f", "-t", "0", *names], capture_output=True)

    def monitor_pids(self) -> list[int]:
        return pids_where(lambda p: (p / "comm").read_text().strip() == "conmon")

    def close(self) -> None:
        subprocess.run([*self.base, "rm", "-a", "-f", "-t", "0"], capture_output=True)
        subprocess.run([*self.base, "system", "reset", "-f"], capture_output=True)


class Docker:
    """A private dockerd (own data-root, exec-root and socket; no bridge, no
    iptables: the --network none workloads need neither, and nothing is left
    in the host's network config). Stopped by its pid at the end."""

    name = "docker"
    client = "/usr/bin/docker"  # an unrelated newer static client may come first on PATH

    def __init__(self, work: Path) -> None:
        d = Path(tempfile.mkdtemp(prefix="moorage-dockerd-", dir="/run"))
        self.dir = d
        self.sock = d / "docker.sock"
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(work / "docker-data"), "--exec-root", str(d / "exec"),
             "--pidfile", str(d / "dockerd.pid"), "-H", f"unix://{self.sock}", "--bridge", "none",
             "--iptables=false", "--ip-masq=false"],
            stdout=subprocess.DEVNULL, stderr=open(d / "dockerd.log", "wb"))
        self.base = [self.client, "-H", f"unix://{self.sock}"]
        deadline = time.monotonic() + 60
        while subprocess.run([*self.base, "info"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("dockerd did not start: " + (d / "dockerd.log").read_text()[-500:])
            time.sleep(0.2)
        self.data = work / "docker-data"
        subprocess.run([*self.base, "import", str(fx.busybox_tar(work)), "bbench"], check=True, capture_output=True)

    def run_true(self) -> None:
        subprocess.run([*self.base, "run", "--rm", "--network", "none", "bbench", "/bin/true"], check=True,
                       capture_output=True)

    def run_d(self, name: str) -> None:
        subprocess.run([*self.base, "run", "-d", "--name", name, "--network", "none", "bbench", "sleep", "600"],
                       check=True, capture_output=True)

    def rm(self, names: list[str]) -> None:
        subprocess.run([*self.base, "rm", "-f", *names], capture_output=True)

    def monitor_pids(self) -> list[int]:
        return pids_where(lambda p: (p / "comm").read_text().strip().startswith("containerd-shim"))

    def close(self) -> None:
        ids = subprocess.run([*self.base, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*self.base, "rm", "-f", *ids], capture_output=True)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for base in (self.dir, getattr(self, "data", None)):
            if base is not None:
                subprocess.run(["umount", "-R", "-l", str(base)], capture_output=True)
                shutil.rmtree(base, ignore_errors=True)


def median_time(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def alternate(fns: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_time(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, medians: dict[str, float], unit: str = "s", goal: str = "") -> None:
    print(f"\n## {title}" + (f"   (goal: {goal})" if goal else ""))
    for k, v in medians.items():
        print(f"  {k:12s} {v:10.4f} {unit}")
    ours = [k for k in medians if k.startswith("moorage")]
    peers = [k for k in medians if not k.startswith("moorage")]
    ratios = [f"{o}/{p} = {medians[o] / medians[p]:.3f}×" for o in ours for p in peers if medians[p]]
    if ratios:
        print("  ratios: " + ", ".join(ratios))


def bench_start(engines: list, rounds: int) -> None:
    med = alternate({e.name: e.run_true for e in engines}, rounds)
    report("run --rm --network none busybox /bin/true (median wall time)", med, goal="≤ 0.25× podman")
    # Where the CLI's time goes: the interpreter with its site-packages
    # (.pth files run at every start), without them (-S), and with the CLI's
    # modules imported but no command run.
    floor = alternate({
        "python -c pass": lambda: subprocess.run([PY, "-c", "pass"], check=True),
        "python -S -c pass": lambda: subprocess.run([PY, "-S", "-c", "pass"], check=True),
        "import cli": lambda: subprocess.run([PY, "-c", _IMPORT_CLI], check=True),
    }, rounds)
    print("  for scale, the CLI's floor (it pays these per call):")
    print(f"    interpreter start and exit            {floor['python -c pass']:.4f} s"
          f"  ({floor['python -S -c pass']:.4f} s of it without site-packages' .pth files)")
    print(f"    same, plus importing the CLI's modules {floor['import cli']:.4f} s")


_IMPORT_CLI = "import moorage.cli; from moorage.cli import archive, changes, container, image, maintenance, system"


def bench_runtime(work: Path, rounds: int) -> None:
    rt = fx.runtime_binary(work / "rt")
    b = fx.bundle(work, ["/bin/true"])
    n = [0]

    def runner(binary: list[str], root: Path) -> Callable[[], None]:
        def go() -> None:
            n[0] += 1
            subprocess.run([*binary, "--root", str(root), "run", "--bundle", str(b), f"bench-{n[0]}"],
                           check=True, stdout=subprocess.DEVNULL)
        return go

    fns = {"moorage": runner([rt], work / "rt-state")}
    if fx.which("runc"):
        fns["runc"] = runner(["runc"], work / "runc-state")
    if fx.which("crun"):
        # crun refuses this VM's hybrid cgroup layout unless the cgroup2 controllers file is hidden.
        Path(work / "empty").touch()
        hide = f"mount --bind {work}/empty /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; "
        state = work / "crun-state"

        def crun() -> None:
            n[0] += 1
            subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            hide + f"exec crun --root {state} run --bundle {b} bench-{n[0]}"],
                           check=True, stdout=subprocess.DEVNULL)
        fns["crun"] = crun
    med = alternate(fns, rounds)
    report("OCI runtime alone: bundle create+start+wait+delete of /bin/true", med, goal="≤ 1.0× crun")


def bench_rss(engines: list) -> None:
    print("\n## RSS of the monitor of an idle detached container, two running   (goal: ≤ 1 MiB)")
    for e in engines:
        if e.name == "moorage-api":
            continue
        # Two idle containers: with a sibling, the pages the two monitors
        # share drop out of "private", which is then what one more costs.
        e.run_d("rss-probe-1")
        e.run_d("rss-probe-2")
        time.sleep(0.5)
        pids = e.monitor_pids()
        mem = [(fx.rss_kib(p), fx.private_kib(p)) for p in pids]
        e.rm(["rss-probe-1", "rss-probe-2"])
        label = {"moorage": "monitor", "podman": "conmon", "docker": "containerd-shim"}[e.name]
        shown = ", ".join(f"RSS {r / 1024:.2f} MiB (private {q / 1024:.2f} MiB)" for r, q in mem)
        print(f"  {e.name:10s} {label}: {shown or 'not found'}")


def bench_parallel(engines: list, n: int = 20) -> None:
    res = {}
    for e in engines:
        names = [f"par-{i}" for i in range(n)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(e.run_d, names))
        res[e.name] = time.perf_counter() - t0
        e.rm(names)
    report(f"{n} containers started concurrently with run -d (wall time)", res, goal="≤ 0.2× podman")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--only", default="start,runtime,rss,parallel")
    args = ap.parse_args()
    if not fx.is_root():
        sys.exit("compare_peers.py needs root")
    only = set(args.only.split(","))
    parents_before = set(Path("/sys/fs/cgroup").glob("*/*"))
    work = Path(tempfile.mkdtemp(prefix="moorage-peers-"))
    engines: list = []
    try:
        engines.append(Moorage(work))
        engines.append(MoorageAPI(engines[0]))
        if fx.which("podman"):
            engines.append(Podman(work))
        else:
            print("podman: not installed (apt-get install podman) — skipped")
        if fx.which("dockerd") and Path(Docker.client).exists():
            engines.append(Docker(work))
        else:
            print("docker: dockerd not installed (apt-get install docker.io) — skipped")
        print(f"# moorage vs peers on {os.uname().release}, {os.cpu_count()} CPUs, {args.rounds} alternating rounds")
        if "start" in only:
            bench_start(engines, args.rounds)
        if "runtime" in only:
            bench_runtime(work, args.rounds * 3)
        if "rss" in only:
            bench_rss(engines)
        if "parallel" in only:
            bench_parallel(engines)
    finally:
        for e in engines:
            e.close()
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        # parents the engines made (moorage, moorage-bench, docker, libpod_parent), now empty
        for parent in set(Path("/sys/fs/cgroup").glob("*/*")) - parents_before:
            if parent.is_dir():
                for child in sorted(parent.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if child.is_dir():
                        try:
                            child.rmdir()
                        except OSError:
                            pass
                try:
                    parent.rmdir()
                except OSError:
                    pass


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
