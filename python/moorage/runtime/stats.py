"""Resource usage in the Docker API's stats shape (``GET /containers/{id}/stats``).

The counters come from the container's cgroup through the OCI runtime's
``events --stats`` (runc's JSON, which moorage's runtime also prints), the
network counters from the container's network namespace (``/proc/PID/net/dev``)
and the host's CPU time from ``/proc/stat``, as dockerd collects them."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from moorage.errors import Conflict, RuntimeFailure
from moorage.runtime.timefmt import now_rfc3339

if TYPE_CHECKING:
    from moorage.runtime.containers import ContainerManager, ContainerRecord

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_cpu_ns() -> int:
    """Host CPU time (user … softirq of /proc/stat's ``cpu`` line) in ns, as dockerd counts it."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                return sum(int(x) for x in line.split()[1:8]) * 1_000_000_000 // _CLK_TCK
    return 0


def host_memory() -> int:
    """MemTotal: the limit Docker shows for a container without one."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def networks(pid: int, own_netns: bool) -> dict[str, dict[str, int]]:
    """Per-interface counters of the container's own network namespace (none
    for ``--network host``: those are the host's), loopback left out."""
    if not own_netns or pid <= 0:
        return {}
    out: dict[str, dict[str, int]] = {}
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return {}
    keys = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")
    for line in lines:
        name, _, rest = line.partition(":")
        name, v = name.strip(), rest.split()
        if name == "lo" or len(v) < 16:
            continue
        nums = [int(x) for x in v]
        out[name] = dict(zip(keys, nums[0:4] + nums[8:12], strict=True))
    return out


def sample(mgr: ContainerManager, rec: ContainerRecord) -> dict[str, Any]:
    """One sample of a running container, without ``precpu_stats``."""
    if rec.state not in ("running", "paused"):
        raise Conflict(f"container {rec.name} is not running")
    proc = mgr._runtime_cmd(rec, "events", "--stats", rec.id)
    if proc.returncode != 0:
        raise RuntimeFailure(f"stats {rec.name}: {proc.stderr.strip() or f'runtime exited {proc.returncode}'}")
    try:
        data = json.loads(proc.stdout).get("data") or {}
    except ValueError:
        raise RuntimeFailure(f"stats {rec.name}: the runtime printed no JSON") from None
    mem = data.get("memory") or {}
    usage = mem.get("usage") or {}
    raw = mem.get("raw") or mem.get("stats") or {}
    limit = usage.get("limit")
    if not limit or limit >= 1 << 62:  # unlimited: Docker shows the host's memory
        limit = host_memory()
    memory_stats: dict[str, Any] = {"usage": int(usage.get("usage") or 0), "limit": int(limit), "stats": dict(raw)}
    pids = data.get("pids") or {}
    blkio = (data.get("blkio") or {}).get("ioServiceBytesRecursive") or []
    own_netns = not rec.options.network.startswith("host")
    return {
        "read": now_rfc3339(),
        "id": rec.id,
        "name": "/" + rec.name,
        "pids_stats": {k: pids[k] for k in ("current", "limit") if k in pids},
        "cpu_stats": {
            "cpu_usage": {"total_usage": int(((data.get("cpu") or {}).get("usage") or {}).get("total") or 0)},
            "system_cpu_usage": system_cpu_ns(),
            "online_cpus": os.cpu_count() or 1,
        },
        "memory_stats": memory_stats,
        # None where the kernel does not count (v1 blkio counts only throttled groups)
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": b.get("major", 0), "minor": b.get("minor", 0), "op": str(b.get("op", "")).lower(),
             "value": int(b.get("value") or 0)} for b in blkio
        ] or None},
        "networks": networks(rec.pid, own_netns),
    }


def with_previous(cur: dict[str, Any], prev: dict[str, Any] | None) -> dict[str, Any]:
    """``cur`` with ``preread``/``precpu_stats`` from the sample before it (empty for the first)."""
    return {**cur, "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
            "precpu_stats": prev["cpu_stats"] if prev else {"cpu_usage": {"total_usage": 0}}}
