"""Docker-format seccomp profiles → the OCI runtime spec's ``linux.seccomp``.

Docker profiles carry conditions the OCI form has not: ``archMap`` (pick the
architectures for the host), and per-rule ``includes``/``excludes`` on
capabilities, architectures and kernel version. :func:`to_oci` evaluates them
for one container (its bounding set, the host's architecture and kernel) and
drops them, like dockerd does before handing the spec to runc. A profile that
is already in OCI form passes through unchanged.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable
from typing import Any

from moorage.errors import InvalidArgument

#: ``uname -m`` → the Go architecture names Docker profiles use
_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

#: Go architecture name → libseccomp's name for it
_SCMP_ARCH = {
    "amd64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "x32": "SCMP_ARCH_X32",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "s390": "SCMP_ARCH_S390",
    "riscv64": "SCMP_ARCH_RISCV64",
}

#: keys of an OCI ``linux.seccomp`` object copied from the profile as they are
_PASSTHROUGH = ("defaultAction", "defaultErrnoRet", "flags", "listenerPath", "listenerMetadata")


def host_arch() -> str:
    """Return the host architecture as Docker profiles name it (``amd64``, ``arm64`` ...)."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def host_kernel() -> tuple[int, int]:
    """Return the running kernel's (major, minor) version."""
    return parse_kernel_version(os.uname().release)


def parse_kernel_version(text: str) -> tuple[int, int]:
    """Parse ``"6.1.0-13-amd64"`` or ``"4.8"`` into ``(6, 1)`` / ``(4, 8)``."""
    parts: list[int] = []
    for piece in text.split(".")[:2]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            raise InvalidArgument(f"invalid kernel version {text!r}")
        parts.append(int(digits))
    while len(parts) < 2:
        parts.append(0)
    return parts[0], parts[1]


def _architectures(profile: dict[str, Any], arch: str) -> list[str]:
    explicit = profile.get("architectures") or []
    arch_map = profile.get("archMap") or []
    if explicit and arch_map:
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    if explicit:
        return [str(a) for a in explicit]
    native = _SCMP_ARCH.get(arch)
    if native is None:
        return []
    for entry in arch_map:
        if entry.get("architecture") == native:
            return [native, *(str(a) for a in entry.get("subArchitectures") or [])]
    return []


def _rule_applies(
    rule: dict[str, Any], caps: set[str], arch: str, kernel: tuple[int, int]
) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(c not in caps for c in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and kernel < parse_kernel_version(includes["minKernel"]):
        return False
    if excludes.get("arches") and arch in excludes["arches"]:
        return False
    if any(c in caps for c in excludes.get("caps") or []):
        return False
    min_kernel = excludes.get("minKernel")
    return not (min_kernel and kernel >= parse_kernel_version(min_kernel))


def to_oci(
    profile: dict[str, Any],
    *,
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Return the OCI ``linux.seccomp`` object for ``profile`` (Docker format).

    ``capabilities`` is the container's bounding set (``CAP_*`` names); ``arch``
    (Go name) and ``kernel`` default to the host's."""
    if not isinstance(profile, dict) or "defaultAction" not in profile:
        raise InvalidArgument("seccomp profile has no defaultAction")
    arch = arch or host_arch()
    kernel = kernel or host_kernel()
    caps = set(capabilities)
    out: dict[str, Any] = {k: profile[k] for k in _PASSTHROUGH if profile.get(k) is not None}
    architectures = _architectures(profile, arch)
    if architectures:
        out["architectures"] = architectures
    syscalls: list[dict[str, Any]] = []
    for rule in profile.get("syscalls") or []:
        if rule.get("name") and rule.get("names"):
            raise InvalidArgument(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
            )
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not names or not _rule_applies(rule, caps, arch, kernel):
            continue
        if "action" not in rule:
            raise InvalidArgument(f"seccomp rule for {names[0]!r} has no action")
        oci: dict[str, Any] = {"names": [str(n) for n in names], "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            oci["errnoRet"] = int(rule["errnoRet"])
        if rule.get("args"):
            oci["args"] = [_oci_arg(a) for a in rule["args"]]
        syscalls.append(oci)
    out["syscalls"] = syscalls
    return out


def _oci_arg(arg: dict[str, Any]) -> dict[str, Any]:
    try:
        out: dict[str, Any] = {"index": int(arg["index"]), "value": int(arg["value"]), "op": str(arg["op"])}
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument(f"invalid seccomp argument condition {arg!r}") from None
    if arg.get("valueTwo"):
        out["valueTwo"] = int(arg["valueTwo"])
    return out


def load_profile(path: str) -> dict[str, Any]:
    """Read a seccomp profile (Docker or OCI format) from a JSON file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InvalidArgument(f"opening seccomp profile ({path}) failed: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"decoding seccomp profile ({path}) failed: not a JSON object")
    return data
