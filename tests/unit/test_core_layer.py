"""moorage._core layer and mount bindings: apply_layer, diff_layer,
sha256_file, mount_overlay, unmount, bind_mount. Skipped when the installed
extension predates them; mount tests need root and unmount in a finally."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.errors import InvalidArgument, MoorageError, OSFailure

_core = pytest.importorskip("moorage._core")
if not all(
    hasattr(_core, f) for f in ("apply_layer", "diff_layer", "mount_overlay", "sha256_file")
):
    pytest.skip("moorage._core lacks the layer functions", allow_module_level=True)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def make_tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    """``(name, data)``; ``data=None`` makes a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "dest"
    d.mkdir()
    return d


def test_apply_plain_reports_digests(tmp_path: Path, dest: Path) -> None:
    data = make_tar([("etc", None), ("etc/hostname", b"box\n"), ("bin/sh", b"#!")])
    src = tmp_path / "layer.tar"
    src.write_bytes(data)
    report = _core.apply_layer(str(src), str(dest))
    assert report == {
        "digest": sha(data),
        "diff_id": sha(data),
        "size": len(data),
        "compressed_size": len(data),
        "compression": "none",
        "entries": 3,
    }
    assert (dest / "etc/hostname").read_bytes() == b"box\n"
    assert (dest / "etc").stat().st_mtime == 1_600_000_000


def test_apply_gzip_digest_is_of_the_compressed_bytes(tmp_path: Path, dest: Path) -> None:
    data = make_tar([("a", b"a" * 100_000)])
    blob = gzip.compress(data)
    src = tmp_path / "layer.tar.gz"
    src.write_bytes(blob)
    report = _core.apply_layer(str(src), str(dest), "overlay")
    assert report["compression"] == "gzip"
    assert report["digest"] == sha(blob)
    assert report["diff_id"] == sha(data)
    assert report["compressed_size"] == len(blob)
    assert (dest / "a").read_bytes() == b"a" * 100_000


def test_vfs_whiteout_deletes(tmp_path: Path, dest: Path) -> None:
    (dest / "old").write_text("x")
    src = tmp_path / "l.tar"
    src.write_bytes(make_tar([(".wh.old", b""), ("new", b"n")]))
    _core.apply_layer(str(src), str(dest), "vfs")
    assert sorted(os.listdir(dest)) == ["new"]


def test_escaping_entry_fails_naming_it(tmp_path: Path, dest: Path) -> None:
    src = tmp_path / "evil.tar"
    src.write_bytes(make_tar([("../evil", b"x")]))
    with pytest.raises(MoorageError, match=r"\.\./evil"):
        _core.apply_layer(str(src), str(dest))
    assert not (tmp_path / "evil").exists()


def test_symlink_parent_stays_inside(tmp_path: Path, dest: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("root")
        link.type = tarfile.SYMTYPE
        link.linkname = "/"
        tar.addfile(link)
        # Through the link to "/" and on to the real outside dir's path.
        name = "root" + str(tmp_path / "escaped")
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    src = tmp_path / "evil.tar"
    src.write_bytes(buf.getvalue())
    _core.apply_layer(str(src), str(dest))
    assert not (tmp_path / "escaped").exists()
    assert (dest / str(tmp_path / "escaped").lstrip("/")).read_bytes() == b"x"


def test_bad_whiteout_format_and_missing_source(tmp_path: Path, dest: Path) -> None:
    src = tmp_path / "l.tar"
    src.write_bytes(make_tar([("a", b"a")]))
    with pytest.raises(InvalidArgument):
        _core.apply_layer(str(src), str(dest), "aufs")
    with pytest.raises(OSFailure) as info:
        _core.apply_layer(str(tmp_path / "missing.tar"), str(dest))
    assert info.value.errno == 2


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert _core.sha256_file(str(p)) == sha(b"abc")
    with pytest.raises(OSFailure):
        _core.sha256_file(str(tmp_path / "missing"))


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Targets appended here are unmounted at teardown, even on failure."""
    targets: list[Path] = []
    yield targets
    for t in reversed(targets):
        try:
            _core.unmount(str(t), True)
        except OSFailure:
            pass


@needs_root
def test_overlay_diff_round_trip(tmp_path: Path, mounts: list[Path]) -> None:
    lower, upper, work, merged, copy = (
        tmp_path / n for n in ("lower", "upper", "work", "merged", "copy")
    )
    for d in (lower, upper, work, merged, copy):
        d.mkdir()
    base = tmp_path / "base.tar"
    base.write_bytes(make_tar([("etc", None), ("etc/a", b"a"), ("etc/b", b"b")]))
    _core.apply_layer(str(base), str(lower), "overlay")
    _core.apply_layer(str(base), str(copy), "vfs")

    _core.mount_overlay([str(lower)], str(upper), str(work), str(merged))
    mounts.append(merged)
    (merged / "etc/a").write_text("changed")
    (merged / "etc/b").unlink()
    (merged / "new").write_text("new")
    _core.unmount(str(merged))
    mounts.clear()

    out = tmp_path / "diff.tar"
    report = _core.diff_layer(str(upper), str(out))
    assert report["diff_id"] == _core.sha256_file(str(out))
    assert report["size"] == out.stat().st_size
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "etc/.wh.b" in names and "new" in names

    _core.apply_layer(str(out), str(copy), "vfs")
    assert (copy / "etc/a").read_text() == "changed"
    assert not (copy / "etc/b").exists()
    assert (copy / "new").read_text() == "new"


@needs_root
def test_many_layers_mount(tmp_path: Path, mounts: list[Path]) -> None:
    lowers = []
    for i in range(130):
        d = tmp_path / f"layer-{i:03d}-{'x' * 60}"
        d.mkdir()
        (d / f"f{i}").write_text(str(i))
        (d / "top").write_text(str(i))
        lowers.append(str(d))
    merged = tmp_path / "merged"
    merged.mkdir()
    _core.mount_overlay(lowers, None, None, str(merged))
    mounts.append(merged)
    assert (merged / "top").read_text() == "0"
    assert (merged / "f129").read_text() == "129"
    with pytest.raises(OSError):
        (merged / "x").write_text("read-only")


@needs_root
def test_bind_mount_and_unmount_errors(tmp_path: Path, mounts: list[Path]) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_text("hi")
    _core.bind_mount(str(src), str(dst), True)
    mounts.append(dst)
    assert (dst / "f").read_text() == "hi"
    with pytest.raises(OSError):
        (dst / "f").write_text("no")
    _core.unmount(str(dst))
    mounts.clear()
    with pytest.raises(OSFailure) as info:
        _core.unmount(str(dst))
    assert info.value.errno == 22
    with pytest.raises(InvalidArgument):
        _core.mount_overlay([], None, None, str(dst))
