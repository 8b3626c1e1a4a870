"""--user resolution against a rootfs's /etc/passwd and /etc/group (runc's rules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moorage.errors import InvalidArgument
from moorage.spec.users import ExecUser, parse_group, parse_passwd, resolve_user, secure_join

PASSWD = """\
# comment
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
broken line
bob:x:notanumber:1:::
nohome:x:1001:1001::
"""
GROUP = """\
root:x:0:root
wheel:x:10:root,alice
users:x:100:alice,daemon
alice:x:1000:
staff:x:50:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ExecUser(0, 0, [0, 10], "/root")),
        ("", ExecUser(0, 0, [0, 10], "/root")),
        ("root", ExecUser(0, 0, [0, 10], "/root")),
        ("alice", ExecUser(1000, 1000, [10, 100], "/home/alice")),
        ("1000", ExecUser(1000, 1000, [10, 100], "/home/alice")),
        ("alice:staff", ExecUser(1000, 50, [], "/home/alice")),
        ("alice:50", ExecUser(1000, 50, [], "/home/alice")),
        ("alice:4242", ExecUser(1000, 4242, [], "/home/alice")),
        ("4242", ExecUser(4242, 0, [], "/")),  # numeric uid needs no passwd entry
        ("4242:4343", ExecUser(4242, 4343, [], "/")),
        ("nohome", ExecUser(1001, 1001, [], "/")),
    ],
)
def test_resolve(rootfs: Path, spec: str | None, expected: ExecUser) -> None:
    assert resolve_user(str(rootfs), spec) == expected


def test_group_add_names_and_numbers(rootfs: Path) -> None:
    user = resolve_user(str(rootfs), "alice", ["staff", "777", "users"])
    assert user.additional_gids == [10, 100, 50, 777]


@pytest.mark.parametrize(
    ("spec", "group_add", "message"),
    [
        ("carol", [], "unable to find user carol: no matching entries in passwd file"),
        ("alice:nogroup", [], "unable to find group nogroup: no matching entries in group file"),
        ("alice", ["ghosts"], "unable to find group ghosts: no matching entries in group file"),
        ("-5", [], "out of range"),
    ],
)
def test_errors(rootfs: Path, spec: str, group_add: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve_user(str(rootfs), spec, group_add)


def test_missing_files(tmp_path: Path) -> None:
    assert resolve_user(str(tmp_path), None) == ExecUser(0, 0, [], "/")
    assert resolve_user(str(tmp_path), "12:34") == ExecUser(12, 34, [], "/")
    with pytest.raises(InvalidArgument, match="unable to find user alice"):
        resolve_user(str(tmp_path), "alice")


def test_parsers_skip_malformed_lines() -> None:
    assert [u.name for u in parse_passwd(PASSWD)] == ["root", "daemon", "alice", "nohome"]
    assert [g.members for g in parse_group(GROUP)][:3] == [["root"], ["root", "alice"], ["alice", "daemon"]]


# --- reading inside the rootfs only -------------------------------------------


def _host_passwd(tmp_path: Path) -> Path:
    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "passwd").write_text("evil:x:4000:4000::/evil:/bin/sh\n")
    (host / "group").write_text("evilgroup:x:4000:evil\n")
    return host


def test_absolute_symlink_does_not_escape(tmp_path: Path) -> None:
    host = _host_passwd(tmp_path)
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink(str(host / "passwd"), root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        resolve_user(str(root), "evil")


def test_relative_symlink_does_not_escape(tmp_path: Path) -> None:
    host = _host_passwd(tmp_path)
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink("../../../../../../../../" + str(host / "passwd"), root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        resolve_user(str(root), "evil")


def test_symlinked_etc_directory_does_not_escape(tmp_path: Path) -> None:
    host = _host_passwd(tmp_path)
    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink(str(host), root / "etc")
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        resolve_user(str(root), "evil")


def test_symlink_inside_rootfs_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "passwd").write_text("svc:x:300:300::/srv:/bin/sh\n")
    os.symlink("/data/passwd", root / "etc" / "passwd")
    assert resolve_user(str(root), "svc") == ExecUser(300, 300, [], "/srv")


def test_fifo_passwd_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")  # reading it would block forever
    assert resolve_user(str(root), "5") == ExecUser(5, 0, [], "/")


def test_secure_join(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "a" / "b").mkdir(parents=True)
    os.symlink("../..", root / "a" / "b" / "up")
    os.symlink("/a", root / "abs")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert secure_join(str(root), "/a/b/up/a/b/up/../../etc") == str(root / "etc")
    assert secure_join(str(root), "/abs/b") == str(root / "a" / "b")
    assert secure_join(str(root), "../../x") == str(root / "x")
    assert secure_join(str(root), "/missing/../a/./b") == str(root / "a" / "b")
    with pytest.raises(OSError):
        secure_join(str(root), "/loop1/x")
