"""Ordered validation of create-options and of generated configs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from moorage.errors import InvalidArgument
from moorage.spec import generate as g
from moorage.spec import validate as v
from moorage.spec.options import CreateOptions, Resources, RestartPolicy


def opts(**kw: Any) -> CreateOptions:
    return CreateOptions(image="img", **kw)


@pytest.fixture(autouse=True)
def eight_cpus_one_node(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The host these checks see: CPUs 0-7 and memory node 0, whatever this machine has."""
    (tmp_path / "cpus").write_text("0-7\n")
    (tmp_path / "mems").write_text("0\n")
    monkeypatch.setattr(v, "ONLINE", {"cpus": str(tmp_path / "cpus"), "mems": str(tmp_path / "mems")})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (opts(name="-bad"), r"Invalid container name \(-bad\)"),
        (opts(name="a"), "Invalid container name"),  # two characters at least
        (opts(name="x y"), "Invalid container name"),
        (opts(auto_remove=True, restart=RestartPolicy("always")), "Conflicting options: --restart and --rm"),
        (opts(resources=Resources(memory=5 * 1024 * 1024)), "Minimum memory limit allowed is 6MB"),
        (opts(resources=Resources(memory=-1)), "invalid memory limit"),
        (opts(resources=Resources(memory_swap=1 << 30)), "always set the Memory limit"),
        (opts(resources=Resources(memory=1 << 30, memory_swap=1 << 29)), "Minimum memoryswap limit"),
        (opts(resources=Resources(cpu_shares=-5)), "invalid CPU shares"),
        (opts(resources=Resources(cpu_quota=999)), "CPU cfs quota can not be less than 1ms"),
        (opts(resources=Resources(cpu_period=2_000_000)), "CPU cfs period"),
        (opts(resources=Resources(cpuset_cpus="0-a")), "Invalid value 0-a for cpuset cpus"),
        (opts(resources=Resources(cpuset_cpus="4-2")), "Invalid value 4-2 for cpuset cpus"),
        (opts(resources=Resources(cpuset_cpus="1,9")),
         "Requested CPUs are not available - requested 1,9, available: 0-7"),
        (opts(resources=Resources(cpuset_mems="1")), "Requested memory nodes are not available - requested 1, available: 0"),
        (opts(workdir="relative"), "needs to be an absolute path"),
        (opts(volumes=["/a:relative"]), "must be absolute"),
        (opts(volumes=["named:/data"]), "named volumes are not supported yet"),
        (opts(tmpfs=["run"]), "must be absolute"),
        (opts(cap_add=["fly"]), 'unknown capability: "CAP_FLY"'),
        (opts(cap_drop=["cap_swim"]), 'unknown capability: "CAP_SWIM"'),
        (opts(ulimits=["nofile=10:5"]), "soft limit must be less than or equal to hard limit"),
        (opts(ulimits=["speed=5"]), "invalid ulimit type: speed"),
        (opts(security_opt=["bogus"]), "invalid --security-opt"),
        (opts(security_opt=["no-new-privileges=maybe"]), "no-new-privileges"),
        (opts(oom_score_adj=1001), r"range for oom score adj is \[-1000, 1000\]"),
        (opts(stop_signal="SIGNOPE"), "Invalid signal: SIGNOPE"),
        (opts(stop_signal="0"), "Invalid signal: 0"),
        (opts(stop_timeout=-2), "invalid stop timeout"),
        (opts(env=["=x"]), "invalid environment variable"),
    ],
)
def test_option_errors(options: CreateOptions, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        v.validate_options(options)


@pytest.mark.parametrize(
    "options",
    [
        opts(),
        opts(name="web-1.a_b", restart=RestartPolicy("on-failure", 3)),
        opts(name="/leading-slash"),
        opts(auto_remove=True, restart=RestartPolicy("no")),
        opts(resources=Resources(memory=6 * 1024 * 1024, memory_swap=-1, cpu_shares=1024,
                                 cpu_quota=50000, cpu_period=100000, cpuset_cpus="0-2,4", pids_limit=10)),
        opts(volumes=["/a:/b:ro,z"], tmpfs=["/run:size=1m"], cap_add=["all"], cap_drop=["net_raw"]),
        opts(security_opt=["seccomp=unconfined", "no-new-privileges", "apparmor=unconfined"]),
        opts(stop_signal="SIGKILL"), opts(stop_signal="term"), opts(stop_signal="9"),
        opts(stop_signal="SIGRTMIN+3"), opts(ulimits=["nofile=1024:2048", "nproc=-1"]),
    ],
)
def test_valid_options_have_no_warnings(options: CreateOptions) -> None:
    assert v.validate_options(options) == []


@pytest.mark.parametrize(
    ("options", "warning"),
    [
        (opts(resources=Resources(cpu_shares=1)), "below the minimum"),
        (opts(resources=Resources(cpu_shares=10**6)), "above the maximum"),
        (opts(privileged=True, cap_add=["NET_ADMIN"]), "ignored with --privileged"),
        (opts(security_opt=["apparmor=docker-default"]), "AppArmor"),
        (opts(security_opt=["label=disable"]), "SELinux"),
        (opts(privileged=True, security_opt=["profile=default"]), "--privileged overrides"),
    ],
)
def test_option_warnings(options: CreateOptions, warning: str) -> None:
    warnings = v.validate_options(options)
    assert len(warnings) == 1
    assert warning in warnings[0]


def test_errors_are_collected_in_check_order() -> None:
    found = v.check_options(opts(name="!", cap_add=["fly"], resources=Resources(memory=1)))
    assert len(found.errors) == 3
    assert found.errors[0].startswith("Invalid container name")
    assert "memory" in found.errors[1]
    assert "CAP_FLY" in found.errors[2]
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        v.validate_options(opts(name="!", cap_add=["fly"]))


def test_check_name_takes_a_string() -> None:
    v.check_name("good_name")
    with pytest.raises(InvalidArgument):
        v.check_name("bad name")


# --- config checks -------------------------------------------------------------


def good_config() -> dict[str, Any]:
    return {
        "ociVersion": g.OCI_VERSION,
        "process": {
            "args": ["sh"], "cwd": "/", "env": ["A=1"],
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": [], "permitted": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}],
        },
        "root": {"path": "/rootfs"},
        "hostname": "h",
        "mounts": g.default_mounts("/bundle"),
        "linux": {
            "namespaces": [{"type": "uts"}, {"type": "pid"}],
            "maskedPaths": ["/proc/kcore"],
            "resources": {"memory": {"limit": 10, "swap": 20}},
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
        },
    }


def test_good_config_passes() -> None:
    assert v.validate_config(good_config()) == []


def _set(config: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        config = config[k]
    config[keys[-1]] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("ociVersion", "", "ociVersion"),
        ("root.path", "rel", "root.path"),
        ("process.args", [], "process.args"),
        ("process.args", ["sh", 1], "process.args"),
        ("process.cwd", "x", "process.cwd"),
        ("process.env", ["NOEQUALS"], "process.env"),
        ("process.rlimits", [{"type": "RLIMIT_NOFILE"}, {"type": "RLIMIT_NOFILE"}], "duplicate rlimit"),
        ("process.capabilities", {"bounding": ["CAP_FLY"]}, "unknown capability"),
        ("linux.namespaces", [{"type": "uts"}, {"type": "uts"}], "duplicate namespace"),
        ("linux.namespaces", [{"type": "uts"}, {"type": "bogus"}], "unknown namespace"),
        ("linux.namespaces", [{"type": "pid"}], "hostname without a private UTS"),
        ("linux.namespaces", [{"type": "uts", "path": "/proc/1/ns/uts"}], "hostname without a private UTS"),
        ("mounts", [{"destination": "rel", "type": "tmpfs"}], "mount destination"),
        ("mounts", [{"destination": "/x", "type": "bind", "source": "rel"}], "bind mount source"),
        ("linux.maskedPaths", ["proc/kcore"], "maskedPaths"),
        ("linux.resources", {"memory": {"limit": 20, "swap": 10}}, "swap is below"),
        ("linux.seccomp", {"syscalls": []}, "defaultAction"),
        ("linux.seccomp", {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [""], "action": "x"}]},
         "invalid names"),
        ("linux.seccomp", {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}, "no action"),
    ],
)
def test_config_errors(path: str, value: Any, message: str) -> None:
    config = copy.deepcopy(good_config())
    _set(config, path, value)
    with pytest.raises(InvalidArgument, match=message):
        v.validate_config(config)


def test_parse_cpuset() -> None:
    assert v.parse_cpuset("0-2,4") == {0, 1, 2, 4}
    assert v.parse_cpuset("3") == {3}
    assert v.parse_cpuset("2-1") is None
    assert v.parse_cpuset("1,,2") is None
