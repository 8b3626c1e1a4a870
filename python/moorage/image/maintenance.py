"""Store upkeep: ``image history``, ``image prune``, ``system df`` and
``system check [--repair]``.

``check`` holds the image store's exclusive gc lock, so every writer that
goes through the store (add_image, import, commit, layer unpacking) has
either finished or not started: what it finds unreferenced really is left
over. A temp file that some live process still has open is in use, not a
leftover (an upload being copied in before the lock is taken)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moorage.errors import MoorageError
from moorage.image.store import Image, chain_ids, index_entries
from moorage.storage._common import remove_tree

if TYPE_CHECKING:
    from moorage.engine import Context
    from moorage.runtime.containers import ContainerManager


# ------------------------------------------------------------------ history
def image_history(ctx: Context, image: Image) -> list[dict[str, Any]]:
    """Newest first: ``Id`` (the image whose config ends at that entry, when
    it is in the store, else ``<missing>``), ``Created`` (unix), ``CreatedBy``,
    ``Tags``, ``Size`` (of that entry's layer), ``Comment``."""
    from moorage.runtime.timefmt import parse_rfc3339

    hist = list(image.config.get("history") or [])
    diff_ids = list((image.config.get("rootfs") or {}).get("diff_ids") or [])
    if not hist:  # an image without history: one entry per layer
        hist = [{"created": image.created} for _ in diff_ids] or [{"created": image.created}]
    sizes = []
    for chain in image.layers:
        row = ctx.db.one("SELECT size FROM layers WHERE chain_id=? LIMIT 1", (chain,))
        sizes.append(row["size"] if row else 0)
    # Which images of the store end at which history entry (their own history is a prefix of ours).
    by_prefix: dict[int, Image] = {}
    for other in ctx.images.list():
        oh = other.config.get("history") or []
        if other.id != image.id and 0 < len(oh) < len(hist) and oh == hist[:len(oh)] \
                and other.layers == image.layers[:len(other.layers)]:
            by_prefix.setdefault(len(oh) - 1, other)
    out = []
    layer = 0
    for i, h in enumerate(hist):
        size = 0
        if not h.get("empty_layer"):
            size = sizes[layer] if layer < len(sizes) else 0
            layer += 1
        owner = image if i == len(hist) - 1 else by_prefix.get(i)
        created = parse_rfc3339(h.get("created") or "") if h.get("created") else None
        out.append({
            "Id": owner.id if owner else "<missing>",
            "Created": int(created or 0),
            "CreatedBy": h.get("created_by", ""),
            "Tags": [t for t in owner.tags] if owner else None,
            "Size": size,
            "Comment": h.get("comment", ""),
        })
    out.reverse()
    return out


# -------------------------------------------------------------------- prune
def prune_images(ctx: Context, all_unused: bool = False) -> dict[str, Any]:
    """Delete dangling images (no tag), or with ``all_unused`` every image no
    container uses; then the layers and blobs only they held."""
    from moorage.image import reference

    store = ctx.images
    deleted: list[dict[str, str]] = []
    with store.gc_lock(exclusive=True):
        used = {r["image_id"] for r in ctx.db.query("SELECT DISTINCT image_id FROM containers")}
        for img in store.list():
            if img.id in used or (img.tags and not all_unused):
                continue
            with ctx.db.transaction() as db:
                for t in img.tags:
                    db.execute("DELETE FROM tags WHERE name=?", (t,))
                    deleted.append({"Untagged": reference.parse(t).familiar})
                db.execute("DELETE FROM images WHERE id=?", (img.id,))
            deleted.append({"Deleted": img.id})
        removed = store._gc_layers(ctx.driver)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": sum(size for _, size in removed)}


# ----------------------------------------------------------------------- df
def _tree_size(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def container_size_rw(ctx: Context, rec: Any) -> int:
    """Bytes of the container's writable layer (its added and changed regular files)."""
    driver = ctx.driver(rec.driver)
    if hasattr(driver, "upper_path"):
        return _tree_size(Path(driver.upper_path(rec.id)))
    from moorage.image.commit import DELETED, container_changes

    root = Path(driver.rootfs_path(rec.id))
    total = 0
    for c in container_changes(ctx, rec):
        if c.kind != DELETED:
            st = os.lstat(root / c.path)
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def disk_usage(ctx: Context, mgr: ContainerManager) -> dict[str, Any]:
    """Docker API ``/system/df`` shape (sizes in bytes), plus the totals the table needs."""
    images = ctx.images.list()
    recs = mgr.list()
    used_by: dict[str, int] = {}
    for r in recs:
        used_by[r.image_id] = used_by.get(r.image_id, 0) + 1
    layer_size: dict[str, int] = {}
    for row in ctx.db.query("SELECT chain_id, size FROM layers"):
        layer_size[row["chain_id"]] = row["size"]
    all_layers = {c for img in images for c in img.layers}
    active_layers = {c for img in images if img.id in used_by for c in img.layers}
    img_total = sum(layer_size.get(c, 0) for c in all_layers)
    img_reclaim = sum(layer_size.get(c, 0) for c in all_layers - active_layers)
    containers: list[dict[str, Any]] = []
    for r in recs:
        containers.append({"Id": r.id, "Names": ["/" + r.name], "Image": r.image_name, "State": r.state,
                           "SizeRw": container_size_rw(ctx, r)})
    ct_total = sum(c["SizeRw"] for c in containers)
    ct_reclaim = sum(c["SizeRw"] for c in containers if c["State"] not in ("running", "paused", "restarting"))
    return {
        "LayersSize": img_total,
        "Images": [{"Id": i.id, "RepoTags": i.tags, "Size": i.size, "Containers": used_by.get(i.id, 0)}
                   for i in images],
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
        "Summary": {
            "Images": {"Total": len(images), "Active": sum(1 for i in images if i.id in used_by),
                       "Size": img_total, "Reclaimable": img_reclaim},
            "Containers": {"Total": len(recs),
                           "Active": sum(1 for r in recs if r.state in ("running", "paused", "restarting")),
                           "Size": ct_total, "Reclaimable": ct_reclaim},
            "Volumes": {"Total": 0, "Active": 0, "Size": 0, "Reclaimable": 0},
            "BuildCache": {"Total": 0, "Active": 0, "Size": 0, "Reclaimable": 0},
        },
    }


# -------------------------------------------------------------------- check
@dataclass
class CheckReport:
    lines: list[str] = field(default_factory=list)
    problems: int = 0  #: found
    unresolved: int = 0  #: still there after --repair (or everything, without it)

    def problem(self, text: str, fixed: bool = False) -> None:
        self.problems += 1
        if not fixed:
            self.unresolved += 1
        self.lines.append(text + (" (repaired)" if fixed else ""))


def _open_paths(prefix: str) -> set[str]:
    """Files under ``prefix`` that some process has open."""
    out: set[str] = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith(prefix):
                    out.add(target)
        except OSError:
            continue
    return out


def _sha256_file(path: Path) -> str:
    from moorage import _core

    try:
        return _core.sha256_file(str(path))
    except MoorageError:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "sha256:" + h.hexdigest()


def check_store(ctx: Context, repair: bool = False) -> CheckReport:
    rep = CheckReport()
    with ctx.images.gc_lock(exclusive=True):
        _check(ctx, repair, rep)
    return rep


def _drivers(ctx: Context) -> dict[str, Any]:
    names = {r["driver"] for r in ctx.db.query("SELECT DISTINCT driver FROM layers")}
    storage = ctx.root / "storage"
    if storage.is_dir():
        names |= {p.name for p in storage.iterdir() if p.is_dir()}
    out = {}
    for n in sorted(names):
        try:
            out[n] = ctx.driver(n)
        except Exception:  # an unknown driver name: its rows are reported below
            continue
    return out


def _check(ctx: Context, repair: bool, rep: CheckReport) -> None:
    store = ctx.images
    blobs = store.blobs
    db = ctx.db
    in_use = _open_paths(str(ctx.root) + "/")

    # 1. temp files and unfinished directories
    if blobs.tmp.is_dir():
        for p in sorted(blobs.tmp.iterdir()):
            if str(p) in in_use:
                continue
            if repair:
                remove_tree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            rep.problem(f"leftover temp file {p}", repair)
    drivers = _drivers(ctx)
    for name, drv in drivers.items():
        layers_dir = Path(getattr(drv, "layers", ctx.root / "storage" / name / "layers"))
        if not layers_dir.is_dir():
            continue
        rows = {r["cache_id"] for r in db.query("SELECT cache_id FROM layers WHERE driver=?", (name,))}
        for p in sorted(layers_dir.iterdir()):
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                what = f"unfinished layer directory {p}"
            elif p.name not in rows:
                what = f"layer directory {p} has no layer record"
            else:
                continue
            if repair:
                remove_tree(p)
            rep.problem(what, repair)

    # 2. blobs: each must hash to its name
    corrupt: set[str] = set()
    if blobs.dir.is_dir():
        for p in sorted(blobs.dir.iterdir()):
            if p.name.startswith("."):
                if str(p) not in in_use:
                    if repair:
                        p.unlink(missing_ok=True)
                    rep.problem(f"leftover temp file {p}", repair)
                continue
            digest = f"sha256:{p.name}"
            actual = _sha256_file(p)
            if actual != digest:
                corrupt.add(digest)
                if repair:
                    p.unlink(missing_ok=True)
                rep.problem(f"blob {digest} is corrupt: its content hashes to {actual}", repair)

    # 3. layer rows: their directory, their blob
    layer_rows = db.query("SELECT * FROM layers")
    missing_dirs: set[tuple[str, str]] = set()
    for r in layer_rows:
        drv = drivers.get(r["driver"])
        if drv is None:
            rep.problem(f"layer {r['chain_id']}: unknown storage driver {r['driver']!r}")
            continue
        if not drv.layer_exists(r["cache_id"]):
            missing_dirs.add((r["chain_id"], r["driver"]))
            if repair:
                with db.transaction() as tx:
                    tx.execute("DELETE FROM layers WHERE chain_id=? AND driver=?", (r["chain_id"], r["driver"]))
            rep.problem(f"layer {r['chain_id']} ({r['driver']}): directory {r['cache_id']} is missing", repair)

    # 4. images: config, manifest, layer blobs, layer chain
    for row in db.query("SELECT * FROM images"):
        iid = row["id"]
        problems: list[str] = []
        config: dict[str, Any] | None = None
        if row["config_digest"] in corrupt or not blobs.exists(row["config_digest"]):
            problems.append(f"config blob {row['config_digest']} is missing or corrupt")
        else:
            try:
                config = json.loads(blobs.read(row["config_digest"]))
            except ValueError:
                problems.append(f"config blob {row['config_digest']} is not JSON")
        manifest: dict[str, Any] | None = None
        md = row["manifest_digest"]
        if md and (md in corrupt or not blobs.exists(md)):
            problems.append(f"manifest blob {md} is missing or corrupt")
        elif md:
            try:
                manifest = json.loads(blobs.read(md))
            except ValueError:
                problems.append(f"manifest blob {md} is not JSON")
        idx = row["index_digest"]
        if idx and (idx in corrupt or not blobs.exists(idx)):
            problems.append(f"index blob {idx} is missing or corrupt")
        elif idx and md and md not in index_entries(blobs.read(idx)):
            problems.append(f"index {idx} does not list its manifest {md}")
        chains = json.loads(row["layers"])
        if config is not None:
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            if chain_ids(list(diff_ids)) != chains:
                problems.append("its layer chain does not match the config's rootfs.diff_ids")
        layer_blobs = [d.get("digest", "") for d in (manifest or {}).get("layers", [])]
        for d in layer_blobs:
            if d in corrupt or not blobs.exists(d):
                problems.append(f"layer blob {d} is missing or corrupt")
        for i, chain in enumerate(chains):
            have = [r for r in layer_rows if r["chain_id"] == chain and (r["chain_id"], r["driver"]) not in missing_dirs]
            if have:
                continue
            # Rebuild the layer from its blob when the blob is sound.
            blob = layer_blobs[i] if i < len(layer_blobs) else None
            if repair and blob and blobs.exists(blob) and blob not in corrupt:
                try:
                    drv_name = next((r["driver"] for r in layer_rows if r["chain_id"] == chain), ctx.storage_driver)
                    parent = chains[i - 1] if i else None
                    made, _, _ = store._ensure_layer(ctx.driver(drv_name), drv_name, parent, blobs.path(blob))
                    if made == chain:
                        with db.transaction() as tx:
                            tx.execute("UPDATE layers SET digest=? WHERE chain_id=? AND driver=?",
                                       (blob, chain, drv_name))
                        rep.lines.append(f"image {iid}: layer {chain} rebuilt from blob {blob}")
                        continue
                except MoorageError as e:
                    problems.append(f"layer {chain} could not be rebuilt: {e}")
                    continue
            problems.append(f"layer {chain} is missing")
        for text in problems:
            rep.problem(f"image {iid} is broken: {text}")

    # 5. unreferenced layer rows and blobs
    used_chains: set[str] = set()
    for row in db.query("SELECT layers FROM images"):
        used_chains.update(json.loads(row["layers"]))
    for r in db.query("SELECT chain_id, driver, cache_id FROM layers"):
        if r["chain_id"] not in used_chains:
            rep.problem(f"layer {r['chain_id']} ({r['driver']}) is not used by any image", repair)
    keep = store.referenced_blobs()
    if blobs.dir.is_dir():
        for p in sorted(blobs.dir.iterdir()):
            if not p.name.startswith(".") and f"sha256:{p.name}" not in keep:
                rep.problem(f"blob sha256:{p.name} is not referenced by any image or layer", repair)
    if repair:
        store._gc_layers(ctx.driver)
