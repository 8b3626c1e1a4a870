"""Validation: ordered lists of small checks, errors apart from warnings.

Two lists, in the manner of runc's ``libcontainer/configs/validate``:

- :data:`OPTION_CHECKS` look at the :class:`~moorage.spec.options.CreateOptions`
  before anything is created, with Docker's messages;
- :data:`CONFIG_CHECKS` look at the generated OCI config (after the plugins
  changed it), so a plugin bug is caught before the runtime sees the bundle.

Each check takes the object and a :class:`Findings` and appends to it; it
never raises for a problem it reports. :func:`validate_options` and
:func:`validate_config` run a list and raise the first error.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from moorage.errors import InvalidArgument, MoorageError
from moorage.security.capabilities import CAPABILITIES, normalize_capability
from moorage.spec.generate import (
    MAX_CPU_SHARES,
    MIN_CPU_SHARES,
    parse_security_opts,
    parse_tmpfs,
    parse_ulimit,
    parse_volume,
    process_cwd,
)
from moorage.spec.options import CreateOptions

MIN_MEMORY = 6 * 1024 * 1024
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_NAMESPACES = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}


@dataclass
class Findings:
    """What the checks found: errors make the request fail, warnings are printed."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        """Record an error."""
        self.errors.append(message)

    def warn(self, message: str) -> None:
        """Record a warning."""
        self.warnings.append(message)

    def run(self, parse: Callable[[], object]) -> None:
        """Call ``parse``; record the message of a :class:`MoorageError` it raises."""
        try:
            parse()
        except MoorageError as e:
            self.error(str(e))


OptionsCheck = Callable[[CreateOptions, Findings], None]
ConfigCheck = Callable[[dict[str, Any], Findings], None]


# --- options ---------------------------------------------------------------


def check_name(name: str) -> None:
    """Raise :class:`InvalidArgument` unless ``name`` is a valid container name
    (``[a-zA-Z0-9][a-zA-Z0-9_.-]+``, optionally with Docker's leading ``/``)."""
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def check_options_name(options: CreateOptions, found: Findings) -> None:
    """``--name`` is a valid container name."""
    if options.name is not None:
        found.run(lambda: check_name(options.name or ""))


def check_restart(options: CreateOptions, found: Findings) -> None:
    """``--restart`` other than ``no`` cannot be combined with ``--rm``."""
    if options.auto_remove and options.restart.name != "no":
        found.error("Conflicting options: --restart and --rm")


def check_command(options: CreateOptions, found: Findings) -> None:
    """An explicit entrypoint or command may not hold non-strings."""
    for what, value in (("entrypoint", options.entrypoint), ("command", options.command)):
        if value is not None and not all(isinstance(a, str) for a in value):
            found.error(f"invalid {what}: every argument must be a string")


def check_memory(options: CreateOptions, found: Findings) -> None:
    """``--memory`` ≥ 6 MiB; ``--memory-swap`` needs ``--memory`` and is at least as big."""
    r = options.resources
    if r.memory is not None and r.memory < 0:
        found.error(f"invalid memory limit: {r.memory}")
    elif r.memory and r.memory < MIN_MEMORY:
        found.error("Minimum memory limit allowed is 6MB")
    swap = r.memory_swap
    if swap is not None and swap not in (0, -1):  # 0: unset, -1: unlimited
        if swap < 0:
            found.error(f"invalid memory swap limit: {swap}")
        elif not r.memory:
            found.error("You should always set the Memory limit when using Memoryswap limit, see usage")
        elif swap < r.memory:
            found.error("Minimum memoryswap limit should be larger than memory limit, see usage")


def check_cpu(options: CreateOptions, found: Findings) -> None:
    """CPU shares, CFS quota/period and cpuset syntax (Docker's bounds)."""
    r = options.resources
    if r.cpu_shares is not None:
        if r.cpu_shares < 0:
            found.error(f"invalid CPU shares ({r.cpu_shares}): value must be a positive integer")
        elif 0 < r.cpu_shares < MIN_CPU_SHARES:
            found.warn(f"CPU shares {r.cpu_shares} is below the minimum ({MIN_CPU_SHARES}); using {MIN_CPU_SHARES}")
        elif r.cpu_shares > MAX_CPU_SHARES:
            found.warn(f"CPU shares {r.cpu_shares} is above the maximum ({MAX_CPU_SHARES}); using {MAX_CPU_SHARES}")
    if r.cpu_quota is not None and 0 < r.cpu_quota < 1000:
        found.error("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.cpu_period is not None and r.cpu_period != 0 and not 1000 <= r.cpu_period <= 1_000_000:
        found.error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    for what, value in (("cpus", r.cpuset_cpus), ("mems", r.cpuset_mems)):
        if not value:
            continue
        wanted = parse_cpuset(value)
        if wanted is None:
            found.error(f"Invalid value {value} for cpuset {what}")
            continue
        online = _online(what)
        if online is not None and not wanted <= (parse_cpuset(online) or set()):
            kind = "CPUs" if what == "cpus" else "memory nodes"
            found.error(f"Requested {kind} are not available - requested {value}, available: {online}")


#: Where the host lists its CPUs and memory nodes (a unit test points these elsewhere).
ONLINE = {"cpus": "/sys/devices/system/cpu/online", "mems": "/sys/devices/system/node/online"}


def _online(what: str) -> str | None:
    try:
        with open(ONLINE[what]) as f:
            return f.read().strip() or None
    except OSError:
        return None


def parse_cpuset(value: str) -> set[int] | None:
    """The numbers in a cpuset list (``0-2,4``); None if it is malformed."""
    if not _CPUSET_RE.match(value):
        return None
    out: set[int] = set()
    for part in value.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if b < a:
            return None
        out.update(range(a, b + 1))
    return out


def check_workdir(options: CreateOptions, found: Findings) -> None:
    """``--workdir`` is absolute."""
    if options.workdir:
        found.run(lambda: process_cwd(options, {}))


def check_mounts(options: CreateOptions, found: Findings) -> None:
    """Every ``--volume`` and ``--tmpfs`` parses, with an absolute target."""
    for v in options.volumes:
        found.run(partial(parse_volume, v))
    for t in options.tmpfs:
        found.run(partial(parse_tmpfs, t))


def check_capabilities(options: CreateOptions, found: Findings) -> None:
    """``--cap-add``/``--cap-drop`` name real capabilities (or ``ALL``)."""
    for cap in [*options.cap_add, *options.cap_drop]:
        found.run(partial(normalize_capability, cap))
    if options.privileged and (options.cap_add or options.cap_drop):
        found.warn("--cap-add and --cap-drop are ignored with --privileged")


def check_ulimits(options: CreateOptions, found: Findings) -> None:
    """``--ulimit name=soft[:hard]`` syntax and soft ≤ hard."""
    for text in options.ulimits:
        found.run(partial(parse_ulimit, text))


def check_security_opts(options: CreateOptions, found: Findings) -> None:
    """``--security-opt`` keys; warn about what this host does not enforce."""
    try:
        secopts = parse_security_opts(options.security_opt)
    except MoorageError as e:
        found.error(str(e))
        return
    if secopts.apparmor not in (None, "unconfined"):
        found.warn(f"AppArmor is not supported by moorage; ignoring apparmor={secopts.apparmor}")
    if secopts.labels:
        found.warn("SELinux labels are not supported by moorage; ignoring label=...")
    if secopts.writable_cgroups:
        found.warn("writable-cgroups has no effect: moorage does not mount /sys/fs/cgroup yet")
    if options.privileged and secopts.profile and secopts.profile != "privileged":
        found.warn(f"--privileged overrides --security-opt profile={secopts.profile}")


def check_oom_score_adj(options: CreateOptions, found: Findings) -> None:
    """``--oom-score-adj`` in [-1000, 1000]."""
    v = options.oom_score_adj
    if v is not None and not -1000 <= v <= 1000:
        found.error(f"Invalid value {v}, range for oom score adj is [-1000, 1000]")


def check_stop_signal(options: CreateOptions, found: Findings) -> None:
    """``--stop-signal`` is a signal name (with or without SIG) or number."""
    text = options.stop_signal
    if not text:
        return
    if text.isdigit():
        ok = 0 < int(text) < signal.NSIG
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        ok = hasattr(signal.Signals, name) or name.startswith("SIGRTM")
    if not ok:
        found.error(f"Invalid signal: {text}")


def check_stop_timeout(options: CreateOptions, found: Findings) -> None:
    """``--stop-timeout`` is -1 (wait forever) or more."""
    if options.stop_timeout is not None and options.stop_timeout < -1:
        found.error(f"invalid stop timeout: {options.stop_timeout}")


def check_env(options: CreateOptions, found: Findings) -> None:
    """``--env`` entries have a name."""
    for entry in options.env:
        if not entry.partition("=")[0]:
            found.error(f"invalid environment variable: {entry}")


#: the option checks, in the order they run
OPTION_CHECKS: tuple[OptionsCheck, ...] = (
    check_options_name,
    check_restart,
    check_command,
    check_env,
    check_workdir,
    check_memory,
    check_cpu,
    check_mounts,
    check_capabilities,
    check_security_opts,
    check_ulimits,
    check_oom_score_adj,
    check_stop_signal,
    check_stop_timeout,
)


def check_options(options: CreateOptions) -> Findings:
    """Run every option check and return all findings."""
    found = Findings()
    for check in OPTION_CHECKS:
        check(options, found)
    return found


def validate_options(options: CreateOptions) -> list[str]:
    """Return the warnings for ``options``; raise :class:`InvalidArgument` on the first error."""
    found = check_options(options)
    if found.errors:
        raise InvalidArgument(found.errors[0])
    return found.warnings


# --- generated config ------------------------------------------------------


def check_config_root(config: dict[str, Any], found: Findings) -> None:
    """``ociVersion`` is set and ``root.path`` is absolute."""
    if not config.get("ociVersion"):
        found.error("config: ociVersion is missing")
    path = (config.get("root") or {}).get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        found.error(f"config: root.path must be an absolute path, got {path!r}")


def check_config_process(config: dict[str, Any], found: Findings) -> None:
    """``process.args`` is a non-empty list of strings; ``cwd`` is absolute; env is K=V."""
    process = config.get("process") or {}
    args = process.get("args")
    if not args or not all(isinstance(a, str) for a in args):
        found.error("config: process.args must be a non-empty list of strings")
    cwd = process.get("cwd")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        found.error(f"config: process.cwd must be an absolute path, got {cwd!r}")
    for entry in process.get("env") or []:
        if not isinstance(entry, str) or "=" not in entry or entry.startswith("="):
            found.error(f"config: invalid process.env entry {entry!r}")
    types = [r.get("type") for r in process.get("rlimits") or []]
    if len(types) != len(set(types)):
        found.error("config: duplicate rlimit type")


def check_config_capabilities(config: dict[str, Any], found: Findings) -> None:
    """Every capability in every set is a known ``CAP_*`` name."""
    caps = (config.get("process") or {}).get("capabilities") or {}
    for kind, names in caps.items():
        for name in names:
            if name not in CAPABILITIES:
                found.error(f"config: unknown capability {name!r} in {kind}")


def check_config_namespaces(config: dict[str, Any], found: Findings) -> None:
    """Namespace types are known and unique; a hostname needs a UTS namespace."""
    namespaces = (config.get("linux") or {}).get("namespaces") or []
    types = [ns.get("type") for ns in namespaces]
    for t in types:
        if t not in _NAMESPACES:
            found.error(f"config: unknown namespace type {t!r}")
    if len(types) != len(set(types)):
        found.error("config: duplicate namespace type")
    uts = [ns for ns in namespaces if ns.get("type") == "uts"]
    if config.get("hostname") and (not uts or uts[0].get("path")):
        found.error("config: unable to set hostname without a private UTS namespace")


def check_config_mounts(config: dict[str, Any], found: Findings) -> None:
    """Mount destinations are absolute; bind mounts have an absolute source."""
    for m in config.get("mounts") or []:
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/"):
            found.error(f"config: mount destination must be absolute, got {dest!r}")
        opts = m.get("options") or []
        if m.get("type") == "bind" or "bind" in opts or "rbind" in opts:
            src = m.get("source")
            if not isinstance(src, str) or not src.startswith("/"):
                found.error(f"config: bind mount source must be absolute, got {src!r}")


def check_config_paths(config: dict[str, Any], found: Findings) -> None:
    """Masked and read-only paths are absolute."""
    linux = config.get("linux") or {}
    for key in ("maskedPaths", "readonlyPaths"):
        for p in linux.get(key) or []:
            if not isinstance(p, str) or not p.startswith("/"):
                found.error(f"config: {key} entries must be absolute, got {p!r}")


def check_config_resources(config: dict[str, Any], found: Findings) -> None:
    """memory+swap is not below memory."""
    memory = ((config.get("linux") or {}).get("resources") or {}).get("memory") or {}
    limit, swap = memory.get("limit"), memory.get("swap")
    if limit and swap and swap != -1 and swap < limit:
        found.error("config: linux.resources.memory.swap is below the memory limit")


def check_config_seccomp(config: dict[str, Any], found: Findings) -> None:
    """Seccomp rules have string names and an action."""
    seccomp = (config.get("linux") or {}).get("seccomp")
    if seccomp is None:
        return
    if not seccomp.get("defaultAction"):
        found.error("config: linux.seccomp.defaultAction is missing")
    for rule in seccomp.get("syscalls") or []:
        names = rule.get("names")
        if not names or not all(isinstance(n, str) and n for n in names):
            found.error(f"config: seccomp rule with invalid names {names!r}")
        if not rule.get("action"):
            found.error(f"config: seccomp rule for {names!r} has no action")


#: the config checks, in the order they run
CONFIG_CHECKS: tuple[ConfigCheck, ...] = (
    check_config_root,
    check_config_process,
    check_config_capabilities,
    check_config_namespaces,
    check_config_mounts,
    check_config_paths,
    check_config_resources,
    check_config_seccomp,
)


def check_config(config: dict[str, Any]) -> Findings:
    """Run every config check and return all findings."""
    found = Findings()
    for check in CONFIG_CHECKS:
        check(config, found)
    return found


def validate_config(config: dict[str, Any]) -> list[str]:
    """Return the warnings for ``config``; raise :class:`InvalidArgument` on the first error."""
    found = check_config(config)
    if found.errors:
        raise InvalidArgument(found.errors[0])
    return found.warnings
