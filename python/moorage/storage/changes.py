"""Computing a container's changes for storage drivers: the A/C/D list and
the layer tar of those changes.

Overlay-style drivers read their upper dir (:func:`overlay_changes`: 0/0
character devices are deletions, an opaque directory hides what the layers
below held in it); full-copy drivers compare two trees the way Docker's
``ChangesDirs`` does (:func:`tree_changes`) and write the layer with
:func:`write_tree_diff` (``tarfile``; whiteouts as ``.wh.NAME``; xattrs as
PAX ``SCHILY.xattr.*`` records, so file capabilities survive). Empty mount
targets the runtime created (:data:`MOUNT_TARGETS`) are in neither the change
list nor the layer tar. Third-party drivers may use these too."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tarfile  # imported where a diff is written: not on every container start

#: Docker API ``Kind`` values.
MODIFIED, ADDED, DELETED = 0, 1, 2
KIND_LETTER = {MODIFIED: "C", ADDED: "A", DELETED: "D"}
#: Empty files the runtime creates as bind-mount targets (Docker keeps them
#: in its "-init" layer, so they are never part of a diff).
MOUNT_TARGETS = {"etc/hosts", "etc/hostname", "etc/resolv.conf"}
#: sha256 of an empty tar (two zero blocks): Docker's ``empty_layer``.
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass
class Change:
    path: str  #: relative, no leading slash
    kind: int

    def as_api(self) -> dict[str, Any]:
        return {"Path": "/" + self.path, "Kind": self.kind}


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _in_lowers(lowers: list[Path], rel: str) -> os.stat_result | None:
    """``rel`` as the overlay of ``lowers`` (topmost first) shows it, or None."""
    parts = rel.split("/")
    for layer in lowers:
        cur = layer
        hidden_below = False
        for i, part in enumerate(parts):
            cur = cur / part
            st = _lstat(cur)
            if st is None:
                break
            if _is_whiteout(st):
                return None
            if i == len(parts) - 1:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None  # a file in this layer hides everything below its name
            if _is_opaque(cur):
                hidden_below = True
        if hidden_below:
            return None
    return None


def _lower_children(lowers: list[Path], rel: str) -> set[str]:
    """Names in directory ``rel`` of the lower overlay."""
    names: set[str] = set()
    gone: set[str] = set()
    for layer in lowers:
        d = layer / rel
        st = _lstat(d)
        if st is None or not stat.S_ISDIR(st.st_mode):
            continue
        for entry in os.scandir(d):
            if entry.name in names or entry.name in gone:
                continue
            (gone if _is_whiteout(entry.stat(follow_symlinks=False)) else names).add(entry.name)
        if _is_opaque(d):
            break
    return names


def _same_owner_mode(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_mode == b.st_mode and a.st_uid == b.st_uid and a.st_gid == b.st_gid


def _same_file(a: os.stat_result, b: os.stat_result, pa: Path, pb: Path) -> bool:
    """Docker's ChangesDirs test: directories by mode/owner only; the rest also by
    device, size, mtime (and the link target)."""
    if not _same_owner_mode(a, b):
        return False
    if stat.S_ISDIR(a.st_mode):
        return True
    if a.st_rdev != b.st_rdev or a.st_size != b.st_size or a.st_mtime_ns != b.st_mtime_ns:
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(pa) == os.readlink(pb)
    return True


def _is_mount_target(rel: str, st: os.stat_result) -> bool:
    return rel in MOUNT_TARGETS and stat.S_ISREG(st.st_mode) and st.st_size == 0


def runtime_mount_targets(upper: Path, lowers: list[Path]) -> list[str]:
    """The :data:`MOUNT_TARGETS` in the overlay upper ``upper`` that the runtime
    created: empty regular files no layer in ``lowers`` (topmost first) has.
    ``_core.diff_layer`` is given these as ``exclude``."""
    out = []
    for rel in sorted(MOUNT_TARGETS):
        st = _lstat(upper / rel)
        if st is not None and _is_mount_target(rel, st) and _in_lowers(lowers, rel) is None:
            out.append(rel)
    return out


def _sorted_entries(d: Path) -> list[os.DirEntry[str]]:
    return sorted(os.scandir(d), key=lambda e: e.name.encode())


def overlay_changes(upper: Path, lowers: list[Path]) -> list[Change]:
    out: list[Change] = []

    def walk(rel_dir: str) -> bool:
        changed = False
        for entry in _sorted_entries(upper / rel_dir if rel_dir else upper):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            if _is_whiteout(st):
                out.append(Change(rel, DELETED))
                changed = True
                continue
            lower = _in_lowers(lowers, rel)
            if lower is None and _is_mount_target(rel, st):
                continue
            if stat.S_ISDIR(st.st_mode):
                at = len(out)
                out.append(Change(rel, ADDED if lower is None else MODIFIED))
                below = False
                if lower is not None and stat.S_ISDIR(lower.st_mode) and _is_opaque(upper / rel):
                    present = {e.name for e in os.scandir(upper / rel)}
                    for name in sorted(_lower_children(lowers, rel) - present, key=str.encode):
                        out.append(Change(f"{rel}/{name}", DELETED))
                        below = True
                below = walk(rel) or below
                if lower is not None and stat.S_ISDIR(lower.st_mode) and not below and _same_owner_mode(st, lower):
                    del out[at]  # copied up for a child that turned out to be no change
                    continue
            else:
                out.append(Change(rel, ADDED if lower is None else MODIFIED))
            changed = True
        return changed

    walk("")
    return _sort(out)


def tree_changes(old: Path, new: Path) -> list[Change]:
    """Compare two full trees (vfs: the image's top layer and the container rootfs)."""
    out: list[Change] = []

    def added(rel: str, path: Path) -> None:
        out.append(Change(rel, ADDED))
        if path.is_dir() and not path.is_symlink():
            for e in _sorted_entries(path):
                added(f"{rel}/{e.name}", path / e.name)

    def walk(rel_dir: str) -> bool:
        changed = False
        o, n = old / rel_dir, new / rel_dir
        old_names = {e.name for e in os.scandir(o)}
        for entry in _sorted_entries(n):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            if entry.name not in old_names:
                if _is_mount_target(rel, st):
                    continue
                added(rel, n / entry.name)
                changed = True
                continue
            ost = os.lstat(o / entry.name)
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(ost.st_mode):
                at = len(out)
                out.append(Change(rel, MODIFIED))
                if not walk(rel) and _same_owner_mode(st, ost):
                    del out[at]
                    continue
                changed = True
            elif stat.S_ISDIR(st.st_mode):
                out.append(Change(rel, MODIFIED))
                for e in _sorted_entries(n / entry.name):
                    added(f"{rel}/{e.name}", n / entry.name / e.name)
                changed = True
            elif not _same_file(st, ost, n / entry.name, o / entry.name):
                out.append(Change(rel, MODIFIED))
                changed = True
        new_names = {e.name for e in os.scandir(n)}
        for name in sorted(old_names - new_names, key=str.encode):
            out.append(Change(f"{rel_dir}/{name}" if rel_dir else name, DELETED))
            changed = True
        return changed

    walk("")
    return _sort(out)


def _sort(changes: list[Change]) -> list[Change]:
    # Docker's changesByPath: plain byte order of the paths.
    return sorted(changes, key=lambda c: ("/" + c.path).encode())


def _xattr_exported(name: str) -> bool:
    # As diff_layer: overlay's bookkeeping means nothing in a layer; SELinux
    # labels belong to the host that wrote them.
    return name != "security.selinux" and not name.startswith("trusted.overlay.")


def _xattr_records(path: Path) -> dict[str, str]:
    """``SCHILY.xattr.*`` PAX records for the xattrs of ``path`` (not followed).
    Values are bytes kept as surrogate-escaped text: tarfile then writes them
    back byte for byte (under ``hdrcharset=BINARY`` when not UTF-8)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):  # no xattrs here (e.g. tmpfs symlinks)
            return {}
        raise
    out = {}
    for name in sorted(names):
        if not _xattr_exported(name):
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENODATA:  # removed since listed
                continue
            raise
        out[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return out


def _tar_info(tar: tarfile.TarFile, path: Path, arcname: str) -> tarfile.TarInfo | None:
    ti = tar.gettarinfo(str(path), arcname)
    if ti is None:  # sockets: not archivable (Docker skips them too)
        return None
    ti.uname = ti.gname = ""
    ti.mtime = int(ti.mtime)
    ti.pax_headers = _xattr_records(path)
    return ti


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    ti = _tar_info(tar, path, arcname)
    if ti is None:
        return
    if ti.isreg():
        with open(path, "rb") as f:
            tar.addfile(ti, f)
    else:
        tar.addfile(ti)


def write_tree_diff(rootfs: Path, changes: list[Change], output: Path) -> None:
    """The layer tar of ``changes`` (from :func:`tree_changes`), fsynced."""
    import tarfile

    with open(output, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          errors="surrogateescape") as tar:
            for c in changes:
                if c.kind == DELETED:
                    parent, _, name = c.path.rpartition("/")
                    ti = tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}")
                    ti.mode = 0o600
                    tar.addfile(ti)
                else:
                    _add(tar, rootfs / c.path, c.path)
        f.flush()
        os.fsync(f.fileno())


