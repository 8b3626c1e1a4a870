"""nox sessions for moorage. Integration tests need root and a Linux kernel."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "rust", "lint"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Build the package and run the unit tests (no root needed)."""
    session.install(".", "pytest")
    session.run("pytest", "-q", "tests/unit", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Run real containers on this kernel (root; busybox-static installed)."""
    session.install(".", "pytest")
    session.run("pytest", "-q", "tests/integration", *session.posargs)


@nox.session(venv_backend="none")
def rust(session: nox.Session) -> None:
    """cargo fmt --check, clippy and cargo test for the Rust crates."""
    session.run("cargo", "fmt", "--all", "--check", external=True)
    session.run("cargo", "clippy", "--workspace", "--exclude", "moorage-python", "--", "-D", "warnings", external=True)
    session.run("cargo", "test", "--workspace", "--exclude", "moorage-python", external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy, and stubtest of the hand-written moorage._core stubs."""
    session.install(".", "ruff", "mypy")
    session.run("ruff", "check", "python", "tests", "plugins")
    session.run("mypy", "python/moorage")
    session.run("python", "-m", "mypy.stubtest", "moorage._core")


@nox.session
def plugins(session: nox.Session) -> None:
    """Install the example plugin distributions and run their tests."""
    session.install(".", "pytest")
    session.install("./plugins/moorage-hardened")
    session.run("pytest", "-q", "plugins/moorage-hardened/tests")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: pytest-benchmark suites, then the side-by-side peer comparison."""
    session.install(".", "pytest", "pytest-benchmark")
    session.run("pytest", "benches", "--benchmark-only", *session.posargs)
    session.run("python", "benches/compare_peers.py")


@nox.session
def build(session: nox.Session) -> None:
    """Build the wheel (with the embedded static runtime) into dist/."""
    session.install("maturin>=1.5,<2")
    session.run("maturin", "build", "--release", "-o", "dist")
