"""Protocol of a network mode plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol


class NetworkMode(Protocol):
    """Sets up and tears down a container's network.

    ``configure`` edits the OCI config before create (namespaces, hostname
    files); ``setup`` runs after the container process exists (its pid known)
    and before start; ``teardown`` after it stopped. ``arg`` is what follows
    ``name:`` in ``--network name:arg`` (or ``None``)."""

    name: ClassVar[str]

    def configure(self, config: dict[str, Any], container_dir: Path, arg: str | None) -> None: ...

    def setup(self, container_id: str, pid: int, arg: str | None) -> None: ...

    def teardown(self, container_id: str, arg: str | None) -> None: ...
