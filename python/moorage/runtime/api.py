"""Protocol of an OCI runtime plugin: who executes the bundle."""

from __future__ import annotations

from typing import ClassVar, Protocol


class OciRuntime(Protocol):
    """An executable with runc's command line (create/start/state/kill/delete/exec/pause/resume).

    ``binary(runroot)`` returns its path, or raises when it is not usable;
    ``available()`` says whether it is installed here; ``global_args`` go
    before the verb (e.g. ``--systemd-cgroup``)."""

    name: ClassVar[str]
    global_args: ClassVar[tuple[str, ...]]

    def available(self) -> bool: ...

    def binary(self, runroot: str) -> str: ...
