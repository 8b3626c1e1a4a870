"""The image store: content-addressed blobs (``blobs/sha256/<hex>``, written
to a temp file, fsynced, verified, renamed) plus image/tag/layer rows in the
metadata database. Image ids are config digests; a layer is keyed by its
chain id and stored once, however many images share it."""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from moorage.errors import Conflict, ImageNotFound, InvalidArgument, MoorageError
from moorage.image import reference
from moorage.runtime.store import Store, dumps

if TYPE_CHECKING:
    from moorage.storage.api import StorageDriver

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def index_entries(index_bytes: bytes) -> builtins.list[str]:
    """The digests an OCI index / Docker manifest list lists (``[]`` when it is not one)."""
    try:
        index = json.loads(index_bytes)
    except ValueError:
        return []
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, builtins.list):
        return []
    return [e["digest"] for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str)]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


@dataclass
class LayerInput:
    """A layer to store: a tar file (plain, gzip or zstd) and what it must hash to."""

    path: Path
    digest: str | None = None  #: expected sha256 of the file as given (manifest descriptor)
    adopt: bool = False  #: the file is the store's temp file: move it into the blobs


def _compression_of(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


@dataclass
class Image:
    id: str
    config: dict[str, Any]
    layers: list[str]  #: chain ids, bottom first
    size: int
    created: str
    manifest_digest: str | None
    tags: list[str] = field(default_factory=list)  #: normalized references
    index_digest: str | None = None  #: the OCI index / manifest list ``manifest_digest`` was chosen from

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise InvalidArgument(f"unsupported digest {digest!r}")
        return self.dir / hexd

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / f".{secrets.token_hex(8)}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.path(digest))
        return digest

    def adopt_file(self, path: Path, digest: str) -> None:
        """Move an already-verified temp file (same filesystem) into place as ``digest``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        os.rename(path, self.path(digest))

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def temp_file(self) -> tuple[Path, BinaryIO]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / f"upload-{secrets.token_hex(8)}"
        return path, open(path, "wb")


class ImageStore:
    def __init__(self, root: Path, db: Store) -> None:
        self.root = root
        self.db = db
        self.blobs = BlobStore(root)
        self._lock_depth = 0
        self._lock_fd: int | None = None

    @contextlib.contextmanager
    def gc_lock(self, exclusive: bool = False) -> Iterator[None]:
        """Writers (add_image, import, layer unpacking) hold this shared; garbage
        collection and ``system check`` hold it exclusive, so a layer row or
        blob that an unfinished image will reference is never taken for a
        leftover. flock: a killed writer releases it with its last fd."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        fd = os.open(self.root / "images.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            self._lock_fd, self._lock_depth = fd, 1
            yield
        finally:
            self._lock_fd, self._lock_depth = None, 0
            os.close(fd)

    # ---------------------------------------------------------------- lookups
    def _row_to_image(self, row: Any) -> Image:
        config = json.loads(self.blobs.read(row["config_digest"]))
        tags = [r["name"] for r in self.db.query("SELECT name FROM tags WHERE image_id=? ORDER BY name", (row["id"],))]
        return Image(
            id=row["id"],
            config=config,
            layers=json.loads(row["layers"]),
            size=row["size"],
            created=row["created"] or "",
            manifest_digest=row["manifest_digest"],
            tags=tags,
            index_digest=row["index_digest"],
        )

    def get(self, name: str) -> Image:
        """Look up by reference (``busybox``, ``a/b:t``), full id or unique id prefix."""
        row = None
        try:
            ref = reference.parse(name)
            t = self.db.one("SELECT image_id FROM tags WHERE name=?", (str(ref),))
            if t is not None:
                row = self.db.one("SELECT * FROM images WHERE id=?", (t["image_id"],))
        except InvalidArgument:
            if not reference.looks_like_id(name):
                raise
        if row is None and reference.looks_like_id(name):
            prefix = "sha256:" + name.removeprefix("sha256:")
            rows = self.db.query("SELECT * FROM images WHERE id LIKE ?", (prefix + "%",))
            if len(rows) > 1:
                raise InvalidArgument(f"image id prefix {name!r} is ambiguous")
            row = rows[0] if rows else None
        if row is None:
            raise ImageNotFound(f"No such image: {name}")
        return self._row_to_image(row)

    def list(self) -> builtins.list[Image]:
        return [self._row_to_image(r) for r in self.db.query("SELECT * FROM images ORDER BY added DESC")]

    # ---------------------------------------------------------------- writes
    def _ensure_layer(
        self,
        driver: StorageDriver,
        driver_name: str,
        parent: str | None,
        tar_path: Path,
        expect_diff_id: str | None = None,
        expect_digest: str | None = None,
    ) -> tuple[str, dict[str, Any], bool]:
        """Apply ``tar_path`` over layer ``parent``.

        Returns (chain id, apply report, whether a new layer was recorded).
        A digest that differs from ``expect_*`` fails before anything is
        recorded, and the unpacked directory is removed."""
        from moorage.errors import InvalidLayer

        cache_id = secrets.token_hex(16)
        parent_cache = None
        if parent:
            prow = self.db.one("SELECT * FROM layers WHERE chain_id=? AND driver=?", (parent, driver_name))
            if prow is None:
                raise MoorageError(f"parent layer {parent} is missing")
            parent_cache = prow["cache_id"]
        report = driver.create_layer(cache_id, parent_cache, str(tar_path))
        diff_id = report["diff_id"]
        problem = None
        if expect_digest and report["digest"] != expect_digest:
            problem = f"layer blob {expect_digest}: content digest is {report['digest']}"
        elif expect_diff_id and diff_id != expect_diff_id:
            problem = f"layer {report['digest']}: uncompressed digest is {diff_id}, the image config says {expect_diff_id}"
        if problem:
            driver.remove_layer(cache_id)
            raise InvalidLayer(problem)
        chain = "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest() if parent else diff_id
        with self.db.transaction() as db:
            existing = db.execute(
                "SELECT cache_id FROM layers WHERE chain_id=? AND driver=?", (chain, driver_name)
            ).fetchone()
            if existing is None:
                db.execute(
                    "INSERT INTO layers(chain_id, diff_id, parent, digest, size, driver, cache_id, created)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (chain, diff_id, parent, report["digest"], report["size"], driver_name, cache_id, time.time()),
                )
        if existing is not None:
            driver.remove_layer(cache_id)
        return chain, report, existing is None

    def add_image(
        self,
        driver: StorageDriver,
        driver_name: str,
        layers: builtins.list[LayerInput],
        config_bytes: bytes,
        ref: str | None = None,
        manifest_bytes: bytes | None = None,
        index_bytes: bytes | None = None,
        other_manifests: Sequence[bytes] = (),
    ) -> Image:
        """:meth:`_add_image` under the shared :meth:`gc_lock`."""
        with self.gc_lock():
            return self._add_image(driver, driver_name, layers, config_bytes, ref, manifest_bytes,
                                   index_bytes, other_manifests)

    def _add_image(
        self,
        driver: StorageDriver,
        driver_name: str,
        layers: builtins.list[LayerInput],
        config_bytes: bytes,
        ref: str | None = None,
        manifest_bytes: bytes | None = None,
        index_bytes: bytes | None = None,
        other_manifests: Sequence[bytes] = (),
    ) -> Image:
        """Store an image: its layers (applied in order, skipped when this
        driver already has the chain), their blobs, the config and a manifest.

        Every layer is checked against the config's ``rootfs.diff_ids`` (and
        its blob digest, when the source names one). On any failure the
        layers and blobs this call added are removed again: the store is as
        before. ``manifest_bytes`` (e.g. a pulled manifest) is stored as is;
        otherwise an OCI manifest is written.

        ``index_bytes`` is the OCI index / Docker manifest list the manifest
        was chosen from (it must list ``manifest_bytes``): stored and recorded
        as the image's ``index_digest``, with ``other_manifests`` (the other
        platforms' manifests at hand; their configs and layers are not kept).
        An image already in the store keeps its manifest and its index (it
        gains one when it had none); what this call wrote for nothing is
        removed again."""
        from moorage.errors import InvalidLayer

        parsed = reference.parse(ref) if ref else None
        if parsed and parsed.digest:
            raise InvalidArgument("a reference with a digest cannot be used as a tag")
        try:
            config = json.loads(config_bytes)
            diff_ids = list(config["rootfs"]["diff_ids"])
        except (ValueError, KeyError, TypeError):
            raise InvalidLayer("image config is not valid JSON with rootfs.diff_ids") from None
        if len(diff_ids) != len(layers):
            raise InvalidLayer(f"image config lists {len(diff_ids)} layers, the image has {len(layers)}")
        chains = chain_ids(diff_ids)
        made_layers: builtins.list[str] = []
        made_blobs: builtins.list[str] = []
        try:
            total = 0
            descriptors = []
            for i, layer in enumerate(layers):
                parent = chains[i - 1] if i else None
                row = self.db.one(
                    "SELECT digest, size FROM layers WHERE chain_id=? AND driver=?", (chains[i], driver_name)
                )
                if row is not None and (layer.digest is None or layer.digest == row["digest"]):
                    digest, size = row["digest"], row["size"]
                    compression = _compression_of(self.blobs.path(digest)) if self.blobs.exists(digest) else None
                    if not self.blobs.exists(digest):
                        # our own temp file whose digest we computed: no second hashing pass
                        trusted = digest if layer.adopt and layer.digest == digest else None
                        digest = self._put_blob_file(layer, made_blobs, trusted)
                        compression = _compression_of(self.blobs.path(digest))
                else:
                    chain, report, new = self._ensure_layer(
                        driver, driver_name, parent, layer.path, diff_ids[i], layer.digest
                    )
                    if new:
                        made_layers.append(chain)
                    digest, size, compression = report["digest"], report["size"], report["compression"]
                    if not self.blobs.exists(digest):
                        self._put_blob_file(layer, made_blobs, digest)
                total += size
                descriptors.append({
                    "mediaType": MEDIA_LAYER.get(compression or "none", MEDIA_LAYER["none"]),
                    "digest": digest,
                    "size": self.blobs.path(digest).stat().st_size,
                })
            config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
            if not self.blobs.exists(config_digest):
                self.blobs.put_bytes(config_bytes)
                made_blobs.append(config_digest)
            if manifest_bytes is None:
                manifest_bytes = json.dumps({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_MANIFEST,
                    "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                    "layers": descriptors,
                }, separators=(",", ":")).encode()
            manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
            if not self.blobs.exists(manifest_digest):
                self.blobs.put_bytes(manifest_bytes)
                made_blobs.append(manifest_digest)
            index_digest = None
            if index_bytes is not None:
                if manifest_digest not in index_entries(index_bytes):
                    raise InvalidArgument(f"the index does not list the image's manifest {manifest_digest}")
                for data in [*other_manifests, index_bytes]:
                    digest = "sha256:" + hashlib.sha256(data).hexdigest()
                    if not self.blobs.exists(digest):
                        self.blobs.put_bytes(data)
                        made_blobs.append(digest)
                index_digest = digest
            with self.db.transaction() as db:
                added = db.execute(
                    "INSERT OR IGNORE INTO images(id, config_digest, manifest_digest, index_digest, created, size,"
                    " layers, added) VALUES (?,?,?,?,?,?,?,?)",
                    (config_digest, config_digest, manifest_digest, index_digest, config.get("created") or "",
                     total, dumps(chains), time.time()),
                ).rowcount
                if not added and index_digest:
                    db.execute("UPDATE images SET index_digest=? WHERE id=? AND manifest_digest=?"
                               " AND index_digest IS NULL", (index_digest, config_digest, manifest_digest))
                if parsed:
                    db.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (str(parsed), config_digest))
        except BaseException:
            self._undo(driver, driver_name, made_layers, made_blobs)
            raise
        if not added and made_blobs:
            # The image was here already: a manifest or index it did not take is nobody's.
            keep = self.referenced_blobs()
            for digest in made_blobs:
                if digest not in keep:
                    self.blobs.path(digest).unlink(missing_ok=True)
        return self.get(config_digest)

    def _put_blob_file(self, layer: LayerInput, made: builtins.list[str], digest: str | None = None) -> str:
        """Put a layer file into the blob store (moved when it is our temp file), verified."""
        import shutil

        from moorage import _core

        if digest is None:
            digest = _core.sha256_file(str(layer.path))
            if layer.digest and digest != layer.digest:
                from moorage.errors import InvalidLayer

                raise InvalidLayer(f"layer blob {layer.digest}: content digest is {digest}")
        if self.blobs.exists(digest):
            return digest
        if layer.adopt:
            self.blobs.adopt_file(layer.path, digest)
        else:
            tmp, f = self.blobs.temp_file()
            with f, open(layer.path, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
            self.blobs.adopt_file(tmp, digest)
        made.append(digest)
        return digest

    def _undo(self, driver: StorageDriver, driver_name: str, chains: builtins.list[str], blobs: builtins.list[str]) -> None:
        used: set[str] = set()
        for r in self.db.query("SELECT layers FROM images"):
            used.update(json.loads(r["layers"]))
        for chain in reversed(chains):
            if chain in used:
                continue
            row = self.db.one("SELECT cache_id FROM layers WHERE chain_id=? AND driver=?", (chain, driver_name))
            if row is not None:
                with self.db.transaction() as db:
                    db.execute("DELETE FROM layers WHERE chain_id=? AND driver=?", (chain, driver_name))
                driver.remove_layer(row["cache_id"])
        for digest in blobs:
            self.blobs.path(digest).unlink(missing_ok=True)

    def layer_cache_ids(self, chains: builtins.list[str], driver_name: str, driver: StorageDriver) -> builtins.list[str]:
        """The driver's directories for ``chains``, unpacked from the layer blobs
        when this driver has not seen them yet (an image imported under
        ``overlay`` runs under ``vfs`` too)."""
        with self.gc_lock():
            return self._layer_cache_ids(chains, driver_name, driver)

    def _layer_cache_ids(self, chains: builtins.list[str], driver_name: str, driver: StorageDriver) -> builtins.list[str]:
        out = []
        parent: str | None = None
        for c in chains:
            row = self.db.one("SELECT cache_id FROM layers WHERE chain_id=? AND driver=?", (c, driver_name))
            if row is None:
                src = self.db.one("SELECT digest FROM layers WHERE chain_id=? AND digest IS NOT NULL", (c,))
                if src is None or not self.blobs.exists(src["digest"]):
                    raise MoorageError(f"layer {c} is missing from the store")
                made, _, _ = self._ensure_layer(driver, driver_name, parent, self.blobs.path(src["digest"]))
                if made != c:
                    raise MoorageError(f"layer blob {src['digest']} does not rebuild chain {c}")
                row = self.db.one("SELECT cache_id FROM layers WHERE chain_id=? AND driver=?", (c, driver_name))
                if row is None:
                    raise MoorageError(f"layer {c} was not recorded for driver {driver_name}")
            out.append(row["cache_id"])
            parent = c
        return out

    def import_tar(
        self,
        tar_path: Path,
        driver: StorageDriver,
        driver_name: str,
        ref: str | None,
        changes: dict[str, Any] | None = None,
        message: str = "",
    ) -> Image:
        """Make a single-layer image from a root filesystem tarball (``docker import``).

        ``tar_path`` must be a temp file of the store (it is moved into the blobs)."""
        if ref:
            parsed = reference.parse(ref)
            if parsed.digest:
                raise InvalidArgument("import: a reference with a digest cannot be used as a tag")
        with self.gc_lock():
            return self._import_tar(tar_path, driver, driver_name, ref, changes, message)

    def _import_tar(
        self,
        tar_path: Path,
        driver: StorageDriver,
        driver_name: str,
        ref: str | None,
        changes: dict[str, Any] | None,
        message: str,
    ) -> Image:
        # The config names the layer's diff_id, known only after unpacking:
        # unpack first, then describe it (the chain is recorded either way).
        chain, report, new = self._ensure_layer(driver, driver_name, None, tar_path)
        try:
            now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
            config: dict[str, Any] = {
                "architecture": "amd64",
                "os": "linux",
                "created": now,
                "config": changes or {},
                "rootfs": {"type": "layers", "diff_ids": [report["diff_id"]]},
                "history": [{"created": now, "created_by": "moorage import", **({"comment": message} if message else {})}],
            }
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            return self.add_image(driver, driver_name, [LayerInput(tar_path, report["digest"], adopt=True)],
                                  config_bytes, ref)
        except BaseException:
            if new:
                self._undo(driver, driver_name, [chain], [])
            raise

    def tag(self, image_id: str, ref: str) -> None:
        parsed = reference.parse(ref)
        if parsed.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self.db.transaction() as db:
            db.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (str(parsed), image_id))

    def in_use_by(self, image_id: str) -> builtins.list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM containers WHERE image_id=?", (image_id,))]

    def remove(self, name: str, force: bool, driver_for: Any) -> builtins.list[tuple[str, str]]:
        """``rmi``: untag a reference, or delete the image when no tag is left.

        Returns Docker's report lines: ("Untagged", ref) / ("Deleted", id)."""
        image = self.get(name)
        out: builtins.list[tuple[str, str]] = []
        by_tag = False
        try:
            ref = str(reference.parse(name))
            by_tag = ref in image.tags
        except InvalidArgument:
            ref = ""
        users = self.in_use_by(image.id)
        if by_tag and len(image.tags) > 1:
            with self.db.transaction() as db:
                db.execute("DELETE FROM tags WHERE name=?", (ref,))
            return [("Untagged", ref)]
        if users and not force:
            raise Conflict(
                f"conflict: unable to remove repository reference \"{name}\" (must force) - "
                f"container {users[0][:12]} is using its referenced image {image.short_id}"
            )
        if not by_tag and len(image.tags) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {image.short_id} (must be forced) - "
                "image is referenced in multiple repositories"
            )
        with self.db.transaction() as db:
            for t in image.tags:
                db.execute("DELETE FROM tags WHERE name=?", (t,))
                out.append(("Untagged", t))
            if users:
                # Docker keeps a forced-untagged image that containers use (dangling).
                return out
            db.execute("DELETE FROM images WHERE id=?", (image.id,))
            out.append(("Deleted", image.id))
        self._gc_layers(driver_for)
        return out

    def _gc_layers(self, driver_for: Any) -> builtins.list[tuple[str, int]]:
        """Drop layers no image references (chains are kept while any child
        needs them), then blobs nothing references. Returns the dropped
        layers as (chain id, size)."""
        removed: builtins.list[tuple[str, int]] = []
        with self.gc_lock(exclusive=True):
            used: set[str] = set()
            for r in self.db.query("SELECT layers FROM images"):
                used.update(json.loads(r["layers"]))
            for r in self.db.query("SELECT chain_id, cache_id, driver, digest, size FROM layers"):
                if r["chain_id"] in used:
                    continue
                with self.db.transaction() as db:
                    db.execute("DELETE FROM layers WHERE chain_id=? AND driver=?", (r["chain_id"], r["driver"]))
                driver_for(r["driver"]).remove_layer(r["cache_id"])
                removed.append((r["chain_id"], r["size"]))
            keep = self.referenced_blobs()
            if self.blobs.dir.is_dir():
                for p in self.blobs.dir.iterdir():
                    if not p.name.startswith(".") and f"sha256:{p.name}" not in keep:
                        p.unlink(missing_ok=True)
        return removed

    def referenced_blobs(self) -> set[str]:
        """Digests of every blob an image or layer row names: configs,
        manifests, the manifests' layers, indexes and the manifests they
        list, layer rows' blobs."""
        keep: set[str] = set()
        for r in self.db.query("SELECT config_digest, manifest_digest, index_digest FROM images"):
            keep.add(r["config_digest"])
            if r["index_digest"]:
                keep.add(r["index_digest"])
                try:
                    keep.update(index_entries(self.blobs.read(r["index_digest"])))
                except (OSError, InvalidArgument):
                    pass
            if r["manifest_digest"]:
                keep.add(r["manifest_digest"])
                try:
                    manifest = json.loads(self.blobs.read(r["manifest_digest"]))
                    keep.update(d["digest"] for d in manifest.get("layers", []))
                except (OSError, ValueError, KeyError, TypeError, InvalidArgument):
                    pass
        for r in self.db.query("SELECT digest FROM layers WHERE digest IS NOT NULL"):
            keep.add(r["digest"])
        return keep
