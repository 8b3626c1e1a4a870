"""A container's changes against its image: ``diff`` (the A/C/D list),
``commit`` (the changes as a new layer on the image) and ``export`` (a tar of
the whole flattened root filesystem).

Overlay: the changes are the upper dir (0/0 character devices are deletions,
an opaque directory hides everything the layers below held in it); the
layer tar comes from ``_core.diff_layer``. vfs: the container's rootfs is
compared with the image's top layer (a full tree) the way Docker's
``ChangesDirs`` does, and the layer tar is written with ``tarfile``
(whiteouts as ``.wh.NAME``, xattrs as PAX ``SCHILY.xattr.*`` records). Either
way the empty /etc/hosts, /etc/hostname and /etc/resolv.conf the runtime
created as bind-mount targets stay out of the diff and the layer."""

from __future__ import annotations

import copy
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from moorage.errors import MoorageError
from moorage.image.store import Image, LayerInput
from moorage.storage.changes import (  # noqa: F401  (re-exported for callers of this module)
    ADDED,
    DELETED,
    EMPTY_TAR_DIFF_ID,
    KIND_LETTER,
    MODIFIED,
    Change,
    _add,
    _sorted_entries,
)

if TYPE_CHECKING:
    from moorage.engine import Context
    from moorage.runtime.containers import ContainerManager, ContainerRecord



# ---------------------------------------------------------------- containers
def container_changes(ctx: Context, rec: ContainerRecord) -> list[Change]:
    """The container's changes against its image, from its storage driver."""
    image = ctx.images.get(rec.image_id)
    driver = ctx.driver(rec.driver)
    ids = ctx.images.layer_cache_ids(image.layers, rec.driver, driver)
    changes: list[Change] = driver.changes(rec.id, ids)
    return changes


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

    store = ctx.images
    parent = store.get(rec.image_id)
    driver = ctx.driver(rec.driver)
    tmp, f = store.blobs.temp_file()
    f.close()
    try:
        with store.gc_lock():
            ids = store.layer_cache_ids(parent.layers, rec.driver, driver)
            diff_id = driver.diff(rec.id, ids, str(tmp))
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
        mounted_here = not is_mounted(rootfs)
        if mounted_here:
            image = ctx.images.get(rec.image_id)
            driver.mount(rec.id, ctx.images.layer_cache_ids(image.layers, rec.driver, driver))
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
