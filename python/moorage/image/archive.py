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
import stat
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from moorage.errors import InvalidArgument, InvalidLayer, MoorageError, OSFailure
from moorage.image import reference
from moorage.image.store import MEDIA_CONFIG, MEDIA_MANIFEST, Image, LayerInput, index_entries

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
MAX_MANIFEST = 4 << 20  #: a platform manifest kept beside an index larger than this is left out
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


def _is_digest(d: str) -> bool:
    return re.fullmatch(r"sha256:[a-f0-9]{64}", d) is not None


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
    index: bytes | None = None  #: the stored multi-platform index (its manifest among those it lists)
    index_manifests: list[str] = field(default_factory=list)  #: the index's other manifests in the store


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
            if img.index_digest and store.blobs.exists(img.index_digest):
                index = store.blobs.read(img.index_digest)
                listed = index_entries(index)
                if img.manifest_digest in listed:
                    out[img.id].index = index
                    out[img.id].index_manifests = [d for d in listed if d != img.manifest_digest
                                                   and _is_digest(d) and store.blobs.exists(d)]
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


def save_total(ctx: Context, names: Iterable[str], fmt: str = "docker-archive") -> int:
    """Bytes of blobs a save of ``names`` writes from files (for a progress bar)."""
    total = 0
    seen: set[str] = set()
    for s in _collect(ctx, names):
        files = [s.config_digest, *(d["digest"] for d in s.layers)]
        if s.index is not None and fmt != "docker-archive":
            files += [*s.index_manifests, _sha(s.index)]
        for digest in files:
            if digest not in seen:
                seen.add(digest)
                total += ctx.images.blobs.path(digest).stat().st_size
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
        if s.index is not None and not docker:
            # The multi-platform index, as loaded: its digest survives a round
            # trip; of the other platforms only the manifests are there.
            desc = {"mediaType": json.loads(s.index).get("mediaType") or MEDIA_INDEX,
                    "digest": _sha(s.index), "size": len(s.index)}
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
        if s.index is not None and not docker:
            for extra in [*s.index_manifests, _sha(s.index)]:
                if extra not in written:
                    written.add(extra)
                    w.add_file(f"blobs/sha256/{extra[7:]}", blobs.path(extra))
    w.close()


# ===================================================================== load
class _Counter:
    """Counts bytes read from a file object (the compressed-input path)."""

    def __init__(self, f: Any, progress: Progress | None) -> None:
        self.f = f
        self.progress = progress
        self.seen = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.f.read(n)
        self.seen += len(data)
        if self.progress and data:
            self.progress(len(data))
        return data


class _FdSource:
    """The outer archive as a raw fd: headers are read, bodies are moved to
    their files in the kernel (copy_file_range from a file, splice from a
    pipe), so a large archive is never copied through Python."""

    def __init__(self, fd: int, progress: Progress | None) -> None:
        self.fd = fd
        self.progress = progress
        self.head = b""  # bytes read ahead (the magic-number peek)
        self.seen = 0
        mode = os.fstat(fd).st_mode
        self.kind = "file" if stat.S_ISREG(mode) else "pipe" if stat.S_ISFIFO(mode) else "other"

    def _count(self, n: int) -> None:
        self.seen += n
        if self.progress and n:
            self.progress(n)

    def peek(self, n: int) -> bytes:
        while len(self.head) < n:
            chunk = os.read(self.fd, n - len(self.head))
            if not chunk:
                break
            self.head += chunk
        return self.head[:n]

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (short only at the end)."""
        out = bytearray()
        if self.head:
            take = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(take):]
            out += take
        while n < 0 or len(out) < n:
            chunk = os.read(self.fd, CHUNK if n < 0 else min(CHUNK, n - len(out)))
            if not chunk:
                break
            out += chunk
        self._count(len(out))
        return bytes(out)

    def copy_to(self, out: int, n: int) -> int:
        """Move ``n`` bytes to the fd ``out``; returns how many there were."""
        done = 0
        if self.head:
            take = self.head[:n]
            self.head = self.head[len(take):]
            os.write(out, take)
            done += len(take)
            self._count(len(take))
        while done < n:
            want = min(n - done, 1 << 30)
            if self.kind == "file":
                try:
                    got = os.copy_file_range(self.fd, out, want)
                except OSError as e:  # another filesystem (EXDEV), or no support: sendfile does any pair
                    if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    self.kind = "sendfile"
                    continue
            elif self.kind == "sendfile":
                got = os.sendfile(out, self.fd, None, want)
            elif self.kind == "pipe":
                got = os.splice(self.fd, out, want)
            else:
                chunk = os.read(self.fd, min(want, CHUNK))
                got = len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            if got == 0:
                break
            done += got
            self._count(got)
        return done

    def skip(self, n: int) -> int:
        if self.kind in ("file", "sendfile") and not self.head:
            size = os.fstat(self.fd).st_size
            pos = os.lseek(self.fd, 0, os.SEEK_CUR)
            step = min(n, max(size - pos, 0))
            os.lseek(self.fd, step, os.SEEK_CUR)
            self._count(step)
            return step
        done = 0
        while done < n:
            got = len(self.read(min(CHUNK, n - done)))
            if got == 0:
                break
            done += got
        return done


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


class _Truncated(Exception):
    pass


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 (GNU) for large values
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" \0")
    return int(text, 8) if text else 0


def _cstr(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.index(b" ", pos)
        length = int(data[pos:sp])
        key, _, value = data[sp + 1:pos + length - 1].partition(b"=")
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class _Extracted:
    """The archive's regular files under ``dir`` (by archive name), its links,
    and their sha256 once asked for."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.files: dict[str, tuple[Path, int]] = {}  # name → (path, size)
        self.links: dict[str, str] = {}  # name → target name (archive-relative)
        self.digests: dict[Path, str] = {}
        self._n = 0

    def _path(self) -> Path:
        self._n += 1
        return self.dir / f"{self._n:06d}"

    def _link(self, name: str, target: str, symbolic: bool) -> None:
        if symbolic and not target.startswith("/"):
            target = posixpath.join(posixpath.dirname(name), target)
        self.links[name] = _member_name(posixpath.normpath("/" + target))
        self.files.pop(name, None)

    def extract(self, src: BinaryIO | int, progress: Progress | None) -> None:
        """Read the whole outer archive once (plain tar from an fd: zero-copy; compressed: tarfile)."""
        try:
            if isinstance(src, int):
                fd = _FdSource(src, progress)
                magic = fd.peek(6)
                if not magic:
                    raise LoadError("load: the input is empty")
                if magic[:4] == b"\x28\xb5\x2f\xfd":
                    raise LoadError("load: zstd-compressed archives are not supported; decompress it first")
                if magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00":
                    self._extract_tarfile(_Counter(fd, None))
                else:
                    self._extract_fd(fd)
            else:
                counter = _Counter(src, progress)
                self._extract_tarfile(counter)
        except _Truncated as e:
            raise LoadError(f"load: the archive is truncated at entry {e}") from None
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise LoadError(f"load: no space left on device while extracting the archive to {self.dir}") from None
            raise LoadError(f"load: reading the archive: {e.strerror or e}") from None

    def _extract_fd(self, src: _FdSource) -> None:
        pax_global: dict[str, str] = {}
        pending: dict[str, str] = {}
        name = "(start)"
        first = True
        while True:
            block = src.read(512)
            if len(block) < 512:
                if first and len(block) < 512:
                    raise LoadError("load: the input is not a tar archive (plain, gzip, bzip2 or xz)")
                raise _Truncated(f"{name} (the archive ends without its end-of-archive blocks)")
            if block == bytes(512):
                src.skip(1 << 62)  # the rest is padding: drain it so a writer on a pipe is not cut off
                return
            try:
                chk, size = _octal(block[148:156]), _octal(block[124:136])
            except ValueError:
                chk = size = -1
            if chk not in (sum(block[:148]) + 256 + sum(block[156:]),
                           sum(b - 256 if b > 127 else b for b in block[:148] + b" " * 8 + block[156:])):
                if first:
                    raise LoadError("load: the input is not a tar archive (plain, gzip, bzip2 or xz)")
                raise LoadError(f"load: the archive is corrupt: bad header checksum after entry {name}")
            first = False
            kind = block[156:157]
            raw_name = _cstr(block[0:100])
            if block[257:263] == b"ustar\0" and block[345]:
                raw_name = _cstr(block[345:500]) + "/" + raw_name
            linkname = _cstr(block[157:257])
            padded = size + (-size % 512)
            if kind in (b"x", b"g", b"L", b"K"):
                data = src.read(padded)
                if len(data) < padded:
                    raise _Truncated(f"{name} (in an extended header)")
                data = data[:size]
                if kind == b"x":
                    pending.update(_pax(data))
                elif kind == b"g":
                    pax_global.update(_pax(data))
                elif kind == b"L":
                    pending["path"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                else:
                    pending["linkpath"] = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue
            meta = {**pax_global, **pending}
            pending = {}
            name = _member_name(meta.get("path", raw_name))
            linkname = meta.get("linkpath", linkname)
            if "size" in meta:
                size = int(meta["size"])
                padded = size + (-size % 512)
            if kind in (b"0", b"\0", b"7"):
                path = self._path()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    got = src.copy_to(fd, size)
                finally:
                    os.close(fd)
                if got < size or src.skip(padded - size) < padded - size:
                    raise _Truncated(name)
                self.files[name] = (path, size)
                self.links.pop(name, None)
                continue
            if kind == b"2":
                self._link(name, linkname, True)
            elif kind == b"1":
                self._link(name, linkname, False)
            if src.skip(padded) < padded:
                raise _Truncated(name)

    def _extract_tarfile(self, src: _Counter) -> None:
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
                        f = tar.extractfile(m)
                        if f is None:
                            continue
                        path = self._path()
                        with open(path, "wb") as out:
                            shutil.copyfileobj(f, out, CHUNK)
                            if out.tell() != m.size:
                                raise _Truncated(name)
                        self.files[name] = (path, m.size)
                        self.links.pop(name, None)
                    elif m.issym():
                        self._link(name, m.linkname, True)
                    elif m.islnk():
                        self._link(name, m.linkname, False)
        except (tarfile.ReadError, EOFError, tarfile.HeaderError, ValueError) as e:
            if isinstance(e, EOFError) or "unexpected end" in str(e):
                raise _Truncated(name) from None
            raise LoadError(f"load: the archive is corrupt at entry {name} ({e})") from None

    def lookup(self, name: str, what: str, missing: str | None = None) -> tuple[Path, str, int]:
        """(path, sha256, size) of an archive file, following links; a file
        named ``blobs/sha256/<hex>`` must hash to that name."""
        from moorage import _core

        n = _member_name(name)
        for _ in range(16):
            if n in self.files:
                path, size = self.files[n]
                if path not in self.digests:
                    self.digests[path] = _core.sha256_file(str(path))
                    mb = _BLOB_NAME.match(n)
                    if mb and self.digests[path][7:] != mb.group(1):
                        raise LoadError(f"load: blob sha256:{mb.group(1)} in the archive has content digest "
                                        f"{self.digests[path]}")
                return path, self.digests[path], size
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
        link = self._path()
        os.link(path, link)
        return LayerInput(link, digest, adopt=True)


@dataclass
class _Plan:
    config: bytes
    layers: list[tuple[Path, str]]
    names: list[str]
    manifest: bytes | None = None
    index: bytes | None = None  #: the multi-platform index the manifest was chosen from
    others: list[bytes] = field(default_factory=list)  #: the index's other manifests present in the archive


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
        plan = _plan_manifest(ex, pick[0], names, depth + 1)
        if plan.index is None and plan.manifest is not None:
            # The innermost index is the image's (an outer one only wraps it);
            # the other platforms' manifests are kept when the archive has them.
            plan.index = path.read_bytes()
            for m in entries:
                if m is not pick[0] and isinstance(m, dict) and m.get("mediaType") in MANIFEST_TYPES:
                    other = _other_manifest(ex, m)
                    if other is not None:
                        plan.others.append(other)
        return plan
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


def _other_manifest(ex: _Extracted, desc: dict[str, Any]) -> bytes | None:
    """Another platform's manifest, when the archive has it (its blobs need not be there)."""
    digest = desc.get("digest")
    if not isinstance(digest, str) or not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
        return None
    name = f"blobs/sha256/{digest[7:]}"
    if name not in ex.files and name not in ex.links:
        return None
    path, _, size = ex.blob(desc, "manifest")  # present: it must match its digest and size
    if size > MAX_MANIFEST:
        return None
    data = path.read_bytes()
    try:
        if not isinstance(json.loads(data), dict):
            return None
    except ValueError:
        return None
    return data


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


def load(ctx: Context, src: BinaryIO | int, progress: Progress | None = None,
         on_image: Callable[[int, int], None] | None = None) -> list[Loaded]:
    """Load every image of the archive read from ``src`` (a file object, or a
    raw fd positioned at the archive's start: the zero-copy path)."""
    # Held shared for the whole load, so `system check --repair` or a prune
    # (exclusive) never takes this load's temp directory for a leftover.
    with ctx.images.gc_lock():
        tmp = ctx.images.blobs.tmp
        _clean_stale(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        work = tmp / f"load-{os.getpid()}-{secrets.token_hex(6)}"
        work.mkdir()
        try:
            ex = _Extracted(work)
            ex.extract(src, progress)
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
                                               p.names[0] if p.names else None, p.manifest, p.index, p.others)
                except (InvalidLayer, InvalidArgument) as e:
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
