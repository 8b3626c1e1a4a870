"""Create-options + image config → OCI runtime config (``config.json``).

This is moorage's specgen: it follows what dockerd puts in the spec it hands
to runc (``daemon/oci_linux.go``, ``oci/defaults.go``), then lets two plugins
adjust the result:

1. the security profile (``default``, ``unconfined``, ``privileged`` or a
   third party's): capabilities, seccomp, masked paths, devices;
2. with ``--init``, the init supervisor: rewrites ``process.args``.

Which security profile: ``privileged`` when ``--privileged``; else the NAME of
``--security-opt profile=NAME`` (a moorage extension); else ``default``.
``--security-opt seccomp=unconfined`` keeps the default profile's
capabilities and masked paths and only drops seccomp, as in Docker.

Choices that differ from a byte-for-byte copy of Docker's spec, and why:

- no ``/sys/fs/cgroup`` mount: on cgroup v1/hybrid hosts a ``cgroup``-type
  mount means runc's per-controller bind dance; until the Rust runtime does
  that, the container sees no cgroupfs rather than a half-right one;
- ``linux.rootfsPropagation`` is left unset, as Docker leaves it: the runtime
  then applies runc's default (the root made ``rslave``), so host unmounts
  still reach the container;
- no default ``process.rlimits``: raising a limit needs CAP_SYS_RESOURCE,
  which moorage cannot count on having;
- ``oomScoreAdj`` is only set when asked: writing 0 under a parent with a
  positive score would need CAP_SYS_RESOURCE too.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from moorage.errors import InvalidArgument
from moorage.spec.options import CreateOptions
from moorage.spec.users import resolve_user

if TYPE_CHECKING:
    from moorage.plugin.manager import Plugins

OCI_VERSION = "1.1.0"
DEFAULT_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RLIM_INFINITY = 2**64 - 1
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

#: (type, major, minor, access): Docker's device cgroup allow-list; -1 is "*"
DEFAULT_DEVICE_RULES: tuple[tuple[str, int, int, str], ...] = (
    ("c", 1, 3, "rwm"),  # /dev/null
    ("c", 1, 5, "rwm"),  # /dev/zero
    ("c", 1, 7, "rwm"),  # /dev/full
    ("c", 1, 8, "rwm"),  # /dev/random
    ("c", 1, 9, "rwm"),  # /dev/urandom
    ("c", 5, 0, "rwm"),  # /dev/tty
    ("c", 5, 1, "rwm"),  # /dev/console
    ("c", 5, 2, "rwm"),  # /dev/ptmx
    ("c", 136, -1, "rwm"),  # /dev/pts/*
    ("c", 10, 200, "rwm"),  # /dev/net/tun
    ("c", -1, -1, "m"),  # mknod of any char device (using it stays denied)
    ("b", -1, -1, "m"),  # mknod of any block device
)

#: device nodes created in the container's /dev: (path, major, minor)
DEFAULT_DEVICES: tuple[tuple[str, int, int], ...] = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

_RLIMITS = {
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
    "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

_PROPAGATIONS = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
#: accepted in a -v mode and ignored: SELinux relabel, macOS consistency, volume copy
_IGNORED_VOLUME_MODES = {"z", "Z", "consistent", "cached", "delegated", "nocopy"}

#: mutually exclusive mount flags: the later one given wins
_FLAG_PAIRS = {
    "ro": "rw", "rw": "ro",
    "exec": "noexec", "noexec": "exec",
    "suid": "nosuid", "nosuid": "suid",
    "dev": "nodev", "nodev": "dev",
    "atime": "noatime", "noatime": "atime",
    "diratime": "nodiratime", "nodiratime": "diratime",
}
_TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev")


# --- --security-opt --------------------------------------------------------


@dataclass
class SecurityOpts:
    """``--security-opt`` values, parsed (Docker's keys plus moorage's ``profile``)."""

    seccomp: str | None = None  #: "unconfined", "builtin" or a profile path
    apparmor: str | None = None
    labels: list[str] = field(default_factory=list)
    no_new_privileges: bool = False
    systempaths_unconfined: bool = False  #: no masked/read-only /proc and /sys paths
    writable_cgroups: bool = False
    profile: str | None = None


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidArgument(f"invalid --security-opt {key} value: {value!r}")


def parse_security_opts(security_opt: list[str]) -> SecurityOpts:
    """Parse ``--security-opt`` entries (``key=value``, legacy ``key:value``)."""
    out = SecurityOpts()
    for opt in security_opt:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
            if not sep:
                raise InvalidArgument(f"invalid --security-opt: {opt!r}")
        if key == "seccomp":
            out.seccomp = value
        elif key == "apparmor":
            out.apparmor = value
        elif key == "label":
            out.labels.append(value)
        elif key == "no-new-privileges":
            out.no_new_privileges = _parse_bool(key, value)
        elif key == "systempaths":
            if value != "unconfined":
                raise InvalidArgument(f"invalid --security-opt systempaths value: {value!r}")
            out.systempaths_unconfined = True
        elif key == "writable-cgroups":
            out.writable_cgroups = _parse_bool(key, value)
        elif key == "profile":
            if not value:
                raise InvalidArgument(f"invalid --security-opt: {opt!r}")
            out.profile = value
        else:
            raise InvalidArgument(f"invalid --security-opt: {opt!r}")
    return out


def security_profile_name(options: CreateOptions) -> str:
    """Name of the security profile plugin for ``options`` (see the module doc)."""
    if options.privileged:
        return "privileged"
    return parse_security_opts(options.security_opt).profile or "default"


# --- process ---------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def process_args(options: CreateOptions, image_config: Mapping[str, Any]) -> list[str]:
    """Entrypoint + command, by Docker's rules.

    ``--entrypoint`` (even ``""``, i.e. ``[]``) replaces the image's
    Entrypoint *and* drops the image's Cmd; otherwise a given command replaces
    the image's Cmd after the image's Entrypoint."""
    if options.entrypoint is not None:
        entrypoint = [a for a in options.entrypoint] if options.entrypoint != [""] else []
        command = list(options.command or [])
    else:
        entrypoint = _as_list(image_config.get("Entrypoint"))
        command = list(options.command) if options.command else _as_list(image_config.get("Cmd"))
    args = entrypoint + command
    if not args:
        raise InvalidArgument("no command specified")
    return args


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def _replace_or_append(env: list[str], entries: list[str]) -> list[str]:
    index = {_env_key(e): i for i, e in enumerate(env)}
    for entry in entries:
        key = _env_key(entry)
        if key in index:
            env[index[key]] = entry
        else:
            index[key] = len(env)
            env.append(entry)
    return env


def user_env(entries: list[str], environ: Mapping[str, str]) -> list[str]:
    """``--env`` entries with bare ``KEY`` taken from ``environ`` (dropped when unset)."""
    out = []
    for entry in entries:
        key, sep, _ = entry.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {entry}")
        if sep:
            out.append(entry)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def process_env(
    options: CreateOptions,
    image_config: Mapping[str, Any],
    hostname: str,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The container's environment, as dockerd builds it.

    Starts from ``PATH`` (default), ``HOSTNAME`` and ``TERM=xterm`` (with a
    tty); the image's Env then the ``--env`` entries replace by key or append."""
    env = [f"PATH={DEFAULT_PATH_ENV}", f"HOSTNAME={hostname}"]
    if options.tty:
        env.append("TERM=xterm")
    _replace_or_append(env, _as_list(image_config.get("Env")))
    _replace_or_append(env, user_env(options.env, os.environ if environ is None else environ))
    return env


def process_cwd(options: CreateOptions, image_config: Mapping[str, Any]) -> str:
    """``--workdir``, else the image's WorkingDir, else ``/``; must be absolute."""
    cwd = options.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    return "/" + posixpath.normpath(cwd).lstrip("/")


def parse_ulimit(text: str) -> dict[str, Any]:
    """``name=soft[:hard]`` → an OCI rlimit (``-1`` is unlimited)."""
    name, sep, values = text.partition("=")
    if not sep or not name or not values:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    if name not in _RLIMITS:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    soft_text, _, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from None
    for v in (soft, hard):
        if v < -1:
            raise InvalidArgument(f"invalid ulimit argument: {text}")
    soft_u = RLIM_INFINITY if soft == -1 else soft
    hard_u = RLIM_INFINITY if hard == -1 else hard
    if soft_u > hard_u:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"type": f"RLIMIT_{name.upper()}", "soft": soft_u, "hard": hard_u}


# --- mounts ----------------------------------------------------------------


def _clean_abs(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid {what}: '{path}' mount path must be absolute")
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/")


def merge_mount_options(options: list[str]) -> list[str]:
    """Merge mount options so that a later flag overrides its opposite
    (``exec`` vs ``noexec``...) and a later ``key=value`` overrides the key."""
    out: list[str] = []
    for opt in options:
        if not opt:
            continue
        key = opt.partition("=")[0]
        opposite = _FLAG_PAIRS.get(opt)
        out = [
            o for o in out
            if o != opt and o != opposite and ("=" not in opt or o.partition("=")[0] != key)
        ]
        out.append(opt)
    return out


def parse_volume(text: str) -> dict[str, Any]:
    """``-v SRC:DST[:MODE]`` with an absolute host SRC → an OCI bind mount.

    MODE is a comma list of ``ro``/``rw``, a propagation (``rprivate``
    default), and Docker's ignored ``z``/``Z``/``cached``... Named and anonymous
    volumes are not supported yet."""
    parts = text.split(":")
    if len(parts) == 1:
        raise InvalidArgument(f"anonymous volumes are not supported yet: '{text}'")
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{text}'")
    source, destination = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    if not source.startswith("/"):
        raise InvalidArgument(f"named volumes are not supported yet: '{source}' (use an absolute host path)")
    dest = _clean_abs(destination, "mount config for type \"bind\": invalid mount path")
    if dest == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    writable: bool | None = None
    propagation = "rprivate"
    for flag in (m for m in mode.split(",") if m):
        if flag in ("ro", "rw"):
            if writable is not None:
                raise InvalidArgument(f"invalid mode: {mode}")
            writable = flag == "rw"
        elif flag in _PROPAGATIONS:
            propagation = flag
        elif flag not in _IGNORED_VOLUME_MODES:
            raise InvalidArgument(f"invalid mode: {mode}")
    opts = ["rbind", propagation]
    if writable is False:
        opts.append("ro")
    return {
        "destination": dest,
        "type": "bind",
        "source": posixpath.normpath(source),
        "options": opts,
    }


def parse_tmpfs(text: str) -> dict[str, Any]:
    """``--tmpfs /path[:opts]`` → an OCI tmpfs mount (Docker's ``noexec,nosuid,nodev`` defaults)."""
    path, _, opts = text.partition(":")
    dest = _clean_abs(path, "tmpfs mount path")
    if dest == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    merged = merge_mount_options([*_TMPFS_DEFAULTS, *opts.split(",")])
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": merged}


def default_mounts(container_dir: str) -> list[dict[str, Any]]:
    """Docker's default mounts (minus ``/sys/fs/cgroup``, see the module doc),
    then the engine-written ``hosts``, ``hostname`` and ``resolv.conf``."""
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]
    for name, dest in (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"),
                       ("resolv.conf", "/etc/resolv.conf")):
        mounts.append({"destination": dest, "type": "bind",
                       "source": os.path.join(container_dir, name), "options": ["rbind", "rprivate"]})
    return mounts


def user_mounts(options: CreateOptions) -> list[dict[str, Any]]:
    """``--volume`` and ``--tmpfs`` mounts, parents before children."""
    mounts = [parse_volume(v) for v in options.volumes] + [parse_tmpfs(t) for t in options.tmpfs]
    seen: set[str] = set()
    for m in mounts:
        if m["destination"] in seen:
            raise InvalidArgument(f"Duplicate mount point: {m['destination']}")
        seen.add(m["destination"])
    # Stable sort by depth, so /a is mounted before /a/b whatever the flag order.
    return sorted(mounts, key=lambda m: m["destination"].rstrip("/").count("/"))


def merge_mounts(defaults: list[dict[str, Any]], users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Defaults not overridden by a user mount, then the user mounts (dockerd's rule:
    a user mount on a default's destination replaces it; a user ``/dev`` drops
    every default under ``/dev/``)."""
    taken = {m["destination"] for m in users}
    user_dev = "/dev" in taken
    kept = [
        m for m in defaults
        if m["destination"] not in taken and not (user_dev and m["destination"].startswith("/dev/"))
    ]
    return kept + users


# --- linux -----------------------------------------------------------------


@lru_cache(maxsize=1)
def host_swap_accounting() -> bool:
    """True when the host's memory cgroup can limit swap (v1 ``memsw`` or v2)."""
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        return True
    try:
        with open("/sys/fs/cgroup/cgroup.controllers", encoding="ascii") as f:
            return "memory" in f.read().split()
    except OSError:
        return False


def _device_rule(kind: str, major: int, minor: int, access: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind}
    if major >= 0:
        rule["major"] = major
    if minor >= 0:
        rule["minor"] = minor
    rule["access"] = access
    return rule


def linux_resources(options: CreateOptions, *, swap_accounting: bool | None = None) -> dict[str, Any]:
    """``linux.resources``: cgroup limits and Docker's device allow-list."""
    r = options.resources
    resources: dict[str, Any] = {
        "devices": [{"allow": False, "access": "rwm"}]
        + [_device_rule(*rule) for rule in DEFAULT_DEVICE_RULES],
    }
    memory: dict[str, Any] = {}
    if r.memory:
        memory["limit"] = r.memory
    if r.memory_swap:
        memory["swap"] = r.memory_swap
    elif r.memory and (host_swap_accounting() if swap_accounting is None else swap_accounting):
        # Docker's default: as much swap as memory (the memsw limit is their sum).
        memory["swap"] = 2 * r.memory
    if memory:
        resources["memory"] = memory
    cpu: dict[str, Any] = {}
    if r.cpu_shares:
        cpu["shares"] = min(max(r.cpu_shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        resources["cpu"] = cpu
    if r.pids_limit is not None and r.pids_limit > 0:
        resources["pids"] = {"limit": r.pids_limit}
    return resources


def linux_devices() -> list[dict[str, Any]]:
    """``linux.devices``: the nodes dockerd lists for the container's /dev."""
    return [
        {"path": path, "type": "c", "major": major, "minor": minor,
         "fileMode": 0o666, "uid": 0, "gid": 0}
        for path, major, minor in DEFAULT_DEVICES
    ]


# --- the whole config ------------------------------------------------------


def generate_config(
    options: CreateOptions,
    image_config: Mapping[str, Any] | None,
    *,
    container_id: str,
    rootfs: str,
    hostname: str,
    container_dir: str,
    plugins: Plugins,
    runtime_binary: str,
) -> dict[str, Any]:
    """Return the OCI runtime config for one container.

    ``image_config`` is the ``config`` object of the image's OCI config (any
    key may be missing or None). ``rootfs`` is the host path of the mounted
    root filesystem, read for /etc/passwd and /etc/group. ``plugins`` supplies
    the security profile and init supervisor registries. Raises
    :class:`~moorage.errors.InvalidArgument` for anything malformed."""
    image = dict(image_config or {})
    secopts = parse_security_opts(options.security_opt)
    user = resolve_user(rootfs, options.user or image.get("User") or None, options.group_add)

    env = process_env(options, image, hostname)
    if not any(e.startswith("HOME=") for e in env):
        # runc sets HOME from passwd when it is missing; do it here so that
        # every runtime behaves the same.
        env.append(f"HOME={user.home}")

    process: dict[str, Any] = {
        "terminal": options.tty,
        # dockerd lists the primary gid first (the fix for CVE-2022-36109), so
        # that setgroups(2) never leaves the runtime's own groups in place.
        "user": {"uid": user.uid, "gid": user.gid,
                 "additionalGids": list(dict.fromkeys([user.gid, *user.additional_gids]))},
        "args": process_args(options, image),
        "env": env,
        "cwd": process_cwd(options, image),
        "noNewPrivileges": secopts.no_new_privileges,
    }
    if options.ulimits:
        rlimits: dict[str, dict[str, Any]] = {}
        for text in options.ulimits:
            rl = parse_ulimit(text)
            rlimits[rl["type"]] = rl  # a later --ulimit of the same name wins
        process["rlimits"] = list(rlimits.values())
    if options.oom_score_adj is not None:
        process["oomScoreAdj"] = options.oom_score_adj

    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": options.read_only},
        "hostname": hostname,
        "mounts": merge_mounts(default_mounts(container_dir), user_mounts(options)),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup", "network")],
            "cgroupsPath": f"/moorage/{container_id}",
            "resources": linux_resources(options),
            "devices": linux_devices(),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }

    profile = plugins.security.get(security_profile_name(options))()
    profile.apply(config, options)
    if options.init:
        plugins.init.get(options.init_supervisor)().apply(config, options, runtime_binary)

    # Imported here: validate imports this module's parsers.
    from moorage.spec.validate import validate_config

    validate_config(config)
    return config
