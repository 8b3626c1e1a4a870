"""Built-in init supervisors: ``none`` and ``builtin``.

``builtin`` makes moorage's static runtime binary the container's PID 1, the
way Docker uses tini as ``/sbin/docker-init``: the binary is bind-mounted
read-only at ``/dev/init`` (on the container's fresh /dev tmpfs, so nothing in
the image is shadowed) and, started under that name, it forwards signals to
its child and reaps orphans.
"""

from __future__ import annotations

from typing import Any, ClassVar

from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl
from moorage.spec.options import CreateOptions

INIT_PATH = "/dev/init"


class NoInit:
    """Leaves the config alone: the command itself is PID 1."""

    name: ClassVar[str] = "none"

    def apply(self, config: dict[str, Any], options: CreateOptions, runtime_binary: str) -> None:
        """Do nothing."""


class BuiltinInit:
    """Runs the command under moorage's runtime binary acting as ``/dev/init``."""

    name: ClassVar[str] = "builtin"

    def apply(self, config: dict[str, Any], options: CreateOptions, runtime_binary: str) -> None:
        """Mount ``runtime_binary`` at ``/dev/init`` and prefix ``process.args`` with it."""
        mounts = [m for m in config.get("mounts", []) if m.get("destination") != INIT_PATH]
        mounts.append(
            {"destination": INIT_PATH, "type": "bind", "source": runtime_binary, "options": ["bind", "ro"]}
        )
        config["mounts"] = mounts
        process = config.setdefault("process", {})
        process["args"] = [INIT_PATH, "--", *process.get("args", [])]


@hookimpl
def moorage_register_init_supervisors(register: Registry[Any]) -> None:
    """Register ``none`` and ``builtin``."""
    register.add(NoInit)
    register.add(BuiltinInit)
