"""Process helpers: liveness with pid-reuse protection, and /proc reading for ``top``."""

from __future__ import annotations

import os
from typing import Any


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    state = data[data.rfind(b")") + 2 : data.rfind(b")") + 3]
    return state not in (b"Z", b"X")


def ps_row(pid: int, clk_tck: int | None = None) -> list[str] | None:
    """``ps -ef`` columns: UID PID PPID C STIME TTY TIME CMD."""
    import pwd
    import time

    tck = clk_tck or os.sysconf("SC_CLK_TCK")
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        st = os.stat(f"/proc/{pid}")
    except OSError:
        return None
    comm = stat[stat.find(b"(") + 1 : stat.rfind(b")")].decode(errors="replace")
    rest = stat[stat.rfind(b")") + 2 :].split()
    ppid = rest[1].decode()
    utime, stime = int(rest[11]), int(rest[12])
    started = int(rest[19]) / tck
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    boot = time.time() - uptime
    start_wall = boot + started
    stime_s = time.strftime("%H:%M" if time.time() - start_wall < 86400 else "%b%d", time.localtime(start_wall))
    cpu = (utime + stime) // tck
    tty_nr = int(rest[4])
    tty = "?" if tty_nr == 0 else f"pts/{tty_nr & 0xFF}"
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    elapsed = max(uptime - started, 1e-9)
    c = int(100 * (utime + stime) / tck / elapsed)
    args = cmdline.replace(b"\0", b" ").strip().decode(errors="replace") or f"[{comm}]"
    return [user, str(pid), ppid, str(c), stime_s, tty, f"{cpu // 3600:02d}:{cpu % 3600 // 60:02d}:{cpu % 60:02d}", args]


TOP_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def top(pids: list[int], ps_args: list[str] | None = None) -> dict[str, list[Any]]:
    """Docker's ``top``: ``{"Titles": [...], "Processes": [[...], ...]}`` for ``pids``.

    Without ``ps_args`` the rows are read from /proc (the columns of
    ``ps -ef``). With them, the host's ``ps`` runs with those arguments and
    its rows are kept whose PID column is one of ``pids``, as dockerd does;
    the output must have a PID column."""
    if not ps_args:
        return {"Titles": list(TOP_TITLES), "Processes": [r for r in (ps_row(p) for p in pids) if r]}
    import shutil
    import subprocess

    from moorage.errors import InvalidArgument

    exe = shutil.which("ps")
    if exe is None:
        raise InvalidArgument("top with ps options needs ps(1) on the host; it is not on PATH")
    proc = subprocess.run([exe, *ps_args], capture_output=True, text=True)
    if proc.returncode != 0:
        first = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()), f"exit {proc.returncode}")
        raise InvalidArgument(f"ps {' '.join(ps_args)} failed: {first}")
    lines = proc.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    at, wanted = titles.index("PID"), set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        try:
            pid = int(fields[at])
        except (IndexError, ValueError):
            continue
        if pid in wanted:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}
