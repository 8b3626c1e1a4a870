"""Resolving ``--user`` against the image's ``/etc/passwd`` and ``/etc/group``.

The rules are runc's (``moby/sys/user.GetExecUser``), which Docker uses:

- ``USER`` numeric is a uid whether or not passwd has it; a name must exist;
- ``USER:GROUP`` sets the primary gid (numeric, or a name that must exist) and
  then no supplementary groups are looked up;
- without an explicit group, the groups of /etc/group that list the matched
  user name become supplementary groups.

The files are read from inside the rootfs: every symlink on the way is
resolved as if the rootfs were ``/`` (like ``filepath-securejoin``), so an image
whose ``/etc/passwd`` points at ``/../../etc/shadow`` reads nothing of the host.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

from moorage.errors import InvalidArgument

_MAX_SYMLINKS = 255
_MAX_ID = 2**31 - 1


def secure_join(root: str, path: str) -> str:
    """Return the host path of ``path`` inside ``root``, resolving symlinks within ``root``.

    ``..`` and absolute symlink targets never leave ``root``. Missing components
    are kept as they are (the result may not exist)."""
    root = os.path.abspath(root)
    pending = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except OSError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        pending = [p for p in target.split("/") if p] + pending
    return os.path.join(root, *resolved)


def _read_in_rootfs(rootfs: str, path: str) -> str | None:
    """Return the text of ``path`` inside ``rootfs``, or None when it is not a readable file."""
    host = secure_join(rootfs, path)
    try:
        # O_NOFOLLOW: the last component was resolved by secure_join; a symlink
        # swapped in since then is refused rather than followed.
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(4 << 20).decode("utf-8", errors="replace")


@dataclass
class PasswdEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass
class GroupEntry:
    """One line of /etc/group."""

    name: str
    gid: int
    members: list[str] = field(default_factory=list)


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Parse passwd-format text, skipping comments and malformed lines."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 4:
            continue
        try:
            uid, gid = int(fields[2]), int(fields[3])
        except ValueError:
            continue
        home = fields[5] if len(fields) > 5 and fields[5] else "/"
        entries.append(PasswdEntry(fields[0], uid, gid, home))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    """Parse group-format text, skipping comments and malformed lines."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 3:
            continue
        try:
            gid = int(fields[2])
        except ValueError:
            continue
        members = [m for m in fields[3].split(",") if m] if len(fields) > 3 else []
        entries.append(GroupEntry(fields[0], gid, members))
    return entries


@dataclass
class ExecUser:
    """The resolved identity of the container process."""

    uid: int
    gid: int
    additional_gids: list[int]
    home: str


def _numeric(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value


def _check_range(value: int, what: str, text: str) -> int:
    if value < 0 or value > _MAX_ID:
        raise InvalidArgument(f"{what} {text} is out of range")
    return value


def _lookup_group(groups: list[GroupEntry], text: str) -> int:
    gid = _numeric(text)
    for g in groups:
        if (gid is not None and g.gid == gid) or (gid is None and g.name == text):
            return g.gid
    if gid is None:
        raise InvalidArgument(f"unable to find group {text}: no matching entries in group file")
    return _check_range(gid, "gid", text)


def resolve_user(rootfs: str, spec: str | None, group_add: list[str] | None = None) -> ExecUser:
    """Resolve ``spec`` (``uid``, ``uid:gid``, ``name``, ``name:group``; empty → root).

    ``group_add`` (``--group-add``, names or numbers) is appended to the
    supplementary groups. Raises :class:`~moorage.errors.InvalidArgument` with
    Docker's wording for unknown names."""
    passwd_text = _read_in_rootfs(rootfs, "/etc/passwd")
    group_text = _read_in_rootfs(rootfs, "/etc/group")
    users = parse_passwd(passwd_text) if passwd_text is not None else []
    groups = parse_group(group_text) if group_text is not None else []

    user_arg, _, group_arg = (spec or "").partition(":")
    uid_arg = _numeric(user_arg)
    result = ExecUser(uid=0, gid=0, additional_gids=[], home="/")

    if user_arg == "":
        matches = [u for u in users if u.uid == 0]
    elif uid_arg is not None:
        matches = [u for u in users if u.uid == uid_arg]
    else:
        matches = [u for u in users if u.name == user_arg]
    matched_name = ""
    if matches:
        matched_name = matches[0].name
        result.uid, result.gid, result.home = matches[0].uid, matches[0].gid, matches[0].home
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        result.uid = _check_range(uid_arg, "uid", user_arg)

    if group_arg:
        result.gid = _lookup_group(groups, group_arg)
    elif matched_name:
        # runc keeps the primary group here too when the user is listed in it
        # (Docker shows root in alpine with additionalGids [0, 1, 2, ...]).
        result.additional_gids = list(
            dict.fromkeys(g.gid for g in groups if matched_name in g.members)
        )

    for extra in group_add or []:
        gid = _lookup_group(groups, extra)
        if gid not in result.additional_gids:
            result.additional_gids.append(gid)
    return result
