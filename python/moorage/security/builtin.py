"""Built-in security profiles: ``default``, ``unconfined`` and ``privileged``.

A profile receives the config :func:`moorage.spec.generate.generate_config`
built (Docker's masked/read-only paths and device rules already in place)
and sets the capabilities and seccomp filter:

- ``default``: Docker's 14 capabilities adjusted by ``--cap-add``/``--cap-drop``;
  the default seccomp profile, or none with ``--security-opt seccomp=unconfined``,
  or the profile of ``--security-opt seccomp=FILE``; ``systempaths=unconfined``
  drops the masked and read-only paths;
- ``unconfined``: the same without any seccomp filter;
- ``privileged`` (``--privileged``): every capability the kernel has, no
  seccomp, no masked paths, ``/sys`` writable, every device allowed in the
  device cgroup. Unlike Docker, the host's device nodes are not copied into
  the container's /dev: the cgroup allows them, but the nodes must be created
  or bind-mounted explicitly.

Capabilities are put in the bounding, effective and permitted sets; the
inheritable and ambient sets stay empty (Docker 20.10+), so a non-root user
keeps no effective capability after the runtime's setuid.
"""

from __future__ import annotations

from typing import Any, ClassVar

from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl
from moorage.security.capabilities import (
    DEFAULT_CAPABILITIES,
    host_capabilities,
    tweak_capabilities,
)
from moorage.security.seccomp import load_profile, to_oci
from moorage.security.seccomp_default import default_profile
from moorage.spec.generate import SecurityOpts, parse_security_opts
from moorage.spec.options import CreateOptions


def set_capabilities(config: dict[str, Any], caps: list[str]) -> None:
    """Give the container process exactly ``caps`` (bounding, effective, permitted)."""
    config.setdefault("process", {})["capabilities"] = {
        "bounding": list(caps),
        "effective": list(caps),
        "permitted": list(caps),
        "inheritable": [],
        "ambient": [],
    }


def seccomp_for(secopts: SecurityOpts, caps: list[str]) -> dict[str, Any] | None:
    """The OCI seccomp object asked for by ``--security-opt seccomp=...`` (None: unconfined)."""
    choice = secopts.seccomp
    if choice == "unconfined":
        return None
    if choice in (None, "", "builtin", "default"):
        return to_oci(default_profile(), capabilities=caps)
    return to_oci(load_profile(choice), capabilities=caps)


class DefaultProfile:
    """Docker's default confinement: 14 capabilities, the default seccomp filter."""

    name: ClassVar[str] = "default"
    #: False in subclasses that never install a seccomp filter
    use_seccomp: ClassVar[bool] = True

    def apply(self, config: dict[str, Any], options: CreateOptions) -> None:
        """Set capabilities, seccomp and system paths on ``config`` for ``options``."""
        secopts = parse_security_opts(options.security_opt)
        caps = tweak_capabilities(DEFAULT_CAPABILITIES, options.cap_add, options.cap_drop)
        set_capabilities(config, caps)
        linux = config.setdefault("linux", {})
        seccomp = seccomp_for(secopts, caps) if self.use_seccomp else None
        if seccomp is None:
            linux.pop("seccomp", None)
        else:
            linux["seccomp"] = seccomp
        if secopts.systempaths_unconfined:
            linux.pop("maskedPaths", None)
            linux.pop("readonlyPaths", None)


class UnconfinedProfile(DefaultProfile):
    """The default capabilities and masked paths, without any seccomp filter."""

    name: ClassVar[str] = "unconfined"
    use_seccomp: ClassVar[bool] = False


class PrivilegedProfile:
    """``--privileged``: all capabilities, no seccomp, writable /sys, all devices."""

    name: ClassVar[str] = "privileged"

    def apply(self, config: dict[str, Any], options: CreateOptions) -> None:
        """Lift the confinement of ``config``; ``--cap-add``/``--cap-drop`` are ignored as in Docker."""
        set_capabilities(config, host_capabilities())
        linux = config.setdefault("linux", {})
        linux.pop("seccomp", None)
        linux.pop("maskedPaths", None)
        linux.pop("readonlyPaths", None)
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
        for mount in config.get("mounts", []):
            if mount.get("type") == "sysfs" or mount.get("destination") == "/sys/fs/cgroup":
                mount["options"] = [o for o in mount.get("options", []) if o != "ro"] + ["rw"]


@hookimpl
def moorage_register_security_profiles(register: Registry[Any]) -> None:
    """Register ``default``, ``unconfined`` and ``privileged``."""
    register.add(DefaultProfile)
    register.add(UnconfinedProfile)
    register.add(PrivilegedProfile)
