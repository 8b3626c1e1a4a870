"""``save`` and ``load``: images to and from tar archives.

``docker-archive`` is written the way Docker ≥ 25 writes it: ``manifest.json``
and ``repositories`` (what ``docker load`` and ``podman load`` read) beside
``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>`` — one archive that
is both a Docker archive and an OCI image layout. ``oci-archive`` is the OCI
layout alone. Layer blobs are written exactly as stored.

``load`` reads the outer tar once, in order, from a file or a pipe, hashing
every member as it is written to a private directory under the store's
``tmp/`` (same filesystem as the blobs: layers are moved, not copied). It
understands the old Docker layout (``<id>/layer.tar``, ``<id>.json``), the
Docker ≥ 25 layout and OCI layouts with nested indexes, plain or compressed.
Everything the archive says is checked (media types, blob presence, digests,
sizes) before the store is touched; ``ImageStore.add_image`` then verifies
each layer's diff_id and undoes its own work on failure."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import re
import secrets
import shutil
import sqlite3
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from moorage.errors import InvalidArgument, InvalidLayer, MoorageError, OSFailure
from moorage.image import reference
from moorage.image.store import MEDIA_CONFIG, MEDIA_MANIFEST, Image, LayerInput

if TYPE_CHECKING:
    from moorage.engine import Context

FORMATS = ("docker-archive", "oci-archive")

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = {MEDIA_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {MEDIA_INDEX, DOCKER_LIST}
CONFIG_TYPES = {MEDIA_CONFIG, DOCKER_CONFIG}
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
ANNOTATION_REF = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD = "io.containerd.image.name"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
CHUNK = 1 << 20
_BLOB_NAME = re.compile(r"^blobs/sha256/([a-f0-9]{64})$")
_OLD_CONFIG_NAME = re.compile(r"^([a-f0-9]{64})\.json$")

Progress = Callable[[int], None]


class LoadError(MoorageError):
    """An archive that cannot be loaded; the store is left as it was."""

    exit_code = 1


@dataclass
class Loaded:
    image: Image
    names: list[str] = field(default_factory=list)  #: the references the archive gave it, as written there


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ===================================================================== save
@dataclass
class _SaveImage:
    image: Image
    manifest: bytes
    manifest_digest: str
    config_digest: str
    layers: list[dict[str, Any]]  #: descriptors
    tags: list[reference.Reference]


def _collect(ctx: Context, names: Iterable[str]) -> list[_SaveImage]:
    store = ctx.images
    out: dict[str, _SaveImage] = {}
    order: list[str] = []
    for name in names:
        img = store.get(name)
        tag = None
        try:
            ref = reference.parse(name)
            if str(ref) in img.tags:
                tag = ref
        except InvalidArgument:
            pass
        if img.id not in out:
            if not img.manifest_digest or not store.blobs.exists(img.manifest_digest):
                raise MoorageError(f"save: the manifest of image {img.short_id} is missing from the store")
            manifest = store.blobs.read(img.manifest_digest)
            m = json.loads(manifest)
            for d in [m["config"], *m["layers"]]:
                if not store.blobs.exists(d["digest"]):
                    raise MoorageError(f"save: blob {d['digest']} of image {img.short_id} is missing from the store")
            out[img.id] = _SaveImage(img, manifest, img.manifest_digest, m["config"]["digest"], m["layers"], [])
            order.append(img.id)
        if tag is not None and tag not in out[img.id].tags:
            out[img.id].tags.append(tag)
    return [out[i] for i in order]


class _TarWriter:
    """A minimal tar writer over a raw fd: headers from ``tarfile``, file
    bodies with ``sendfile`` (no copy through Python), deterministic metadata."""

    def __init__(self, fd: int, progress: Progress | None) -> None:
        self.fd = fd
        self.progress = progress
        self._sendfile = True

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def _header(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.type, ti.mtime = size, kind, 0
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.uname = ti.gname = ""
        self._write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rem = size % tarfile.BLOCKSIZE
        if rem:
            self._write(b"\0" * (tarfile.BLOCKSIZE - rem))

    def directory(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad(len(data))

    def add_file(self, name: str, path: Path) -> None:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._header(name, size)
            offset = 0
            while offset < size:
                n = 0
                if self._sendfile:
                    try:
                        n = os.sendfile(self.fd, f.fileno(), offset, min(size - offset, 1 << 30))
                    except OSError as e:
                        if e.errno not in (errno.EINVAL, errno.ENOSYS):
                            raise
                        self._sendfile = False
                if not self._sendfile:
                    chunk = os.pread(f.fileno(), min(CHUNK, size - offset), offset)
                    self._write(chunk)
                    n = len(chunk)
                if n == 0:
                    raise MoorageError(f"save: {path} shrank while it was being written")
                offset += n
                if self.progress:
                    self.progress(n)
        self._pad(size)

    def close(self) -> None:
        self._write(b"\0" * (tarfile.BLOCKSIZE * 2))


def save_total(ctx: Context, names: Iterable[str]) -> int:
    """Bytes of blobs a save of ``names`` writes (for a progress bar)."""
    total = 0
    seen: set[str] = set()
    for s in _collect(ctx, names):
        for d in [{"digest": s.config_digest}, *s.layers]:
            if d["digest"] not in seen:
                seen.add(d["digest"])
                total += ctx.images.blobs.path(d["digest"]).stat().st_size
    return total


def save(ctx: Context, names: Iterable[str], fd: int, fmt: str = "docker-archive",
         progress: Progress | None = None) -> None:
    """Write the images ``names`` as a ``fmt`` archive to the file descriptor ``fd``."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unsupported format {fmt!r}: use docker-archive or oci-archive")
    images = _collect(ctx, names)
    if not images:
        raise InvalidArgument("save: no image given")
    blobs = ctx.images.blobs
    docker = fmt == "docker-archive"
    index: list[dict[str, Any]] = []
    for s in images:
        desc = {"mediaType": json.loads(s.manifest).get("mediaType") or MEDIA_MANIFEST,
                "digest": s.manifest_digest, "size": len(s.manifest)}
        if not s.tags:
            index.append(desc)
        for t in s.tags:
            # Docker 25 names the tag in ref.name and the full name for containerd;
            # an OCI layout of its own (podman, skopeo) gives the full name.
            ann = {ANNOTATION_CONTAINERD: str(t), ANNOTATION_REF: t.tag if docker else str(t)}
            index.append({**desc, "annotations": ann})
    w = _TarWriter(fd, progress)
    w.add_bytes("oci-layout", OCI_LAYOUT)
    w.add_bytes("index.json", _dumps({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index}))
    if docker:
        manifest = [{"Config": f"blobs/sha256/{s.config_digest[7:]}",
                     "RepoTags": [t.familiar for t in s.tags],
                     "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in s.layers]} for s in images]
        w.add_bytes("manifest.json", _dumps(manifest))
        repos: dict[str, dict[str, str]] = {}
        for s in images:
            if s.layers:
                for t in s.tags:
                    top = s.image.layers[-1] if s.image.layers else s.layers[-1]["digest"]
                    repos.setdefault(t.familiar_repository, {})[t.tag or "latest"] = top.removeprefix("sha256:")
        if repos:
            w.add_bytes("repositories", _dumps(repos))
    w.directory("blobs")
    w.directory("blobs/sha256")
    written: set[str] = set()
    for s in images:
        for d in [{"digest": s.config_digest}, *s.layers]:
            if d["digest"] not in written:
                written.add(d["digest"])
                w.add_file(f"blobs/sha256/{d['digest'][7:]}", blobs.path(d["digest"]))
        if s.manifest_digest not in written:
            written.add(s.manifest_digest)
            w.add_bytes(f"blobs/sha256/{s.manifest_digest[7:]}", s.manifest)
    w.close()


# ===================================================================== load
class _Counter:
    """Counts bytes read from the outer stream (for the progress bar)."""

    def __init__(self, f: BinaryIO, progress: Progress | None) -> None:
        self.f = f
        self.progress = progress
        self.seen = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.seen += len(data)
        if self.progress and data:
            self.progress(len(data))
        return data


def _member_name(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LoadError(f"load: archive entry {name!r} climbs out of the archive")
    return "/".join(parts)


def _clean_stale(tmp: Path) -> None:
    """Remove load directories whose process is gone (a load killed with -9)."""
    if not tmp.is_dir():
        return
    for p in tmp.glob("load-*"):
        try:
            pid = int(p.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(p, ignore_errors=True)


class _Extracted:
    """The archive's regular files under ``dir``, with their sha256 and links."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.files: dict[str, tuple[Path, str, int]] = {}  # name → (path, digest, size)
        self.links: dict[str, str] = {}  # name → target name (archive-relative)
        self._n = 0

    def extract(self, src: _Counter) -> None:
        try:
            tar = tarfile.open(fileobj=src, mode="r|*", bufsize=CHUNK)  # type: ignore[call-overload]
        except (tarfile.ReadError, EOFError):
            if src.seen == 0:
                raise LoadError("load: the input is empty") from None
            raise LoadError("load: the input is not a tar archive (plain, gzip, bzip2 or xz)") from None
        name = "(start)"
        try:
            with tar:
                for m in tar:
                    name = _member_name(m.name)
                    if m.isreg():
                        self._file(name, tar, m)
                    elif m.issym():
                        base = posixpath.dirname(name)
                        target = m.linkname if m.linkname.startswith("/") else posixpath.join(base, m.linkname)
                        self.links[name] = _member_name(posixpath.normpath("/" + target))
                    elif m.islnk():
                        self.links[name] = _member_name(m.linkname)
        except (tarfile.ReadError, EOFError, tarfile.HeaderError, ValueError, OSError) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise LoadError(f"load: no space left on device while extracting {name} to {self.dir}") from None
            if isinstance(e, OSError) and e.errno is not None:
                raise LoadError(f"load: extracting {name}: {e.strerror}") from None
            what = "is truncated" if isinstance(e, EOFError) or "unexpected end" in str(e) else f"is corrupt ({e})"
            raise LoadError(f"load: the archive {what} at entry {name}") from None

    def _file(self, name: str, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        f = tar.extractfile(m)
        if f is None:
            return
        self._n += 1
        path = self.dir / f"{self._n:06d}"
        h = hashlib.sha256()
        got = 0
        with open(path, "wb") as out:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
                got += len(chunk)
        if got != m.size:
            raise EOFError(name)
        digest = "sha256:" + h.hexdigest()
        mb = _BLOB_NAME.match(name)
        if mb and digest[7:] != mb.group(1):
            raise LoadError(f"load: blob sha256:{mb.group(1)} in the archive has content digest {digest}")
        self.files[name] = (path, digest, got)
        self.links.pop(name, None)

    def lookup(self, name: str, what: str, missing: str | None = None) -> tuple[Path, str, int]:
        n = _member_name(name)
        for _ in range(16):
            if n in self.files:
                return self.files[n]
            if n not in self.links:
                break
            n = self.links[n]
        raise LoadError(missing or f"load: {what} {name} is not in the archive")

    def blob(self, desc: dict[str, Any], what: str) -> tuple[Path, str, int]:
        digest = desc.get("digest")
        if not isinstance(digest, str) or not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            raise LoadError(f"load: {what} has an unsupported digest {digest!r}")
        path, got, size = self.lookup(f"blobs/sha256/{digest[7:]}", what,
                                      f"load: {what} blob {digest} is not in the archive")
        if isinstance(desc.get("size"), int) and desc["size"] != size:
            raise LoadError(f"load: {what} {digest}: the blob is {size} bytes, its descriptor says {desc['size']}")
        return path, got, size

    def layer_input(self, path: Path, digest: str) -> LayerInput:
        """A private name for the file (add_image moves it into the blobs; the
        same blob may serve several layers or images)."""
        self._n += 1
        link = self.dir / f"{self._n:06d}.layer"
        os.link(path, link)
        return LayerInput(link, digest, adopt=True)


@dataclass
class _Plan:
    config: bytes
    layers: list[tuple[Path, str]]
    names: list[str]
    manifest: bytes | None = None


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError:
        raise LoadError(f"load: {what} is not valid JSON") from None


def _plan_docker(ex: _Extracted) -> list[_Plan]:
    path, _, _ = ex.lookup("manifest.json", "file")
    entries = _json(path, "manifest.json")
    if not isinstance(entries, list):
        raise LoadError("load: manifest.json is not a list of images")
    plans = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str) or not isinstance(e.get("Layers"), list):
            raise LoadError("load: manifest.json: an entry lacks Config or Layers")
        cpath, cdigest, _ = ex.lookup(e["Config"], "image config")
        m = _OLD_CONFIG_NAME.match(_member_name(e["Config"]))
        if m and cdigest[7:] != m.group(1):
            raise LoadError(f"load: image config {e['Config']} has content digest {cdigest}")
        layers = []
        for name in e["Layers"]:
            lpath, ldigest, _ = ex.lookup(str(name), "layer")
            layers.append((lpath, ldigest))
        plans.append(_Plan(cpath.read_bytes(), layers, [str(t) for t in e.get("RepoTags") or []]))
    return plans


def _platform_ok(p: dict[str, Any] | None) -> bool:
    return bool(p) and p.get("os") == "linux" and p.get("architecture") == "amd64"  # type: ignore[union-attr]


def _name_from(ann: dict[str, Any]) -> str | None:
    full = ann.get(ANNOTATION_CONTAINERD)
    if isinstance(full, str) and full:
        return full
    ref = ann.get(ANNOTATION_REF)
    if isinstance(ref, str) and ("/" in ref or ":" in ref):
        return ref
    return None


def _plan_manifest(ex: _Extracted, desc: dict[str, Any], names: list[str], depth: int = 0) -> _Plan:
    media = desc.get("mediaType")
    path, digest, _ = ex.blob(desc, "manifest")
    if media in INDEX_TYPES:
        if depth > 4:
            raise LoadError(f"load: index {digest} nests too deep")
        index = _json(path, f"index {digest}")
        entries = index.get("manifests") or []
        pick = [m for m in entries if _platform_ok(m.get("platform"))]
        if not pick and len(entries) == 1:
            pick = entries
        if not pick:
            raise LoadError(f"load: index {digest} has no linux/amd64 image")
        return _plan_manifest(ex, pick[0], names, depth + 1)
    if media not in MANIFEST_TYPES:
        raise LoadError(f"load: manifest {digest} has unsupported media type {media!r}")
    raw = path.read_bytes()
    m = _json(path, f"manifest {digest}")
    if not isinstance(m, dict) or not isinstance(m.get("config"), dict) or not isinstance(m.get("layers"), list):
        raise LoadError(f"load: manifest {digest} lacks config or layers")
    if m["config"].get("mediaType") not in CONFIG_TYPES:
        raise LoadError(f"load: config {m['config'].get('digest')} has unsupported media type "
                        f"{m['config'].get('mediaType')!r}")
    cpath, _, _ = ex.blob(m["config"], "config")
    layers = []
    for d in m["layers"]:
        if not isinstance(d, dict) or d.get("mediaType") not in LAYER_TYPES:
            mt = d.get("mediaType") if isinstance(d, dict) else None
            dg = d.get("digest") if isinstance(d, dict) else None
            raise LoadError(f"load: layer {dg} has unsupported media type {mt!r}")
        lpath, ldigest, _ = ex.blob(d, "layer")
        layers.append((lpath, ldigest))
    return _Plan(cpath.read_bytes(), layers, names, raw)


def _plan_oci(ex: _Extracted) -> list[_Plan]:
    path, _, _ = ex.lookup("index.json", "file")
    index = _json(path, "index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise LoadError("load: index.json lists no manifests")
    plans: dict[str, _Plan] = {}
    for e in entries:
        if not isinstance(e, dict):
            raise LoadError("load: index.json: a manifest entry is not an object")
        name = _name_from(e.get("annotations") or {})
        key = str(e.get("digest"))
        if key not in plans:
            plans[key] = _plan_manifest(ex, e, [])
        if name and name not in plans[key].names:
            plans[key].names.append(name)
    return list(plans.values())


def _space(e: BaseException) -> LoadError | None:
    if isinstance(e, (OSError, OSFailure)) and getattr(e, "errno", None) == errno.ENOSPC:
        return LoadError(f"load: no space left on device ({e})")
    if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
        return LoadError(f"load: no space left on device (database: {e})")
    return None


def load(ctx: Context, src: BinaryIO, progress: Progress | None = None,
         on_image: Callable[[int, int], None] | None = None) -> list[Loaded]:
    """Load every image of the archive read from ``src``."""
    tmp = ctx.images.blobs.tmp
    _clean_stale(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    work = tmp / f"load-{os.getpid()}-{secrets.token_hex(6)}"
    work.mkdir()
    try:
        ex = _Extracted(work)
        ex.extract(_Counter(src, progress))
        if "manifest.json" in ex.files or "manifest.json" in ex.links:
            plans = _plan_docker(ex)
        elif "index.json" in ex.files:
            plans = _plan_oci(ex)
        else:
            raise LoadError("load: the archive has neither manifest.json nor index.json")
        for p in plans:
            for n in p.names:
                try:
                    reference.parse(n)
                except InvalidArgument as e:
                    raise LoadError(f"load: the archive names an image {n!r}: {e}") from None
        driver = ctx.driver(ctx.storage_driver)
        out = []
        for i, p in enumerate(plans):
            if on_image:
                on_image(i, len(plans))
            inputs = [ex.layer_input(path, digest) for path, digest in p.layers]
            try:
                img = ctx.images.add_image(driver, ctx.storage_driver, inputs, p.config,
                                           p.names[0] if p.names else None, p.manifest)
            except InvalidLayer as e:
                raise LoadError(f"load: {e}") from None
            for n in p.names[1:]:
                ctx.images.tag(img.id, n)
            out.append(Loaded(ctx.images.get(img.id), p.names))
        return out
    except (OSError, OSFailure, sqlite3.OperationalError) as e:
        err = _space(e)
        if err is not None:
            raise err from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
