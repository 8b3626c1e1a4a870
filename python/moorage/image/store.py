"""The image store: content-addressed blobs (``blobs/sha256/<hex>``, written
to a temp file, fsynced, verified, renamed) plus image/tag/layer rows in the
metadata database. Image ids are config digests; a layer is keyed by its
chain id and stored once, however many images share it."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import secrets
import time
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
class Image:
    id: str
    config: dict[str, Any]
    layers: list[str]  #: chain ids, bottom first
    size: int
    created: str
    manifest_digest: str | None
    tags: list[str] = field(default_factory=list)  #: normalized references

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
    def _ensure_layer(self, driver: StorageDriver, driver_name: str, parent: str | None, tar_path: Path) -> tuple[str, dict[str, Any]]:
        """Apply ``tar_path`` over layer ``parent``; return (chain id, apply report)."""
        cache_id = secrets.token_hex(16)
        parent_cache = None
        if parent:
            prow = self.db.one("SELECT * FROM layers WHERE chain_id=? AND driver=?", (parent, driver_name))
            if prow is None:
                raise MoorageError(f"parent layer {parent} is missing")
            parent_cache = prow["cache_id"]
        report = driver.create_layer(cache_id, parent_cache, str(tar_path))
        diff_id = report["diff_id"]
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
        return chain, report

    def layer_cache_ids(self, chains: builtins.list[str], driver_name: str, driver: StorageDriver) -> builtins.list[str]:
        """The driver's directories for ``chains``, unpacked from the layer blobs
        when this driver has not seen them yet (an image imported under
        ``overlay`` runs under ``vfs`` too)."""
        out = []
        parent: str | None = None
        for c in chains:
            row = self.db.one("SELECT cache_id FROM layers WHERE chain_id=? AND driver=?", (c, driver_name))
            if row is None:
                src = self.db.one("SELECT digest FROM layers WHERE chain_id=? AND digest IS NOT NULL", (c,))
                if src is None or not self.blobs.exists(src["digest"]):
                    raise MoorageError(f"layer {c} is missing from the store")
                made, _ = self._ensure_layer(driver, driver_name, parent, self.blobs.path(src["digest"]))
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
        """Make a single-layer image from a root filesystem tarball (``docker import``)."""
        parsed = reference.parse(ref) if ref else None
        if parsed and parsed.digest:
            raise InvalidArgument("import: a reference with a digest cannot be used as a tag")
        chain, report = self._ensure_layer(driver, driver_name, None, tar_path)
        layer_digest = report["digest"]
        if not self.blobs.exists(layer_digest):
            self.blobs.adopt_file(tar_path, layer_digest)
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1e9):09d}Z"
        config: dict[str, Any] = {
            "architecture": "amd64",
            "os": "linux",
            "created": now,
            "config": changes or {},
            "rootfs": {"type": "layers", "diff_ids": [report["diff_id"]]},
            "history": [{"created": now, "created_by": "moorage import", **({"comment": message} if message else {})}],
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = self.blobs.put_bytes(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [
                {
                    "mediaType": MEDIA_LAYER[report["compression"]],
                    "digest": layer_digest,
                    "size": report["compressed_size"],
                }
            ],
        }
        manifest_digest = self.blobs.put_bytes(json.dumps(manifest, separators=(",", ":")).encode())
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO images(id, config_digest, manifest_digest, created, size, layers, added)"
                " VALUES (?,?,?,?,?,?,?)",
                (config_digest, config_digest, manifest_digest, now, report["size"], dumps([chain]), time.time()),
            )
            if parsed:
                db.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (str(parsed), config_digest))
        return self.get(config_digest)

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

    def _gc_layers(self, driver_for: Any) -> None:
        """Drop layers no image references (chains are kept while any child needs them)."""
        used: set[str] = set()
        for r in self.db.query("SELECT layers FROM images"):
            used.update(json.loads(r["layers"]))
        for r in self.db.query("SELECT chain_id, cache_id, driver, digest FROM layers"):
            if r["chain_id"] in used:
                continue
            with self.db.transaction() as db:
                db.execute("DELETE FROM layers WHERE chain_id=? AND driver=?", (r["chain_id"], r["driver"]))
            driver_for(r["driver"]).remove_layer(r["cache_id"])
