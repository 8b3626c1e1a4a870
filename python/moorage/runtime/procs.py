"""Process helpers: liveness with pid-reuse protection, and /proc reading for ``top``."""

from __future__ import annotations

import os


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
