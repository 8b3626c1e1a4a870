"""Linux capability names, Docker's default set, and ``--cap-add``/``--cap-drop``.

Names are kept in the ``CAP_`` form the OCI runtime spec uses. The numbering
is the kernel's (``include/uapi/linux/capability.h``): the privileged profile
maps ``0..cap_last_cap`` onto it.
"""

from __future__ import annotations

from collections.abc import Iterable

from moorage.errors import InvalidArgument

#: every capability the kernel defines, indexed by its number
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",  # 5
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",  # 40
)

#: what an unprivileged Docker container gets (Docker 20.10+)
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

CAP_LAST_CAP_PATH = "/proc/sys/kernel/cap_last_cap"
STATUS_PATH = "/proc/self/status"


def _bounding_mask(status_path: str) -> int | None:
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_capabilities(
    cap_last_cap_path: str = CAP_LAST_CAP_PATH, status_path: str = STATUS_PATH
) -> list[str]:
    """Return the capabilities a container of this engine can be given: those
    the running kernel knows (``cap_last_cap``) that are also in this process's
    bounding set (``CapBnd`` of ``/proc/self/status``).

    The second condition matters when moorage itself runs confined (in a
    container, or as here without CAP_SYS_RESOURCE): a runtime cannot grant a
    capability it lacks, and asking makes it fail. Capabilities newer than
    :data:`CAPABILITIES` have no name and are left out. Unreadable files
    impose no limit."""
    names = list(CAPABILITIES)
    try:
        with open(cap_last_cap_path, encoding="ascii") as f:
            names = names[: int(f.read().strip()) + 1]
    except (OSError, ValueError):
        pass
    mask = _bounding_mask(status_path)
    if mask is not None:
        names = [n for n in names if mask >> CAPABILITIES.index(n) & 1]
    return names


def normalize_capability(name: str) -> str:
    """Return ``CAP_NAME`` for ``name``/``cap_name`` (any case); ``ALL`` stays ``ALL``.

    Raises :class:`~moorage.errors.InvalidArgument` (Docker's wording) for a
    name the kernel does not define."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITIES:
        raise InvalidArgument(f'unknown capability: "{upper}"')
    return upper


def tweak_capabilities(
    basics: Iterable[str],
    cap_add: Iterable[str],
    cap_drop: Iterable[str],
    *,
    all_caps: Iterable[str] | None = None,
) -> list[str]:
    """Apply ``--cap-add``/``--cap-drop`` to ``basics`` the way Docker does.

    - ``--cap-add ALL``: every capability except the dropped ones;
    - else ``--cap-drop ALL``: exactly the added ones;
    - else: ``basics`` minus the dropped ones, plus the added ones.

    ``all_caps`` defaults to what the host kernel knows. The result keeps the
    order of first appearance and has no duplicates."""
    adds = [normalize_capability(c) for c in cap_add]
    drops = [normalize_capability(c) for c in cap_drop]
    if "ALL" in adds:
        every = list(all_caps) if all_caps is not None else host_capabilities()
        caps = [c for c in every if c not in drops]
    elif "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [normalize_capability(c) for c in basics if normalize_capability(c) not in drops]
        caps += adds
    return list(dict.fromkeys(caps))
