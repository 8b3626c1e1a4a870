"""Contract tests: the plugin registers through the entry point and changes the config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moorage.plugin.manager import Plugins, build_plugin_manager
from moorage.spec.options import CreateOptions


def test_registered_through_entry_point() -> None:
    plugins = Plugins(build_plugin_manager())
    assert "hardened" in plugins.security


def test_blocked_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_DISABLE_PLUGINS", "hardened")
    assert "hardened" not in Plugins(build_plugin_manager()).security


def test_profile_drops_caps_and_sets_nnp() -> None:
    plugins = Plugins(build_plugin_manager())
    config: dict = {"process": {}, "linux": {}}
    plugins.security.get("hardened")().apply(config, CreateOptions(image="x"))
    caps = config["process"]["capabilities"]["bounding"]
    assert "CAP_CHOWN" in caps and "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps
    assert config["process"]["noNewPrivileges"] is True
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"), reason="needs root and busybox-static")
def test_in_a_real_container(tmp_path) -> None:
    root, run = tmp_path / "root", tmp_path / "run"
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (rootfs / d).mkdir()
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for a in ("sh", "grep", "cat"):
        (rootfs / "bin" / a).symlink_to("busybox")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tmp_path / "r.tar"), "."], check=True)
    base = [sys.executable, "-m", "moorage.cli", "--root", str(root), "--runroot", str(run)]
    parents = {p for p in Path("/sys/fs/cgroup").glob("*/moorage")}
    try:
        subprocess.run([*base, "import", str(tmp_path / "r.tar"), "bb"], check=True, capture_output=True)
        out = subprocess.run([*base, "run", "--rm", "--security-opt", "profile=hardened", "bb", "grep",
                              "-E", "CapEff|NoNewPrivs", "/proc/self/status"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        fields = dict(line.split(":\t") for line in out.stdout.splitlines())
        assert int(fields["NoNewPrivs"]) == 1
        eff = int(fields["CapEff"], 16)
        assert eff & (1 << 13) == 0 and eff & (1 << 27) == 0 and eff & 1 == 1  # NET_RAW, MKNOD gone; CHOWN kept
    finally:
        ids = subprocess.run([*base, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*base, "rm", "-f", *ids], capture_output=True)
        for parent in set(Path("/sys/fs/cgroup").glob("*/moorage")) - parents:
            parent.rmdir()  # the shared parent cgroup this test made; empty once the container is gone
