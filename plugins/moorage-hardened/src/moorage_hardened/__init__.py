"""A 'hardened' security profile for moorage, as a separately installed plugin."""

from __future__ import annotations

from typing import Any, ClassVar

from moorage.plugin import hookimpl
from moorage.security.builtin import DefaultProfile
from moorage.spec.options import CreateOptions

EXTRA_DROPS = ("NET_RAW", "MKNOD", "SETFCAP", "SETPCAP", "AUDIT_WRITE", "SYS_CHROOT")


class HardenedProfile(DefaultProfile):
    """Docker's default confinement, minus six capabilities, plus no_new_privs."""

    name: ClassVar[str] = "hardened"

    def apply(self, config: dict[str, Any], options: CreateOptions) -> None:
        super().apply(config, options)
        caps = config["process"]["capabilities"]
        for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            caps[key] = [c for c in caps.get(key, []) if c.removeprefix("CAP_") not in EXTRA_DROPS]
        config["process"]["noNewPrivileges"] = True


@hookimpl
def moorage_register_security_profiles(register: Any) -> None:
    register.add(HardenedProfile)
