"""A container's changes against its image: ``diff`` (the A/C/D list),
``commit`` (the changes as a new layer on the image) and ``export`` (a tar of
the whole flattened root filesystem).

Overlay: the changes are the upper dir (0/0 character devices are deletions,
an opaque directory hides everything the layers below held in it); the
layer tar comes from ``_core.diff_layer``. vfs: the container's rootfs is
compared with the image's top layer (a full tree) the way Docker's
``ChangesDirs`` does, and the layer tar is written here with ``tarfile``
(whiteouts as ``.wh.NAME``; xattrs are not carried: a vfs commit loses file
capabilities)."""

from __future__ import annotations

import copy
import json
import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from moorage.errors import MoorageError
from moorage.image.store import Image, LayerInput

if TYPE_CHECKING:
    from moorage.engine import Context
    from moorage.runtime.containers import ContainerManager, ContainerRecord

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


# ---------------------------------------------------------------- containers
def _layer_dirs(ctx: Context, rec: ContainerRecord) -> list[Path]:
    """The image's layer directories for the container's driver, topmost first."""
    image = ctx.images.get(rec.image_id)
    driver = ctx.driver(rec.driver)
    ids = ctx.images.layer_cache_ids(image.layers, rec.driver, driver)
    return [Path(driver.layer_path(i)) for i in reversed(ids)]


def container_changes(ctx: Context, rec: ContainerRecord) -> list[Change]:
    driver = ctx.driver(rec.driver)
    lowers = _layer_dirs(ctx, rec)
    if hasattr(driver, "upper_path"):
        return overlay_changes(Path(driver.upper_path(rec.id)), lowers)
    base = lowers[0] if lowers else ctx.root / "tmp" / "empty-rootfs"
    base.mkdir(parents=True, exist_ok=True)
    return tree_changes(base, Path(driver.rootfs_path(rec.id)))


def _tar_info(tar: tarfile.TarFile, path: Path, arcname: str) -> tarfile.TarInfo | None:
    ti = tar.gettarinfo(str(path), arcname)
    if ti is None:  # sockets: not archivable (Docker skips them too)
        return None
    ti.uname = ti.gname = ""
    ti.mtime = int(ti.mtime)
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
    with open(output, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
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


def commit_config(parent: Image, rec: ContainerRecord, changes: list[str], author: str | None,
                  message: str | None, diff_id: str | None) -> dict[str, Any]:
    """The new image's config: the parent's, with the container's runtime
    config (Env, Cmd, Entrypoint, WorkingDir, User, Labels) and then
    ``changes`` applied, one more history entry and, unless the diff is
    empty, one more diff_id."""
    from moorage.image.importer import apply_changes

    cfg = copy.deepcopy(parent.config)
    img_cfg = dict(cfg.get("config") or {})
    opts = rec.options
    wanted = {e.split("=", 1)[0] for e in (img_cfg.get("Env") or [])}
    wanted |= {e.split("=", 1)[0] for e in opts.env} | {"PATH"}
    env = [e for e in rec.config.get("Env") or [] if e.split("=", 1)[0] in wanted]
    img_cfg["Env"] = env
    if rec.config.get("Cmd") is not None:
        img_cfg["Cmd"] = rec.config["Cmd"]
    if opts.entrypoint is not None:
        img_cfg["Entrypoint"] = rec.config.get("Entrypoint") or None
    if opts.workdir:
        img_cfg["WorkingDir"] = opts.workdir
    if rec.config.get("User"):
        img_cfg["User"] = rec.config["User"]
    labels = rec.config.get("Labels") or {}
    if labels:
        img_cfg["Labels"] = labels
    if opts.stop_signal:
        img_cfg["StopSignal"] = opts.stop_signal
    cfg["config"] = apply_changes(img_cfg, changes)
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
    cfg["created"] = now
    cfg["container"] = rec.id
    if author:
        cfg["author"] = author
    else:
        cfg.pop("author", None)
    entry: dict[str, Any] = {
        "created": now,
        "created_by": " ".join([rec.config.get("Path", ""), *(rec.config.get("Args") or [])]).strip(),
    }
    if author:
        entry["author"] = author
    if message:
        entry["comment"] = message
    rootfs = dict(cfg.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or [])
    if diff_id is None:
        entry["empty_layer"] = True
    else:
        rootfs["diff_ids"].append(diff_id)
    cfg["rootfs"] = rootfs
    cfg["history"] = [*(cfg.get("history") or []), entry]
    return cfg


def commit(ctx: Context, mgr: ContainerManager, ref: str, target: str | None = None,
           message: str | None = None, author: str | None = None, changes: list[str] | None = None,
           pause: bool = True) -> Image:
    """``docker commit``: the container's changes as a new image."""
    from moorage.image import reference

    if target:
        parsed = reference.parse(target)
        if parsed.digest:
            raise MoorageError("invalid reference format: a digest cannot be a commit target")
    rec = mgr.get(ref)
    if rec.state in ("removing", "dead"):
        raise MoorageError(f"cannot commit container {rec.name}: it is {rec.state}")
    from moorage.image.importer import apply_changes

    apply_changes({}, changes or [])  # bad -c: fail before any work
    paused = False
    if pause and rec.state == "running":
        mgr.pause(rec.id)
        paused = True
    try:
        return _commit_paused(ctx, mgr, rec, target, message, author, changes or [])
    finally:
        if paused:
            mgr.unpause(rec.id)


def _commit_paused(ctx: Context, mgr: ContainerManager, rec: ContainerRecord, target: str | None,
                   message: str | None, author: str | None, changes: list[str]) -> Image:
    from moorage import _core

    store = ctx.images
    parent = store.get(rec.image_id)
    driver = ctx.driver(rec.driver)
    tmp, f = store.blobs.temp_file()
    f.close()
    try:
        with store.gc_lock():
            lowers = _layer_dirs(ctx, rec)
            if hasattr(driver, "upper_path"):
                diff_id = _core.diff_layer(driver.upper_path(rec.id), str(tmp))["diff_id"]
            else:
                base = lowers[0]
                rootfs = Path(driver.rootfs_path(rec.id))
                write_tree_diff(rootfs, tree_changes(base, rootfs), tmp)
                diff_id = _core.sha256_file(str(tmp))
            empty = diff_id == EMPTY_TAR_DIFF_ID
            cfg = commit_config(parent, rec, changes, author, message, None if empty else diff_id)
            inputs: list[LayerInput] = []
            for chain in parent.layers:
                row = store.db.one("SELECT digest FROM layers WHERE chain_id=? AND driver=?", (chain, rec.driver))
                if row is None or not row["digest"]:
                    raise MoorageError(f"layer {chain} of image {parent.short_id} is missing its blob")
                inputs.append(LayerInput(store.blobs.path(row["digest"]), row["digest"]))
            if not empty:
                inputs.append(LayerInput(tmp, diff_id, adopt=True))
            config_bytes = json.dumps(cfg, separators=(",", ":")).encode()
            return store.add_image(driver, rec.driver, inputs, config_bytes, target)
    finally:
        tmp.unlink(missing_ok=True)


# -------------------------------------------------------------------- export
class _Sink:
    """A write-only file object that hands out what was written so far."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _walk_tree(root: Path) -> Iterator[tuple[Path, str]]:
    for entry in _sorted_entries(root):
        yield Path(entry.path), entry.name
        if entry.is_dir(follow_symlinks=False):
            for p, rel in _walk_tree(Path(entry.path)):
                yield p, f"{entry.name}/{rel}"


def export_chunks(ctx: Context, mgr: ContainerManager, ref: str) -> Iterator[bytes]:
    """The container's flattened root filesystem as a tar stream (mounted for
    the time of the export when the container is not running)."""
    from moorage.runtime.containers import ACTIVE
    from moorage.storage._common import is_mounted

    rec = mgr.get(ref)
    driver = ctx.driver(rec.driver)
    with mgr.lock(rec.id) if rec.state not in ACTIVE else _nolock():
        rootfs = Path(driver.rootfs_path(rec.id))
        mounted_here = False
        if not is_mounted(rootfs) and hasattr(driver, "upper_path"):
            image = ctx.images.get(rec.image_id)
            driver.mount(rec.id, ctx.images.layer_cache_ids(image.layers, rec.driver, driver))
            mounted_here = True
        try:
            sink = _Sink()
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for path, rel in _walk_tree(rootfs):
                    _add(tar, path, rel)
                    if sum(len(p) for p in sink.parts) >= 1 << 20:
                        yield sink.take()
            yield sink.take()
        finally:
            if mounted_here and mgr.get(rec.id).state not in ACTIVE:
                driver.unmount(rec.id)


class _nolock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def export_to(ctx: Context, mgr: ContainerManager, ref: str, out: IO[bytes] | Callable[[bytes], Any]) -> None:
    write = out if callable(out) else out.write
    for chunk in export_chunks(ctx, mgr, ref):
        write(chunk)
