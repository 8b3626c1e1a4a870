"""Protocol of an init supervisor plugin."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from moorage.spec.options import CreateOptions


class InitSupervisor(Protocol):
    """Rewrites ``process.args`` (and adds mounts) so that an init runs as PID 1.

    ``runtime_binary`` is the host path of moorage's static runtime binary,
    which doubles as a reaper when started as ``/dev/init``."""

    name: ClassVar[str]

    def apply(self, config: dict[str, Any], options: CreateOptions, runtime_binary: str) -> None: ...
