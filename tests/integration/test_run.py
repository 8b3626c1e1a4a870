"""`moorage run` end to end on the real kernel: what the container sees, exit codes, errors."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CAPS = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}
CAP_NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7,
    "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27,
    "AUDIT_WRITE": 29, "SETFCAP": 31, "SYS_ADMIN": 21,
}


def caps_mask(names: set[str]) -> int:
    return sum(1 << CAP_NUMBERS[n] for n in names)


def test_command_is_pid_1_and_output_is_attached(cli) -> None:
    r = cli("run", "--rm", "busybox", "sh", "-c", "echo pid=$$; echo oops >&2")
    assert r.code == 0, r.err
    assert r.out == "pid=1\n"
    assert "oops" in r.err


def test_exit_codes_pass_through(cli) -> None:
    assert cli("run", "--rm", "busybox", "true").code == 0
    assert cli("run", "--rm", "busybox", "false").code == 1
    assert cli("run", "--rm", "busybox", "sh", "-c", "exit 42").code == 42


def test_command_not_found_is_127_and_leaves_nothing(cli, roots) -> None:
    r = cli("run", "--rm", "busybox", "/no/such/thing")
    assert r.code == 127, (r.out, r.err)
    assert "no/such/thing" in r.err and len(r.err.strip().splitlines()) <= 2
    assert cli.ok("ps", "-aq") == ""


def test_command_not_executable_is_126(cli) -> None:
    r = cli("run", "--rm", "busybox", "/etc/passwd")
    assert r.code == 126, (r.out, r.err)
    r = cli("run", "--rm", "busybox", "/tmp")
    assert r.code == 126, (r.out, r.err)


def test_engine_errors_are_125(cli) -> None:
    r = cli("run", "--rm", "no-such-image", "true")
    assert r.code == 125 and "no-such-image" in r.err
    r = cli("run", "--rm", "--memory", "lots", "busybox", "true")
    assert r.code == 125 and "memory" in r.err
    r = cli("run", "--rm", "--restart", "sometimes", "busybox", "true")
    assert r.code == 125 and "restart" in r.err
    r = cli("run", "--bogus-flag", "busybox", "true")
    assert r.code == 125


def test_name_conflict(cli) -> None:
    cli.ok("create", "--name", "twin", "busybox", "true")
    r = cli("create", "--name", "twin", "busybox", "true")
    assert r.code == 125 and "already in use" in r.err
    assert len(cli.ok("ps", "-aq").split()) == 1


def test_hostname_env_workdir_user(cli, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n")
    out = cli.ok(
        "run", "--rm", "-h", "boat", "-e", "A=1", "--env-file", str(env_file), "-w", "/tmp", "-u", "alice",
        "busybox", "sh", "-c", "hostname; echo $A $FROM_FILE; pwd; id -u; id -g; id -G",
    )
    assert out.split("\n")[:6] == ["boat", "1 yes", "/tmp", "1000", "1000", "1000 100"]


def test_default_hostname_is_short_id(cli) -> None:
    cid = cli.ok("create", "busybox", "hostname").strip()
    cli.ok("start", cid)
    assert cli.ok("wait", cid).strip() == "0"
    assert cli.ok("logs", cid).strip() == cid[:12]


def test_isolation_masks_readonly_caps_seccomp(cli) -> None:
    out = cli.ok(
        "run", "--rm", "busybox", "sh", "-c",
        "wc -c < /proc/keys; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status;"
        " echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sysrw || echo sysro;"
        " touch /sys/x 2>/dev/null && echo sys-rw || echo sys-ro; ls /dev | sort | tr '\\n' ' '",
    )
    lines = out.splitlines()
    assert lines[0].strip() == "0"  # masked: /dev/null bound over it
    status = dict(line.split(":\t") for line in lines[1:5])
    assert int(status["CapEff"], 16) == caps_mask(DEFAULT_CAPS)
    assert int(status["CapBnd"], 16) == caps_mask(DEFAULT_CAPS)
    assert status["Seccomp"].strip() == "2"
    assert lines[5] == "sysro" and lines[6] == "sys-ro"
    devs = set(lines[7].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx"} <= devs


def test_seccomp_blocks_and_unconfined_allows(cli) -> None:
    # mount(2) is denied by the default profile even with CAP_SYS_ADMIN added.
    r = cli("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "mount", "-t", "tmpfs", "t", "/mnt")
    assert r.code != 0
    out = cli.ok("run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "busybox",
                 "sh", "-c", "mkdir -p /m && mount -t tmpfs t /m && echo mounted; grep Seccomp: /proc/self/status")
    assert "mounted" in out and "Seccomp:\t0" in out


def test_cap_drop_and_privileged(cli) -> None:
    out = cli.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "KILL", "busybox", "grep", "CapEff", "/proc/self/status")
    assert int(out.split()[1], 16) == caps_mask({"KILL"})
    out = cli.ok("run", "--rm", "--privileged", "busybox", "grep", "CapEff", "/proc/self/status")
    # every capability the engine itself holds (this VM has no CAP_SYS_RESOURCE to give)
    host_bnd = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd"))
    assert int(out.split()[1], 16) == int(host_bnd.split()[1], 16)


def test_memory_and_pids_limits_land_in_the_cgroup(cli) -> None:
    cid = cli.ok("run", "-d", "--memory", "64m", "--pids-limit", "50", "--cpu-shares", "512", "--cpus", "0.5",
                 "--cpuset-cpus", "0", "busybox", "sleep", "60").strip()
    try:
        # inside the container: its own cgroup view (cgroup namespace)
        out = cli.ok("exec", cid, "cat", "/proc/self/cgroup")
        assert out.strip()
        host = {}
        for ctrl, fname in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max"), ("cpu", "cpu.shares")):
            p = Path(f"/sys/fs/cgroup/{ctrl}/moorage/{cid}/{fname}")
            if not p.exists():
                p = Path(f"/sys/fs/cgroup/moorage/{cid}/{ {'memory': 'memory.max', 'pids': 'pids.max', 'cpu': 'cpu.weight'}[ctrl]}")
            host[ctrl] = p.read_text().strip()
        assert host["memory"] == str(64 << 20)
        assert host["pids"] == "50"
        assert host["cpu"] in ("512", "20")  # v1 shares, or v2 weight from 512 shares
        v1 = Path(f"/sys/fs/cgroup/cpu/moorage/{cid}")
        if v1.exists():
            quota = (v1 / "cpu.cfs_quota_us").read_text().strip() + " " + (v1 / "cpu.cfs_period_us").read_text().strip()
            cpuset = Path(f"/sys/fs/cgroup/cpuset/moorage/{cid}/cpuset.cpus").read_text().strip()
        else:
            quota = Path(f"/sys/fs/cgroup/moorage/{cid}/cpu.max").read_text().strip()
            cpuset = Path(f"/sys/fs/cgroup/moorage/{cid}/cpuset.cpus").read_text().strip()
        assert quota == "50000 100000"
        assert cpuset == "0"
        # and the container sees the cpuset as its affinity
        assert cli.ok("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status").split() == ["Cpus_allowed_list:", "0"]
    finally:
        cli.ok("rm", "-f", cid)
    assert not list(Path("/sys/fs/cgroup").glob(f"*/moorage/{cid}"))


def test_read_only_rootfs(cli) -> None:
    r = cli("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert r.code == 1 and "Read-only" in r.err
    assert cli.ok("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /tmp/x 2>/dev/null || echo ro") == "ro\n"


def test_entrypoint_and_labels(cli) -> None:
    out = cli.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b")
    assert out == "a b\n"
    cid = cli.ok("create", "-l", "tier=web", "--label", "x", "busybox", "true").strip()
    assert cli.ok("inspect", "-f", "{{.Config.Labels.tier}}", cid).strip() == "web"
    assert cli.ok("ps", "-aq", "-f", "label=tier=web").strip() == cid[:12]
    assert cli.ok("ps", "-aq", "-f", "label=tier=db").strip() == ""


def test_init_reaps_zombies(cli) -> None:
    # An orphan whose parent exits becomes a child of PID 1; with --init, PID 1 reaps it.
    out = cli.ok("run", "--rm", "--init", "busybox", "sh", "-c",
                 "cat /proc/1/cmdline | tr '\\0' ' '; echo; (sleep 0.1 &) ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true")
    assert out.splitlines()[0].startswith("/dev/init")
    assert out.splitlines()[-1].strip() == "0"


def test_cidfile(cli, tmp_path: Path) -> None:
    f = tmp_path / "cid"
    cid = cli.ok("create", "--cidfile", str(f), "busybox", "true").strip()
    assert f.read_text() == cid
    r = cli("create", "--cidfile", str(f), "busybox", "true")
    assert r.code == 125 and "Container ID file found" in r.err
    assert f.read_text() == cid  # the other container's file is left alone
    # A file that cannot be made fails before any container exists; a create
    # that fails takes its new cidfile away again.
    r = cli("run", "--rm", "--cidfile", str(tmp_path / "no" / "dir"), "busybox", "true")
    assert r.code == 125
    assert r.err.strip() == f"Error: failed to create the container ID file: open {tmp_path}/no/dir: no such file or directory"
    r = cli("run", "--rm", "--cidfile", str(tmp_path / "cid2"), "no-such-image", "true")
    assert r.code == 125 and not (tmp_path / "cid2").exists()
    assert cli.ok("ps", "-aq", "--no-trunc").split() == [cid]


def test_same_bundle_under_runc(cli, roots) -> None:
    import shutil

    import pytest

    if not shutil.which("runc"):
        pytest.skip("runc is not installed")
    script = "hostname; id; grep -E '^Cap(Eff|Bnd)' /proc/self/status; ls /dev | sort | tr '\\n' ' '; cat /proc/kcore | wc -c"
    ours = cli.ok("run", "--rm", "-h", "same", "busybox", "sh", "-c", script)
    theirs = cli.ok("run", "--rm", "-h", "same", "--runtime", "runc", "busybox", "sh", "-c", script)
    assert ours == theirs


def test_tty_gives_the_container_a_terminal(cli, roots) -> None:
    import sys

    from conftest import run_in_pty

    code, out = run_in_pty([sys.executable, "-m", "moorage.cli", *roots.args(), "run", "--rm", "-t", "busybox",
                            "sh", "-c", "tty; stty size; echo $TERM"])
    assert code == 0, out
    lines = out.split("\n")
    assert lines[0].startswith("/dev/pts/")
    assert lines[2] == "xterm"


def test_failed_start_keeps_runtime_errors_out_of_the_container_log(cli) -> None:
    cid = cli.ok("create", "busybox", "/no/such/thing").strip()
    r = cli("start", cid)
    assert r.code == 1 and "no/such/thing" in r.err
    assert cli("logs", cid).out == "" and cli("logs", cid).err == ""
    st = cli.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid).split()
    assert st == ["created", "127"]
    cli.ok("rm", cid)
