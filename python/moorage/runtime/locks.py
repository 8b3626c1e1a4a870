"""Per-object advisory locks (flock on files under the runroot), so that
concurrent moorage processes serialize start/stop/remove of one container."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(lock_dir: Path, name: str, blocking: bool = True) -> Iterator[None]:
    """Hold the lock ``name``; with ``blocking=False`` raise BlockingIOError if it is taken."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)
