"""Helpers shared by the built-in drivers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def is_mounted(path: str | Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4 and _unescape(fields[4]) == target:
                return True
    return False


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def remove_tree(path: Path) -> None:
    """Delete a tree, refusing to cross into anything still mounted."""
    if not path.exists() and not path.is_symlink():
        return
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        prefix = os.path.realpath(path) + "/"
        for line in f:
            fields = line.split(" ", 5)
            if len(fields) > 4 and (_unescape(fields[4]) + "/").startswith(prefix):
                from moorage.errors import MoorageError

                raise MoorageError(f"refusing to delete {path}: {_unescape(fields[4])} is mounted")
    shutil.rmtree(path)
