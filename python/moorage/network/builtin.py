"""Built-in network modes ``none`` (a private network namespace with only
loopback) and ``host`` (the host's network namespace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl


def _set_netns(config: dict[str, Any], path: str | None, remove: bool = False) -> None:
    linux = config.setdefault("linux", {})
    namespaces = [ns for ns in linux.get("namespaces", []) if ns.get("type") != "network"]
    if not remove:
        entry: dict[str, str] = {"type": "network"}
        if path:
            entry["path"] = path
        namespaces.append(entry)
    linux["namespaces"] = namespaces


class NoneNetwork:
    """A new, empty network namespace: the container sees only ``lo``."""

    name: ClassVar[str] = "none"

    def configure(self, config: dict[str, Any], container_dir: Path, arg: str | None) -> None:
        _set_netns(config, None)

    def setup(self, container_id: str, pid: int, arg: str | None) -> None:
        return None

    def teardown(self, container_id: str, arg: str | None) -> None:
        return None


class HostNetwork:
    """The host's network namespace; /etc/hosts and resolv.conf from the host."""

    name: ClassVar[str] = "host"

    def configure(self, config: dict[str, Any], container_dir: Path, arg: str | None) -> None:
        _set_netns(config, None, remove=True)
        # sysfs can only be mounted by the owner of the network namespace:
        # without a netns of its own the container gets the host's /sys (read-only).
        for m in config.get("mounts", []):
            if m.get("type") == "sysfs":
                ro = "ro" in m.get("options", [])
                m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev"] + (["ro"] if ro else []))
        for name in ("hosts", "resolv.conf"):
            src = Path("/etc") / name
            if src.is_file():
                (container_dir / name).write_bytes(src.read_bytes())

    def setup(self, container_id: str, pid: int, arg: str | None) -> None:
        return None

    def teardown(self, container_id: str, arg: str | None) -> None:
        return None


@hookimpl
def moorage_register_network_modes(register: Registry[Any]) -> None:
    register.add(NoneNetwork)
    register.add(HostNetwork)
