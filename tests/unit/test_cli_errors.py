"""Engine errors before any container exists: one line, Docker's exit codes."""

import subprocess
import sys


def moorage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moorage.cli", *args], capture_output=True, text=True, timeout=60)


def test_unusable_root_is_one_line_with_docker_exit_codes() -> None:
    r = moorage("--root", "/proc/nope/root", "ps")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "/proc/nope" in r.stderr
    r = moorage("--root", "/proc/nope/root", "run", "busybox", "true")
    assert r.returncode == 125 and r.stderr.startswith("Error:")


def test_unknown_flag_and_command() -> None:
    r = moorage("ps", "--bogus")
    assert r.returncode == 125
    assert r.stderr.splitlines() == ["Error: No such option '--bogus'.", "See 'moorage ps --help'."]
    r = moorage("frobnicate")
    assert r.returncode == 125
    assert r.stderr.splitlines() == ["Error: No such command 'frobnicate'.", "See 'moorage --help'."]
    r = moorage("run", "--pids-limit", "x", "busybox", "true")
    assert r.returncode == 125
    assert r.stderr.splitlines()[0] == "Error: Invalid value for '--pids-limit': 'x' is not a valid integer."
