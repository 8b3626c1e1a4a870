"""The ``overlay`` storage driver (default): each layer is a directory of its
diff with overlay whiteouts; a container is an overlay mount of the layer
chain plus its own upper dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from moorage import _core
from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl
from moorage.storage._common import is_mounted, remove_tree
from moorage.storage.changes import Change, overlay_changes, runtime_mount_targets


class OverlayDriver:
    name: ClassVar[str] = "overlay"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.layers = home / "layers"
        self.containers = home / "containers"

    def _diff(self, layer_id: str) -> Path:
        return self.layers / layer_id / "diff"

    def create_layer(self, layer_id: str, parent_id: str | None, tar_path: str) -> dict[str, Any]:
        tmp = self.layers / f".{layer_id}.tmp"
        remove_tree(tmp)
        (tmp / "diff").mkdir(parents=True)
        try:
            report: dict[str, Any] = _core.apply_layer(tar_path, str(tmp / "diff"), "overlay")
            if parent_id:
                (tmp / "parent").write_text(parent_id)
            os.rename(tmp, self.layers / layer_id)
        except BaseException:
            remove_tree(tmp)
            raise
        return report

    def remove_layer(self, layer_id: str) -> None:
        remove_tree(self.layers / layer_id)

    def layer_exists(self, layer_id: str) -> bool:
        return self._diff(layer_id).is_dir()

    def layer_path(self, layer_id: str) -> str:
        return str(self._diff(layer_id))

    def prepare(self, container_id: str, layer_ids: list[str]) -> None:
        base = self.containers / container_id
        for sub in ("upper", "work", "merged"):
            (base / sub).mkdir(parents=True, exist_ok=True)

    def rootfs_path(self, container_id: str) -> str:
        return str(self.containers / container_id / "merged")

    def upper_path(self, container_id: str) -> str:
        return str(self.containers / container_id / "upper")

    def mount(self, container_id: str, layer_ids: list[str]) -> str:
        base = self.containers / container_id
        merged = base / "merged"
        if is_mounted(merged):
            return str(merged)
        lower = [str(self._diff(lid)) for lid in reversed(layer_ids)]
        _core.mount_overlay(lower, str(base / "upper"), str(base / "work"), str(merged), False)
        return str(merged)

    def changes(self, container_id: str, layer_ids: list[str]) -> list[Change]:
        lowers = [self._diff(lid) for lid in reversed(layer_ids)]
        return overlay_changes(Path(self.upper_path(container_id)), lowers)

    def diff(self, container_id: str, layer_ids: list[str], output: str) -> str:
        upper = self.upper_path(container_id)
        # The empty /etc/hosts & co. the runtime made as bind-mount targets are
        # not the container's changes (Docker keeps them in its "-init" layer).
        lowers = [self._diff(lid) for lid in reversed(layer_ids)]
        exclude = runtime_mount_targets(Path(upper), lowers)
        return str(_core.diff_layer(upper, output, exclude)["diff_id"])

    def unmount(self, container_id: str) -> None:
        merged = self.containers / container_id / "merged"
        if is_mounted(merged):
            _core.unmount(str(merged), True)

    def remove_container(self, container_id: str) -> None:
        self.unmount(container_id)
        remove_tree(self.containers / container_id)


@hookimpl
def moorage_register_storage_drivers(register: Registry[Any]) -> None:
    register.add(OverlayDriver)
