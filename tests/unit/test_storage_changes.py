"""moorage.storage.changes: which runtime mount targets a layer leaves out, and
the xattrs of a vfs layer tar (write_tree_diff)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from moorage.storage.changes import ADDED, Change, runtime_mount_targets, write_tree_diff


def _user_xattrs_work(d: Path) -> bool:
    probe = d / ".probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def test_runtime_mount_targets_are_empty_files_no_lower_has(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "etc").mkdir(parents=True)
    (lower / "etc").mkdir(parents=True)
    (upper / "etc/hosts").write_bytes(b"")  # made by the runtime
    (upper / "etc/hostname").write_bytes(b"box\n")  # has content: the user's
    (upper / "etc/resolv.conf").write_bytes(b"")  # emptied, but the image has one
    (lower / "etc/resolv.conf").write_bytes(b"nameserver 1.1.1.1\n")
    assert runtime_mount_targets(upper, [lower]) == ["etc/hosts"]
    # a directory at the path is not a mount target
    (upper / "etc/hosts").unlink()
    (upper / "etc/hosts").mkdir()
    assert runtime_mount_targets(upper, [lower]) == []
    assert runtime_mount_targets(tmp_path / "missing", []) == []


def test_write_tree_diff_carries_xattrs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    if not _user_xattrs_work(root):
        pytest.skip("no user.* xattrs on this filesystem")
    (root / "d/f").write_text("hi")
    (root / "d/l").symlink_to("f")
    os.setxattr(root / "d/f", "user.moorage", b"x")
    os.setxattr(root / "d", "user.bin", b"\xff\x00\x01")  # not UTF-8: written byte for byte
    out = tmp_path / "layer.tar"
    write_tree_diff(root, [Change(p, ADDED) for p in ("d", "d/f", "d/l")], out)
    with tarfile.open(out, encoding="utf-8", errors="surrogateescape") as t:
        pax = {m.name: m.pax_headers for m in t}
    assert pax["d/f"]["SCHILY.xattr.user.moorage"] == "x"
    assert "SCHILY.xattr.user.moorage" not in pax["d/l"]

    _core = pytest.importorskip("moorage._core")
    dest = tmp_path / "dest"
    dest.mkdir()
    _core.apply_layer(str(out), str(dest), "vfs")
    assert os.getxattr(dest / "d/f", "user.moorage") == b"x"
    assert os.getxattr(dest / "d", "user.bin") == b"\xff\x00\x01"
    assert (dest / "d/f").read_text() == "hi" and os.readlink(dest / "d/l") == "f"
