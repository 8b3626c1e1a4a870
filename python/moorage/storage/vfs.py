"""The ``vfs`` storage driver: every layer and every container rootfs is a
full copy of the tree. Slow and large, but works on any filesystem (no
overlayfs needed), which is why Docker and Podman keep one too."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, ClassVar

from moorage import _core
from moorage.errors import MoorageError
from moorage.plugin.manager import Registry
from moorage.plugin.markers import hookimpl
from moorage.storage._common import remove_tree
from moorage.storage.changes import Change, tree_changes, write_tree_diff


def _copy_tree(src: Path, dst: Path) -> None:
    # GNU cp keeps owners, modes, devices, xattrs and hard links in one pass;
    # shutil.copytree keeps none of owners, devices or hard links.
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise MoorageError(f"copying {src} to {dst}: {proc.stderr.strip()}")


class VfsDriver:
    name: ClassVar[str] = "vfs"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.layers = home / "layers"
        self.containers = home / "containers"

    def create_layer(self, layer_id: str, parent_id: str | None, tar_path: str) -> dict[str, Any]:
        tmp = self.layers / f".{layer_id}.tmp"
        remove_tree(tmp)
        tmp.mkdir(parents=True)
        try:
            if parent_id:
                _copy_tree(self.layers / parent_id, tmp)
            report: dict[str, Any] = _core.apply_layer(tar_path, str(tmp), "vfs")
            tmp.rename(self.layers / layer_id)
        except BaseException:
            remove_tree(tmp)
            raise
        return report

    def remove_layer(self, layer_id: str) -> None:
        remove_tree(self.layers / layer_id)

    def layer_exists(self, layer_id: str) -> bool:
        return (self.layers / layer_id).is_dir()

    def layer_path(self, layer_id: str) -> str:
        return str(self.layers / layer_id)

    def prepare(self, container_id: str, layer_ids: list[str]) -> None:
        rootfs = self.containers / container_id / "rootfs"
        if rootfs.exists():
            return
        tmp = self.containers / container_id / ".rootfs.tmp"
        remove_tree(tmp)
        tmp.mkdir(parents=True)
        if layer_ids:
            _copy_tree(self.layers / layer_ids[-1], tmp)
        tmp.rename(rootfs)

    def rootfs_path(self, container_id: str) -> str:
        return str(self.containers / container_id / "rootfs")

    def mount(self, container_id: str, layer_ids: list[str]) -> str:
        self.prepare(container_id, layer_ids)
        return self.rootfs_path(container_id)

    def changes(self, container_id: str, layer_ids: list[str]) -> list[Change]:
        return tree_changes(self._base(layer_ids), Path(self.rootfs_path(container_id)))

    def diff(self, container_id: str, layer_ids: list[str], output: str) -> str:
        rootfs = Path(self.rootfs_path(container_id))
        write_tree_diff(rootfs, tree_changes(self._base(layer_ids), rootfs), Path(output))
        return str(_core.sha256_file(output))

    def _base(self, layer_ids: list[str]) -> Path:
        """The image's full tree (its top layer), or an empty dir for an image without layers."""
        if layer_ids:
            return self.layers / layer_ids[-1]
        empty = self.home / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        return empty

    def unmount(self, container_id: str) -> None:
        return None

    def remove_container(self, container_id: str) -> None:
        remove_tree(self.containers / container_id)


@hookimpl
def moorage_register_storage_drivers(register: Registry[Any]) -> None:
    register.add(VfsDriver)
