"""The default seccomp profile and the Docker → OCI profile conversion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moorage.errors import InvalidArgument
from moorage.security.capabilities import DEFAULT_CAPABILITIES
from moorage.security.seccomp import parse_kernel_version, to_oci
from moorage.security.seccomp_default import CLONE_NAMESPACE_FLAGS, ENOSYS, default_profile

BLOCKED = [
    "mount", "umount2", "pivot_root", "reboot", "swapon", "swapoff", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "open_by_handle_at", "bpf", "perf_event_open",
    "keyctl", "add_key", "request_key", "unshare", "setns", "clone3", "userfaultfd", "settimeofday",
    "acct", "iopl", "ioperm", "syslog", "vhangup", "mbind",
]


def default(caps: Any = DEFAULT_CAPABILITIES, arch: str = "amd64", kernel: tuple[int, int] = (6, 1)) -> dict[str, Any]:
    return to_oci(default_profile(), capabilities=caps, arch=arch, kernel=kernel)


def unconditionally_allowed(profile: dict[str, Any]) -> set[str]:
    return {
        n for r in profile["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]
    }


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_oci_shape_and_json() -> None:
    profile = default()
    text = json.dumps(profile)
    assert json.loads(text) == profile
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == 1
    assert set(profile) <= {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "args"}
        assert rule["names"] and all(isinstance(n, str) and n for n in rule["names"])
        for arg in rule.get("args", []):
            assert set(arg) <= {"index", "value", "valueTwo", "op"}


def test_architectures() -> None:
    assert default(arch="amd64")["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert default(arch="arm64")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "architectures" not in default(arch="sparc64")


def test_ordinary_syscalls_allowed() -> None:
    allowed = unconditionally_allowed(default())
    for name in ["read", "write", "openat", "close", "execve", "exit_group", "mmap", "futex",
                 "epoll_wait", "io_uring_setup", "wait4", "kill", "rt_sigaction", "fork", "vfork",
                 "chroot", "arch_prctl", "getrandom", "statx", "socketpair", "sendmsg"]:
        assert name in allowed, name
    assert len(allowed) > 300
    assert "arch_prctl" not in unconditionally_allowed(default(arch="arm64"))


@pytest.mark.parametrize("name", BLOCKED)
def test_dangerous_syscalls_not_allowed(name: str) -> None:
    profile = default()
    assert not any(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(profile, name)), name


def test_clone_cannot_create_namespaces() -> None:
    (rule,) = rules_for(default(), "clone")
    assert rule["action"] == "SCMP_ACT_ALLOW"
    assert rule["args"] == [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}]
    assert CLONE_NAMESPACE_FLAGS == 0x7E020000
    (s390,) = rules_for(default(arch="s390x"), "clone")
    assert s390["args"][0]["index"] == 1


def test_clone3_is_enosys() -> None:
    (rule,) = rules_for(default(), "clone3")
    assert rule == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}
    assert ENOSYS == 38


def test_ptrace_needs_kernel_4_8() -> None:
    assert "ptrace" in unconditionally_allowed(default(kernel=(4, 8)))
    assert "ptrace" not in unconditionally_allowed(default(kernel=(4, 4)))


def test_personality_and_socket_are_restricted() -> None:
    profile = default()
    personas = sorted(r["args"][0]["value"] for r in rules_for(profile, "personality"))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    (sock,) = rules_for(profile, "socket")
    assert sock["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]


def test_capabilities_unlock_syscalls() -> None:
    caps = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_TIME", "CAP_SYS_PTRACE"]
    allowed = unconditionally_allowed(default(caps=caps, kernel=(4, 4)))
    assert {"mount", "unshare", "setns", "clone", "clone3", "settimeofday", "ptrace", "kcmp"} <= allowed
    assert not any(r["action"] == "SCMP_ACT_ERRNO" for r in rules_for(default(caps=caps), "clone3"))
    assert "reboot" not in allowed


def test_no_capabilities_drops_chroot() -> None:
    assert "chroot" not in unconditionally_allowed(default(caps=[]))


# --- conversion ----------------------------------------------------------------


def test_conversion_of_docker_features() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"name": "read", "action": "SCMP_ACT_ALLOW"},
            {"names": ["new"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
            {"names": ["old"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
            {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["x"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 5, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }
    out = to_oci(profile, capabilities=[], arch="amd64", kernel=(5, 4))
    assert out == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["x"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 5, "valueTwo": 7, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"syscalls": []}, "no defaultAction"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
          "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "use either 'architectures' or 'archMap'"),
        ({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}, "use either 'name' or 'names'"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"]}]}, "has no action"),
        ({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0}]}]}, "argument"),
    ],
)
def test_conversion_errors(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        to_oci(profile, capabilities=[], arch="amd64", kernel=(6, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6.18.44-fc-v657", (6, 18)), ("4.8", (4, 8)), ("5", (5, 0)), ("3.10.0-1160.el7.x86_64", (3, 10))],
)
def test_parse_kernel_version(text: str, expected: tuple[int, int]) -> None:
    assert parse_kernel_version(text) == expected
