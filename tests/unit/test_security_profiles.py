"""Built-in security profiles and capability arithmetic (Docker's --cap-add/--cap-drop rules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moorage.errors import InvalidArgument
from moorage.security import builtin
from moorage.security.capabilities import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    host_capabilities,
    normalize_capability,
    tweak_capabilities,
)
from moorage.spec import generate as g
from moorage.spec.options import CreateOptions

DOCKER_DEFAULTS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}


def base_config() -> dict[str, Any]:
    """The parts of a generated config the profiles touch."""
    return {
        "process": {"args": ["sh"]},
        "mounts": g.default_mounts("/bundle"),
        "linux": {
            "resources": g.linux_resources(CreateOptions(image="i")),
            "maskedPaths": list(g.MASKED_PATHS),
            "readonlyPaths": list(g.READONLY_PATHS),
        },
    }


def applied(profile: type, options: CreateOptions) -> dict[str, Any]:
    config = base_config()
    profile().apply(config, options)
    json.dumps(config)
    return config


def bounding(config: dict[str, Any]) -> list[str]:
    caps = config["process"]["capabilities"]
    assert caps["effective"] == caps["bounding"] == caps["permitted"]
    assert caps["inheritable"] == caps["ambient"] == []
    return list(caps["bounding"])


def rule_names(config: dict[str, Any]) -> set[str]:
    return {n for r in config["linux"]["seccomp"]["syscalls"] for n in r["names"]}


# --- capability arithmetic ---------------------------------------------------


def test_default_capabilities_are_dockers() -> None:
    assert set(DEFAULT_CAPABILITIES) == DOCKER_DEFAULTS
    assert len(DEFAULT_CAPABILITIES) == 14


def test_capability_table_matches_kernel_numbers() -> None:
    assert CAPABILITIES[0] == "CAP_CHOWN"
    assert CAPABILITIES[21] == "CAP_SYS_ADMIN"
    assert CAPABILITIES[24] == "CAP_SYS_RESOURCE"
    assert CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    assert len(set(CAPABILITIES)) == len(CAPABILITIES)


@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN", " Net_Admin "])
def test_normalize_capability(name: str) -> None:
    assert normalize_capability(name) == "CAP_NET_ADMIN"


def test_unknown_capability_is_named() -> None:
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_FLY"'):
        normalize_capability("fly")


def test_tweak_add_and_drop() -> None:
    caps = tweak_capabilities(DEFAULT_CAPABILITIES, ["net_admin", "CHOWN"], ["mknod", "cap_kill"])
    assert set(caps) == (DOCKER_DEFAULTS - {"CAP_MKNOD", "CAP_KILL"}) | {"CAP_NET_ADMIN"}
    assert len(caps) == len(set(caps))


def test_tweak_drop_all_keeps_only_added() -> None:
    assert tweak_capabilities(DEFAULT_CAPABILITIES, ["chown"], ["ALL"]) == ["CAP_CHOWN"]
    assert tweak_capabilities(DEFAULT_CAPABILITIES, [], ["all"]) == []


def test_tweak_add_all_minus_drops() -> None:
    caps = tweak_capabilities(DEFAULT_CAPABILITIES, ["ALL"], ["sys_admin"], all_caps=CAPABILITIES[:30])
    assert caps == [c for c in CAPABILITIES[:30] if c != "CAP_SYS_ADMIN"]


def test_host_capabilities_reads_cap_last_cap_and_bounding_set(tmp_path: Path) -> None:
    last = tmp_path / "cap_last_cap"
    last.write_text("37\n")
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")  # all but CAP_SYS_RESOURCE (24)
    missing = str(tmp_path / "missing")
    assert host_capabilities(str(last), missing) == list(CAPABILITIES[:38])
    assert host_capabilities(missing, str(status)) == [c for c in CAPABILITIES if c != "CAP_SYS_RESOURCE"]
    assert host_capabilities(str(last), str(status)) == [
        c for c in CAPABILITIES[:38] if c != "CAP_SYS_RESOURCE"]
    assert host_capabilities(missing, missing) == list(CAPABILITIES)


# --- profiles ----------------------------------------------------------------


def test_default_profile() -> None:
    config = applied(builtin.DefaultProfile, CreateOptions(image="i"))
    assert set(bounding(config)) == DOCKER_DEFAULTS
    seccomp = config["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "mount" not in rule_names(config)
    assert config["linux"]["maskedPaths"] == list(g.MASKED_PATHS)
    assert config["linux"]["readonlyPaths"] == list(g.READONLY_PATHS)


def test_default_profile_with_cap_add_sys_admin_unlocks_namespace_syscalls() -> None:
    config = applied(builtin.DefaultProfile, CreateOptions(image="i", cap_add=["SYS_ADMIN"]))
    assert "CAP_SYS_ADMIN" in bounding(config)
    rules = config["linux"]["seccomp"]["syscalls"]
    allowed = {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3"} <= allowed
    assert not any(r["action"] == "SCMP_ACT_ERRNO" and "clone3" in r["names"] for r in rules)


def test_cap_drop_all() -> None:
    config = applied(builtin.DefaultProfile, CreateOptions(image="i", cap_drop=["ALL"], cap_add=["net_bind_service"]))
    assert bounding(config) == ["CAP_NET_BIND_SERVICE"]
    # without CAP_SYS_CHROOT, chroot(2) is no longer allowed either
    assert "chroot" not in rule_names(config)


def test_seccomp_unconfined_keeps_capabilities_and_masks() -> None:
    config = applied(builtin.DefaultProfile, CreateOptions(image="i", security_opt=["seccomp=unconfined"]))
    assert "seccomp" not in config["linux"]
    assert set(bounding(config)) == DOCKER_DEFAULTS
    assert config["linux"]["maskedPaths"]


def test_systempaths_unconfined() -> None:
    config = applied(builtin.DefaultProfile, CreateOptions(image="i", security_opt=["systempaths=unconfined"]))
    assert "maskedPaths" not in config["linux"]
    assert "readonlyPaths" not in config["linux"]


def test_seccomp_profile_file(tmp_path: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no chmod"},
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    config = applied(builtin.DefaultProfile, CreateOptions(image="i", security_opt=[f"seccomp={path}"]))
    seccomp = config["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp["syscalls"] == [
        {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"},
    ]
    assert seccomp["architectures"][0] in ("SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64")


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_bad_seccomp_profile_file(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "p.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidArgument, match="seccomp profile"):
        applied(builtin.DefaultProfile, CreateOptions(image="i", security_opt=[f"seccomp={path}"]))


def test_unconfined_profile() -> None:
    config = applied(builtin.UnconfinedProfile, CreateOptions(image="i", cap_add=["NET_ADMIN"]))
    assert "seccomp" not in config["linux"]
    assert set(bounding(config)) == DOCKER_DEFAULTS | {"CAP_NET_ADMIN"}
    assert config["linux"]["maskedPaths"] == list(g.MASKED_PATHS)


def test_privileged_profile() -> None:
    config = applied(builtin.PrivilegedProfile, CreateOptions(image="i", privileged=True, cap_drop=["ALL"]))
    assert bounding(config) == host_capabilities()
    assert "CAP_SYS_ADMIN" in bounding(config)
    linux = config["linux"]
    assert "seccomp" not in linux
    assert "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sysfs = next(m for m in config["mounts"] if m["type"] == "sysfs")
    assert "ro" not in sysfs["options"] and "rw" in sysfs["options"]


def test_registration() -> None:
    from moorage.plugin.manager import Registry

    reg: Registry[Any] = Registry("security profile")
    builtin.moorage_register_security_profiles(reg)
    assert reg.names() == ["default", "privileged", "unconfined"]
