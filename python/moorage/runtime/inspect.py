"""Docker-shaped JSON for ``inspect`` and ``info``."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

from moorage.runtime.timefmt import ZERO, to_rfc3339

if TYPE_CHECKING:
    from moorage.engine import Context
    from moorage.image.store import Image
    from moorage.runtime.containers import ContainerRecord


def container_inspect(ctx: Context, rec: ContainerRecord) -> dict[str, Any]:
    from moorage.runtime.containers import ContainerManager

    mgr = ContainerManager(ctx)
    o = rec.options
    cfg = rec.config
    bundle = mgr.bundle_dir(rec.id)
    driver = ctx.driver(rec.driver)
    graph: dict[str, Any] = {"Name": rec.driver, "Data": {}}
    if rec.driver == "overlay":
        base = driver.containers / rec.id
        graph["Data"] = {"MergedDir": str(base / "merged"), "UpperDir": str(base / "upper"),
                         "WorkDir": str(base / "work")}
    else:
        graph["Data"] = {"Dir": driver.rootfs_path(rec.id)}
    r = o.resources
    nano = int(r.cpu_quota * 1e9 / r.cpu_period) if r.cpu_quota and r.cpu_period else 0
    return {
        "Id": rec.id,
        "Created": to_rfc3339(int(rec.created * 1e9)),
        "Path": cfg.get("Path", ""),
        "Args": cfg.get("Args", []),
        "State": {
            "Status": rec.state,
            "Running": rec.state in ("running", "paused", "restarting"),
            "Paused": rec.state == "paused",
            "Restarting": rec.state == "restarting",
            "OOMKilled": rec.oom_killed,
            "Dead": rec.state == "dead",
            "Pid": rec.pid,
            "ExitCode": rec.exit_code,
            "Error": rec.error,
            "StartedAt": rec.started_at or ZERO,
            "FinishedAt": rec.finished_at or ZERO,
        },
        "Image": rec.image_id,
        "ResolvConfPath": str(bundle / "resolv.conf"),
        "HostnamePath": str(bundle / "hostname"),
        "HostsPath": str(bundle / "hosts"),
        "LogPath": str(mgr.log_path(rec.id)),
        "Name": "/" + rec.name,
        "RestartCount": rec.restart_count,
        "Driver": rec.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": {
            "NetworkMode": o.network,
            "RestartPolicy": {"Name": o.restart.name, "MaximumRetryCount": o.restart.maximum_retry_count},
            "AutoRemove": o.auto_remove,
            "Privileged": o.privileged,
            "ReadonlyRootfs": o.read_only,
            "CapAdd": o.cap_add or None,
            "CapDrop": o.cap_drop or None,
            "SecurityOpt": o.security_opt or None,
            "Init": o.init,
            "Runtime": rec.runtime,
            "Binds": o.volumes or None,
            "Tmpfs": {t.split(":", 1)[0]: [*t.split(":", 1), ""][1] for t in o.tmpfs} or None,
            "Memory": r.memory or 0,
            "MemorySwap": r.memory_swap or 0,
            "NanoCpus": nano,
            "CpuShares": r.cpu_shares or 0,
            "CpuQuota": r.cpu_quota or 0,
            "CpuPeriod": r.cpu_period or 0,
            "CpusetCpus": r.cpuset_cpus or "",
            "CpusetMems": r.cpuset_mems or "",
            "PidsLimit": r.pids_limit,
            "OomScoreAdj": o.oom_score_adj or 0,
            "GroupAdd": o.group_add or None,
            "Ulimits": o.ulimits or None,
            "LogConfig": {"Type": "json-file", "Config": {}},
        },
        "GraphDriver": graph,
        "Mounts": [
            {"Type": "bind", "Source": v.split(":")[0], "Destination": v.split(":")[1],
             "Mode": [*v.split(":"), "", ""][2], "RW": "ro" not in v.split(":")[2:], "Propagation": "rprivate"}
            for v in o.volumes if v.count(":") >= 1
        ],
        "Config": {
            "Hostname": cfg.get("Hostname", ""),
            "Domainname": "",
            "User": cfg.get("User", ""),
            "AttachStdin": o.stdin_open,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": o.tty,
            "OpenStdin": o.stdin_open,
            "StdinOnce": o.stdin_open,
            "Env": cfg.get("Env", []),
            "Cmd": cfg.get("Cmd"),
            "Image": rec.image_name,
            "Volumes": None,
            "WorkingDir": cfg.get("WorkingDir", ""),
            "Entrypoint": cfg.get("Entrypoint"),
            "OnBuild": None,
            "Labels": cfg.get("Labels") or {},
            "StopSignal": cfg.get("StopSignal", "SIGTERM"),
            **({"StopTimeout": o.stop_timeout} if o.stop_timeout is not None else {}),
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "Ports": {}, "IPAddress": "", "Gateway": "", "MacAddress": "",
            "Networks": {o.network.split(":")[0]: {"NetworkID": "", "IPAddress": "", "Gateway": ""}},
        },
    }


def image_inspect(ctx: Context, image: Image) -> dict[str, Any]:
    from moorage.image import reference

    cfg = image.config
    repo_tags = [reference.parse(t).familiar for t in image.tags]
    return {
        "Id": image.id,
        "RepoTags": repo_tags,
        "RepoDigests": [],
        "Digest": image.manifest_digest or "",  # podman's field: the manifest the image runs from
        # the OCI index / manifest list that manifest was chosen from ("" when none)
        "ManifestListDigest": image.index_digest or "",
        "Parent": "",
        "Comment": next((h.get("comment", "") for h in cfg.get("history", [])[-1:]), ""),
        "Created": image.created,
        "Container": "",
        "DockerVersion": "",
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or {},
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": ctx.storage_driver, "Data": None},
        "RootFS": {"Type": "layers", "Layers": (cfg.get("rootfs") or {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": ZERO},
    }


def system_info(ctx: Context) -> dict[str, Any]:
    from moorage import __version__
    from moorage.runtime.containers import ContainerManager

    recs = ContainerManager(ctx).list()
    uname = platform.uname()
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        mem = 0
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return {
        "ID": "",
        "Containers": len(recs),
        "ContainersRunning": sum(r.state == "running" for r in recs),
        "ContainersPaused": sum(r.state == "paused" for r in recs),
        "ContainersStopped": sum(r.state not in ("running", "paused") for r in recs),
        "Images": len(ctx.images.list()),
        "Driver": ctx.storage_driver,
        "DockerRootDir": str(ctx.root),
        "RunRoot": str(ctx.runroot),
        "CgroupVersion": "2" if v2 else "1",
        "CgroupDriver": "cgroupfs",
        "KernelVersion": uname.release,
        "OperatingSystem": platform.freedesktop_os_release().get("PRETTY_NAME", "Linux") if hasattr(platform, "freedesktop_os_release") else "Linux",
        "OSType": "linux",
        "Architecture": uname.machine,
        "NCPU": os.cpu_count(),
        "MemTotal": mem,
        "ServerVersion": __version__,
        "DefaultRuntime": "builtin",
        "Plugins": ctx.plugins.summary(),
        "Name": uname.node,
    }
