"""pytest-benchmark: container start paths measured in-process and through the CLI."""

from __future__ import annotations

import subprocess
import sys

import _fixtures as fx


def test_api_run_true(benchmark, bench_engine) -> None:
    eng, _ = bench_engine
    benchmark(lambda: eng.containers.run("bbench", ["/bin/true"], remove=True, network_mode="none"))


def test_cli_run_true(benchmark, bench_engine) -> None:
    eng, _ = bench_engine
    argv = [sys.executable, "-m", "moorage.cli", "--root", str(eng.ctx.root), "--runroot", str(eng.ctx.runroot),
            "run", "--rm", "--network", "none", "bbench", "/bin/true"]
    benchmark(lambda: subprocess.run(argv, check=True))


def test_runtime_bundle_run(benchmark, bench_engine) -> None:
    _, work = bench_engine
    rt = fx.runtime_binary(work / "rt")
    b = fx.bundle(work, ["/bin/true"])
    n = [0]

    def go() -> None:
        n[0] += 1
        subprocess.run([rt, "--root", str(work / "rt-state"), "run", "--bundle", str(b), f"b{n[0]}"], check=True)

    benchmark(go)
