"""Protocol of a storage driver plugin.

A driver keeps layers (each made from a tar diff, on top of a parent layer)
and container root filesystems (a writable layer over a chain of layers).
Layer and container ids are opaque hex strings chosen by the engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from moorage.storage.changes import Change


class StorageDriver(Protocol):
    name: ClassVar[str]

    def __init__(self, home: Path) -> None:
        """``home`` is the directory the engine gives this driver (``<root>/storage/<name>``)."""

    def create_layer(self, layer_id: str, parent_id: str | None, tar_path: str) -> dict[str, Any]:
        """Apply a tar diff (plain/gzip/zstd) on top of ``parent_id`` as layer ``layer_id``.

        Returns ``_core.apply_layer``'s report (digest, diff_id, size, ...). On
        failure nothing of the layer is left behind."""
        ...

    def remove_layer(self, layer_id: str) -> None: ...

    def layer_exists(self, layer_id: str) -> bool: ...

    def layer_path(self, layer_id: str) -> str:
        """The layer's directory as this driver keeps it (its own changes, or a full tree)."""
        ...

    def prepare(self, container_id: str, layer_ids: list[str]) -> None:
        """Create the container's writable layer over ``layer_ids`` (bottom first)."""
        ...

    def mount(self, container_id: str, layer_ids: list[str]) -> str:
        """Mount (if not mounted) and return the container's root filesystem path."""
        ...

    def unmount(self, container_id: str) -> None:
        """Unmount the root filesystem; no error when it is not mounted."""
        ...

    def remove_container(self, container_id: str) -> None:
        """Unmount and delete the container's writable layer."""
        ...

    def rootfs_path(self, container_id: str) -> str: ...

    def changes(self, container_id: str, layer_ids: list[str]) -> list[Change]:
        """What the container changed over ``layer_ids`` (``diff``), sorted by path.

        :mod:`moorage.storage.changes` has helpers for upper dirs and full trees."""
        ...

    def diff(self, container_id: str, layer_ids: list[str], output: str) -> str:
        """Write the container's changes as a layer tar (whiteouts for deletions)
        to ``output`` (fsynced); return its diff_id (``sha256:…``)."""
        ...
