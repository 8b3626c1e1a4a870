"""Detached containers: the monitor, logs, stop/kill/restart, pause, exec, rm, and truthful state."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def state(cli, cid: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(cli.ok("inspect", "-f", "{{json .State}}", cid))


def test_detached_logs_and_wait(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sh", "-c", "echo one; echo two >&2; echo three").strip()
    assert len(cid) == 64
    assert cli.ok("wait", cid).strip() == "0"
    r = cli("logs", cid)
    assert r.out == "one\nthree\n" and r.err == "two\n"
    assert cli.ok("logs", "--tail", "0", cid) == ""
    ts = cli.ok("logs", "-t", cid).splitlines()[0]
    assert ts.endswith(" one") and ts[:4].isdigit() and "T" in ts
    st = state(cli, cid)
    assert st["Status"] == "exited" and st["ExitCode"] == 0 and st["Pid"] == 0
    cli.ok("rm", cid)
    cid = cli.ok("run", "-d", "busybox", "sh", "-c", "echo a; echo b; echo c").strip()
    cli.ok("wait", cid)
    assert cli.ok("logs", "--tail", "2", cid) == "b\nc\n"
    assert cli.ok("logs", "-f", cid) == "a\nb\nc\n"  # follow ends when the container has exited
    cli.ok("rm", cid)


def test_logs_follow_streams_until_exit(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done").strip()
    assert cli.ok("logs", "-f", cid) == "1\n2\n3\n"
    cli.ok("rm", cid)


def test_monitor_keeps_running_after_cli_exits(cli) -> None:
    # --init: a PID 1 without handlers ignores TERM (as under Docker); the init forwards it.
    cid = cli.ok("run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "300").strip()
    st = state(cli, cid)
    assert st["Running"] and st["Pid"] > 0
    assert os.path.exists(f"/proc/{st['Pid']}")
    ps = cli.ok("ps")
    assert "sleeper" in ps and "Up " in ps and ps.startswith("CONTAINER ID")
    assert cli.ok("ps", "-q") == cid[:12] + "\n"
    assert cli.ok("ps", "-q", "--no-trunc") == cid + "\n"
    assert cli.ok("ps", "--format", "{{.Names}} {{.State}}") == "sleeper running\n"
    t0 = time.monotonic()
    cli.ok("stop", "-t", "5", "sleeper")  # the init forwards TERM: sleep dies at once
    assert time.monotonic() - t0 < 5
    st = state(cli, cid)
    assert st["Status"] == "exited" and st["ExitCode"] == 143
    cli.ok("rm", "sleeper")


def test_stop_escalates_to_kill(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done").strip()
    time.sleep(0.2)
    cli.ok("stop", "-t", "1", cid)
    assert state(cli, cid)["ExitCode"] == 137
    cli.ok("rm", cid)


def test_pid_1_ignores_unhandled_term_so_stop_kills(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sleep", "300").strip()
    cli.ok("stop", "-t", "1", cid)
    assert state(cli, cid)["ExitCode"] == 137
    cli.ok("rm", cid)


def test_kill_signal_and_restart(cli) -> None:
    cid = cli.ok("run", "-d", "--init", "busybox", "sleep", "300").strip()
    cli.ok("kill", "-s", "USR1", cid)
    assert cli.ok("wait", cid).strip() == str(128 + signal.SIGUSR1)
    cli.ok("restart", cid)
    assert state(cli, cid)["Running"]
    cli.ok("kill", cid)
    assert cli.ok("wait", cid).strip() == "137"
    cli.ok("rm", cid)


def test_restart_on_failure_three_times(cli) -> None:
    cid = cli.ok("run", "-d", "--restart", "on-failure:3", "busybox", "sh", "-c", "echo run; exit 3").strip()
    wait_for(lambda: state(cli, cid)["Status"] == "exited" and json.loads(
        cli.ok("inspect", "-f", "{{json .RestartCount}}", cid)) == 3, timeout=30, what="three restarts")
    assert cli.ok("logs", cid) == "run\n" * 4
    assert state(cli, cid)["ExitCode"] == 3
    cli.ok("rm", cid)


def test_restart_always_survives_kill_of_process_but_not_stop(cli) -> None:
    cid = cli.ok("run", "-d", "--restart", "always", "busybox", "sleep", "300").strip()
    pid = state(cli, cid)["Pid"]
    os.kill(pid, signal.SIGKILL)  # the container's process dies on its own: restart
    wait_for(lambda: state(cli, cid)["Running"] and state(cli, cid)["Pid"] not in (0, pid), what="restart")
    cli.ok("stop", "-t", "1", cid)  # a user stop: no restart
    time.sleep(0.5)
    assert state(cli, cid)["Status"] == "exited"
    cli.ok("rm", cid)


def test_restart_unless_stopped_restarts_a_crash_but_not_a_stop(cli) -> None:
    cid = cli.ok("run", "-d", "--restart", "unless-stopped", "busybox", "sh", "-c", "sleep 0.2; exit 5").strip()
    wait_for(lambda: json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", cid)) >= 2, timeout=30,
             what="two restarts")
    assert json.loads(cli.ok("inspect", "-f", "{{json .HostConfig.RestartPolicy}}", cid))["Name"] == "unless-stopped"
    cli.ok("stop", "-t", "1", cid)
    count = json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", cid))
    time.sleep(1.0)  # longer than the sleep+back-off of a restart that should not happen
    st = state(cli, cid)
    assert st["Status"] == "exited" and not st["Running"]
    assert json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", cid)) == count
    cli.ok("rm", cid)


def test_oom_kill_is_recorded(cli) -> None:
    # busybox tail buffers a newline-free stream without bound: the memory
    # cgroup's OOM killer ends it, and the monitor reads the cgroup's counter.
    r = cli("run", "--name", "oomer", "-m", "8m", "busybox", "tail", "/dev/zero")
    assert r.code == 137, r.err
    st = state(cli, "oomer")
    assert st["OOMKilled"] is True and st["ExitCode"] == 137 and st["Status"] == "exited"
    cli.ok("rm", "oomer")
    # an ordinary SIGKILL is not reported as an OOM kill
    cid = cli.ok("run", "-d", "-m", "64m", "busybox", "sleep", "300").strip()
    cli.ok("kill", cid)
    wait_for(lambda: state(cli, cid)["Status"] == "exited", what="exit")
    st = state(cli, cid)
    assert st["ExitCode"] == 137 and st["OOMKilled"] is False
    cli.ok("rm", cid)


def test_kill_9_of_monitor_keeps_state_truthful(cli, roots) -> None:
    cid = cli.ok("run", "-d", "busybox", "sleep", "300").strip()
    st = state(cli, cid)
    mon = int((roots.runroot / "containers" / cid / "monitor.pid").read_text())
    os.kill(mon, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{mon}") or
             Path(f"/proc/{mon}/stat").read_text().split(")")[1].split()[0] == "Z", what="monitor death")
    st2 = state(cli, cid)
    assert st2["Running"] and st2["Pid"] == st["Pid"]  # the container itself still runs
    os.kill(st["Pid"], signal.SIGKILL)
    wait_for(lambda: state(cli, cid)["Status"] == "exited", what="exited state")
    st3 = state(cli, cid)
    assert not st3["Running"] and st3["Error"]
    cli.ok("rm", cid)


def test_pause_unpause(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sleep", "300").strip()
    cli.ok("pause", cid)
    st = state(cli, cid)
    assert st["Status"] == "paused" and st["Paused"]
    stat = Path(f"/proc/{st['Pid']}/stat").read_text().split(")")[1].split()[0]
    assert stat in ("D", "S", "T")
    assert cli("rm", cid).code == 1
    r = cli("pause", cid)
    assert r.code == 1 and r.err.strip() == f"Error: Container {cid} is already paused"
    cli.ok("unpause", cid)
    assert state(cli, cid)["Status"] == "running"
    r = cli("unpause", cid)
    assert r.code == 1 and r.err.strip() == f"Error: Container {cid} is not paused"
    cli.ok("rm", "-f", cid)


def test_exec(cli) -> None:
    cid = cli.ok("run", "-d", "-e", "FOO=bar", "busybox", "sleep", "300").strip()
    out = cli.ok("exec", cid, "sh", "-c", "echo $FOO $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    lines = out.splitlines()
    assert lines[0].startswith("bar ") and lines[0] != "bar 1"
    assert lines[1] == cid[:12]
    assert lines[2].strip() == "sleep 300"
    assert cli.ok("exec", "-e", "FOO=baz", "-w", "/tmp", "-u", "1000", cid, "sh", "-c", "echo $FOO; pwd; id -u") == "baz\n/tmp\n1000\n"
    assert cli("exec", cid, "sh", "-c", "exit 7").code == 7
    assert cli("exec", cid, "/nope").code == 127
    # a failure of the exec itself (not of the command) is reported, exit 126 as Docker
    r = cli("exec", "-w", "/nonexistent", cid, "true")
    assert r.code == 126 and r.err.startswith("Error: OCI runtime exec failed: chdir") and "No such file" in r.err
    r = cli("exec", "-w", "relative", cid, "true")
    assert r.code == 1 and "needs to be an absolute path" in r.err
    r = cli("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 1")  # the command's own failure: its output, its code
    assert (r.code, r.out, r.err) == (1, "out\n", "err\n")
    assert cli.ok("exec", "-i", cid, "cat", input="piped\n") == "piped\n"
    cli.ok("exec", "-d", cid, "sh", "-c", "echo bg > /tmp/bg")
    wait_for(lambda: cli("exec", cid, "cat", "/tmp/bg").out == "bg\n", what="detached exec")
    cli.ok("rm", "-f", cid)


def test_top_and_rename(cli) -> None:
    cid = cli.ok("run", "-d", "--name", "first", "busybox", "sleep", "300").strip()
    top = cli.ok("top", "first").splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and "sleep 300" in top[1]
    pid = str(state(cli, cid)["Pid"])
    # ps options after the name: the host's ps, rows of this container only
    assert cli.ok("top", "first", "-o", "pid,comm").split() == ["PID", "COMMAND", pid, "sleep"]
    r = cli("top", "first", "-o", "comm")
    assert r.code == 1 and r.err.strip() == "Error: Couldn't find PID field in ps output"
    other = cli.ok("create", "--name", "taken", "busybox", "true").strip()
    r = cli("rename", "first", "taken")
    assert r.code == 1 and r.err.startswith(f'Error: Conflict. The container name "/taken" is already in use by container "{other}".')
    cli.ok("rm", other)
    cli.ok("rename", "first", "second")
    assert cli.ok("inspect", "-f", "{{.Name}}", cid).strip() == "/second"
    assert cli("inspect", "first").code == 1
    cli.ok("rm", "-f", "second")


def test_rm_force_leaves_nothing(cli, roots) -> None:
    cid = cli.ok("run", "-d", "--memory", "32m", "busybox", "sleep", "300").strip()
    st = state(cli, cid)
    cli.ok("rm", "-f", cid)
    assert not os.path.exists(f"/proc/{st['Pid']}")
    assert not any(cid in line for line in Path("/proc/self/mountinfo").read_text().splitlines())
    assert not list(Path("/sys/fs/cgroup").glob(f"*/moorage/{cid}"))
    assert not (roots.root / "containers" / cid).exists()
    assert not (roots.runroot / "containers" / cid).exists()
    assert cli("inspect", cid).code == 1


def test_not_found_errors_exit_1(cli) -> None:
    for verb in (["start"], ["stop"], ["rm"], ["logs"], ["inspect"], ["kill"], ["wait"], ["pause"]):
        r = cli(*verb, "nosuch")
        assert r.code == 1, (verb, r.err)
        assert "nosuch" in r.err and len(r.err.strip().splitlines()) == 1


def test_rm_running_refused(cli) -> None:
    cid = cli.ok("run", "-d", "busybox", "sleep", "300").strip()
    r = cli("rm", cid)
    assert r.code == 1 and "running" in r.err
    cli.ok("rm", "-f", cid)


def test_network_none_and_host(cli) -> None:
    out = cli.ok("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert out.split() == ["lo"]
    host_ifaces = sorted(os.listdir("/sys/class/net"))
    out = cli.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
    assert sorted(out.split()) == host_ifaces


def test_run_interactive_pipes_stdin(cli) -> None:
    assert cli.ok("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n") == "HELLO\n"
    # without -i the container's stdin is empty
    assert cli.ok("run", "--rm", "busybox", "sh", "-c", "cat; echo done", input="ignored\n") == "done\n"


def test_detached_rm_removes_itself(cli) -> None:
    cid = cli.ok("run", "-d", "--rm", "busybox", "sh", "-c", "exit 0").strip()
    wait_for(lambda: cli("inspect", cid).code == 1, timeout=20, what="auto-removal")
    assert cli.ok("ps", "-aq") == ""


def test_start_attach_and_states(cli) -> None:
    cid = cli.ok("create", "--name", "later", "busybox", "sh", "-c", "echo started; exit 5").strip()
    assert state(cli, cid)["Status"] == "created"
    assert cli.ok("ps", "-a", "--format", "{{.Status}}").strip() == "Created"
    r = cli("start", "-a", "later")
    assert r.code == 5 and r.out == "started\n"
    assert cli.ok("ps", "-a", "-f", "status=exited", "--format", "{{.Names}}").strip() == "later"
    assert cli.ok("ps", "-a", "-f", "exited=5", "-q").strip() == cid[:12]
    cli.ok("rm", "later")


def test_parallel_runs_are_safe(cli) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: cli("run", "-d", "--name", f"par{i}", "busybox", "sleep", "300"), range(8)))
    assert [r.code for r in results] == [0] * 8, [r.err for r in results]
    ids = {r.out.strip() for r in results}
    assert len(ids) == 8
    names = set(cli.ok("ps", "--format", "{{.Names}}").split())
    assert names == {f"par{i}" for i in range(8)}
    with ThreadPoolExecutor(8) as pool:
        assert all(r.code == 0 for r in pool.map(lambda c: cli("rm", "-f", c), ids))
    assert cli.ok("ps", "-aq") == ""


def test_exec_tty_gets_a_pty_inside_the_container(cli, roots) -> None:
    import sys

    from conftest import run_in_pty

    cid = cli.ok("run", "-d", "busybox", "sleep", "300").strip()
    code, out = run_in_pty([sys.executable, "-m", "moorage.cli", *roots.args(), "exec", "-t", cid, "sh", "-c",
                            "tty; exit 3"], stdin_devnull=True)
    assert code == 3, out
    assert out.splitlines()[0].startswith("/dev/pts/")
    cli.ok("rm", "-f", cid)


def test_logs_since_and_ps_filters_and_templates(cli) -> None:
    a = cli.ok("run", "-d", "--name", "alpha", "-l", "team=x", "busybox", "sh", "-c", "echo early; sleep 1.5; echo late").strip()
    b = cli.ok("create", "--name", "beta", "busybox", "true").strip()
    cli.ok("wait", a)
    from moorage.runtime.timefmt import parse_rfc3339

    early_ts = parse_rfc3339(cli.ok("logs", "-t", a).split()[0])
    assert cli.ok("logs", "--since", f"{early_ts + 1.0:.3f}", a) == "late\n"  # between the two lines
    assert cli.ok("logs", "--since", "1h", a) == "early\nlate\n"
    assert cli.ok("logs", "--since", "2000-01-01T00:00:00Z", a) == "early\nlate\n"
    assert cli.ok("ps", "-aq", "-f", f"id={b[:6]}").split() == [b[:12]]
    assert cli.ok("ps", "-aq", "-f", "name=alp").split() == [a[:12]]
    assert cli.ok("ps", "-aq", "-f", "status=created").split() == [b[:12]]
    assert cli("ps", "-f", "status=bogus").code == 1
    out = cli.ok("inspect", "-f", "{{.Name}} {{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}} {{json .State.ExitCode}}", a)
    assert out.strip() == "/alpha team=x 0"
    rows = cli.ok("ps", "-a", "--format", "table {{.Names}}\\t{{.Status}}").splitlines()
    assert rows[0].split() == ["NAMES", "STATUS"] and {r.split()[0] for r in rows[1:]} == {"alpha", "beta"}
    cli.ok("rm", a, b)


def test_interactive_tty_needs_a_terminal(cli) -> None:
    # Docker's check: -i with -t and a stdin that is not a terminal
    r = cli("run", "--rm", "-it", "busybox", "true")
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")
    assert cli.ok("ps", "-aq") == ""  # nothing was created
    assert cli("run", "--rm", "-t", "busybox", "true").code == 0  # -t alone is fine
    cid = cli.ok("create", "-it", "busybox", "sh").strip()
    r = cli("start", "-ai", cid)
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")
    cli.ok("start", cid)
    r = cli("exec", "-it", cid, "true")
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")
    cli.ok("rm", "-f", cid)


def test_container_prune(cli, roots) -> None:
    keep = cli.ok("create", "--name", "keep", "-l", "keep=1", "busybox", "true").strip()
    cli.ok("run", "--name", "gone", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /big")
    gone = cli.ok("inspect", "-f", "{{.Id}}", "gone").strip()
    running = cli.ok("run", "-d", "--name", "running", "busybox", "sleep", "300").strip()
    r = cli("container", "prune", input="n\n")
    assert r.code == 0 and "Are you sure you want to continue? [y/N]" in r.out and "Deleted" not in r.out
    r = cli("container", "prune", "--filter", "bogus=1", "-f")
    assert (r.code, r.err) == (1, "Error: invalid filter 'bogus'\n")
    assert cli.ok("container", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"  # all are newer
    out = cli.ok("container", "prune", "-f", "--filter", "label!=keep")
    assert out == f"Deleted Containers:\n{gone}\n\nTotal reclaimed space: 100kB\n"
    assert sorted(cli.ok("ps", "-aq", "--no-trunc").split()) == sorted([keep, running])
    assert not (roots.root / "storage" / "overlay" / "containers" / gone).exists()
    cli.ok("container", "prune", "-f")
    assert cli.ok("ps", "-aq", "--no-trunc").split() == [running]  # a running container is never pruned
    cli.ok("rm", "-f", running)


def test_stats(cli) -> None:
    busy = cli.ok("run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c", "while :; do :; done").strip()
    cli.ok("run", "-d", "--name", "idle", "--pids-limit", "10", "busybox", "sh", "-c", "sleep 300 & sleep 300")
    cli.ok("create", "--name", "stopped", "busybox", "true")
    fmt = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.PIDs}}|{{.ID}}"
    rows = {r.split("|")[0]: r.split("|") for r in cli.ok("stats", "--no-stream", "--format", fmt).splitlines()}
    assert set(rows) == {"busy", "idle"}  # running ones only, without -a
    assert float(rows["busy"][1].rstrip("%")) > 10.0  # a busy loop, measured over a second
    assert float(rows["idle"][1].rstrip("%")) < 5.0
    assert rows["busy"][2].endswith(" / 64MiB")
    assert rows["idle"][5] == "2" and rows["busy"][5] == "1"
    assert rows["busy"][4] == "0B / 0B"  # --network none: no interface but lo
    assert rows["busy"][6] == busy[:12]
    out = cli.ok("stats", "--no-stream", "-a", "--no-trunc", "--format", "{{.Name}} {{.ID}} {{.PIDs}}")
    assert f"busy {busy} 1" in out.splitlines() and "stopped" in out
    table = cli.ok("stats", "--no-stream", "busy").splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    r = cli("stats", "--no-stream", "nope")
    assert (r.code, r.err) == (1, "Error: No such container: nope\n")
    cli.ok("rm", "-f", "busy", "idle", "stopped")


def _cgroup_file(cid: str, v1: str, v2: str) -> str:
    p = Path(f"/sys/fs/cgroup/{v1.split('/')[0]}/moorage/{cid}/{v1.split('/')[1]}")
    if not p.exists():
        p = Path(f"/sys/fs/cgroup/moorage/{cid}/{v2}")
    return p.read_text().strip()


def test_update_limits_live_and_for_later_starts(cli) -> None:
    cid = cli.ok("run", "-d", "--name", "u1", "-m", "64m", "--pids-limit", "10", "busybox", "sleep", "300").strip()
    assert cli.ok("update", "-m", "128m", "--pids-limit", "20", "--cpus", "0.5", "u1") == "u1\n"
    assert _cgroup_file(cid, "memory/memory.limit_in_bytes", "memory.max") == str(128 << 20)
    assert _cgroup_file(cid, "pids/pids.max", "pids.max") == "20"
    assert _cgroup_file(cid, "cpu/cpu.cfs_quota_us", "cpu.max").split()[0] == "50000"
    hc = json.loads(cli.ok("inspect", "-f", "{{json .HostConfig}}", "u1"))
    assert (hc["Memory"], hc["PidsLimit"], hc["NanoCpus"]) == (128 << 20, 20, 500_000_000)
    cli.ok("update", "--pids-limit", "-1", "u1")  # back to unlimited
    assert _cgroup_file(cid, "pids/pids.max", "pids.max") == "max"
    # refused: nothing changes
    r = cli("update", "-m", "1k", "u1")
    assert (r.code, r.err) == (1, "Error: Minimum memory limit allowed is 6MB\n")
    assert _cgroup_file(cid, "memory/memory.limit_in_bytes", "memory.max") == str(128 << 20)
    r = cli("update", "u1")
    assert r.code == 1 and "one or more flags" in r.err
    r = cli("update", "-m", "96m", "nope", "u1")  # Docker: each container in turn, exit 1 if any failed
    assert (r.code, r.out, r.err) == (1, "u1\n", "Error: No such container: nope\n")
    # a stopped container keeps the new limits for its next start
    cli.ok("stop", "-t", "0", "u1")
    cli.ok("update", "-m", "80m", "u1")
    cli.ok("start", "u1")
    assert _cgroup_file(cid, "memory/memory.limit_in_bytes", "memory.max") == str(80 << 20)
    cli.ok("rm", "-f", "u1")
    cli.ok("run", "-d", "--rm", "--name", "u2", "busybox", "sleep", "300")
    r = cli("update", "--restart", "always", "u2")
    assert r.code == 1 and "AutoRemove is enabled" in r.err
    cli.ok("rm", "-f", "u2")


def test_update_restart_policy_reaches_the_monitor(cli) -> None:
    cli.ok("run", "-d", "--name", "crash", "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 3")
    wait_for(lambda: json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", "crash")) >= 1, timeout=30,
             what="a restart")
    cli.ok("update", "--restart", "no", "crash")
    wait_for(lambda: state(cli, "crash")["Status"] == "exited", timeout=30, what="exit without restart")
    count = json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", "crash"))
    time.sleep(1.0)
    assert state(cli, "crash")["Status"] == "exited"
    assert json.loads(cli.ok("inspect", "-f", "{{json .RestartCount}}", "crash")) == count
    assert json.loads(cli.ok("inspect", "-f", "{{json .HostConfig.RestartPolicy}}", "crash"))["Name"] == "no"
    cli.ok("rm", "crash")


def test_attach_streams_output_input_and_exit_code(cli, roots) -> None:
    import subprocess
    import sys

    base = [sys.executable, "-m", "moorage.cli", *roots.args()]
    # The container waits for us: it prints only after the attach client is in.
    cli.ok("run", "-d", "--name", "a1", "busybox", "sh", "-c",
           "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out; echo err >&2; exit 4")
    p = subprocess.Popen([*base, "attach", "a1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    wait_for(lambda: _attach_clients(roots) >= 1, what="attach client")
    cli.ok("exec", "a1", "touch", "/tmp/go")
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out, err) == (4, b"out\n", b"err\n")  # stdout and stderr kept apart
    # stdin: a pipe's bytes reach the container's stdin
    cli.ok("run", "-d", "-i", "--name", "a2", "busybox", "sh", "-c", "read x; echo got:$x; exit 5")
    r = subprocess.run([*base, "attach", "a2"], input=b"hello\n", capture_output=True, timeout=30)
    assert (r.returncode, r.stdout) == (5, b"got:hello\n")
    r = cli("attach", "a2")
    assert (r.code, r.err) == (1, "Error: You cannot attach to a stopped container, start it first\n")
    cli.ok("rm", "a1", "a2")


def _attach_clients(roots) -> int:  # type: ignore[no-untyped-def]
    """Connected attach clients of this root's monitors (their sockets' peers)."""
    import glob

    socks = glob.glob(str(roots.runroot / "cs" / "*.att"))
    if not socks:
        return 0
    # /proc/net/unix lists a listening socket and one line per accepted connection on its path
    lines = Path("/proc/net/unix").read_text().splitlines()
    return sum(1 for ln in lines for s in socks if ln.endswith(s)) - len(socks)


def test_attach_tty_and_detach_keys(cli, roots) -> None:
    import pty
    import subprocess
    import sys

    cid = cli.ok("run", "-d", "-it", "--name", "t1", "busybox", "sh").strip()
    base = [sys.executable, "-m", "moorage.cli", *roots.args()]

    def attach(*extra: str) -> tuple[int, str]:
        master, slave = pty.openpty()
        p = subprocess.Popen([*base, "attach", *extra, "t1"], stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        out = b""

        def read_until(marker: bytes) -> None:
            nonlocal out
            deadline = time.monotonic() + 20
            while marker not in out and time.monotonic() < deadline:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break

        wait_for(lambda: _attach_clients(roots) >= 1, what="attach client")
        os.write(master, b"echo hi-$((6*7))\n")
        read_until(b"hi-42")
        os.write(master, b"\x10\x11" if not extra else b"\x01\x02")  # ctrl-p ctrl-q / ctrl-a ctrl-b
        code = p.wait(timeout=20)
        read_until(b"read escape sequence")
        os.close(master)
        return code, out.decode(errors="replace")

    code, out = attach()
    assert code == 1 and "hi-42" in out and "read escape sequence" in out
    assert state(cli, cid)["Running"]  # detaching leaves it running
    code, out = attach("--detach-keys", "ctrl-a,ctrl-b")
    assert code == 1 and "hi-42" in out
    r = cli("attach", "t1")  # stdin is not a terminal here
    assert (r.code, r.err) == (1, "the input device is not a TTY\n")
    r = cli("attach", "--detach-keys", "ctrl-1", "--no-stdin", "t1")
    assert r.code == 1 and "Invalid detach keys (ctrl-1) provided" in r.err
    cli.ok("pause", "t1")
    r = cli("attach", "--no-stdin", "t1")
    assert r.err == "Error: You cannot attach to a paused container, unpause it first\n"
    cli.ok("rm", "-f", "t1")
