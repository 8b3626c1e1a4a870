"""generate_config: Docker's rules for args, env, cwd, mounts, resources, and the plugin calls."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from moorage.errors import InvalidArgument
from moorage.plugin import hookspecs
from moorage.plugin.manager import Plugins, Registry
from moorage.plugin.markers import hookimpl
from moorage.security import builtin as security_builtin
from moorage.spec import generate as g
from moorage.spec.options import CreateOptions, Resources
from moorage.supervisor import builtin as supervisor_builtin

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
GROUP = "root:x:0:root\nwheel:x:10:root,alice\nusers:x:100:alice\nalice:x:1000:\n"


def make_plugins(*extra: object) -> Plugins:
    """Plugins with only this part's built-ins (the other built-ins may not exist yet)."""
    pm = pluggy.PluginManager("moorage")
    pm.add_hookspecs(hookspecs)
    pm.register(security_builtin)
    pm.register(supervisor_builtin)
    for plugin in extra:
        pm.register(plugin)
    return Plugins(pm)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.fixture
def make(rootfs: Path, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    plugins = make_plugins()

    def _make(options: CreateOptions | None = None, image: dict[str, Any] | None = None,
              **kw: Any) -> dict[str, Any]:
        return g.generate_config(
            options or CreateOptions(image="img"),
            {"Cmd": ["/bin/sh"]} if image is None else image,
            container_id="c0ffee",
            rootfs=str(rootfs),
            hostname="c0ffee",
            container_dir=str(tmp_path / "bundle"),
            plugins=kw.pop("plugins", plugins),
            runtime_binary="/opt/moorage/runtime",
        )

    return _make


# --- args ------------------------------------------------------------------

# (image Entrypoint, image Cmd, --entrypoint, command) → process.args, as documented for
# `docker run`: a command replaces Cmd; --entrypoint replaces Entrypoint and drops Cmd.
ARGS_TABLE = [
    (None, ["sh"], None, None, ["sh"]),
    (["/ep"], ["a"], None, None, ["/ep", "a"]),
    (["/ep"], ["a"], None, ["b", "c"], ["/ep", "b", "c"]),
    (["/ep"], None, None, None, ["/ep"]),
    (["/ep"], ["a"], ["/x"], None, ["/x"]),
    (["/ep"], ["a"], ["/x"], ["b"], ["/x", "b"]),
    (["/ep"], ["a"], [], ["b"], ["b"]),
    (["/ep"], ["a"], [""], ["b"], ["b"]),
    (None, ["a"], None, [], ["a"]),
    (None, ["a", "b"], None, ["c"], ["c"]),
]


@pytest.mark.parametrize(("img_ep", "img_cmd", "entrypoint", "command", "expected"), ARGS_TABLE)
def test_process_args_follow_docker(img_ep: Any, img_cmd: Any, entrypoint: Any, command: Any,
                                    expected: list[str]) -> None:
    options = CreateOptions(image="i", entrypoint=entrypoint, command=command)
    assert g.process_args(options, {"Entrypoint": img_ep, "Cmd": img_cmd}) == expected


@pytest.mark.parametrize(
    ("img_ep", "img_cmd", "entrypoint", "command"),
    [
        (None, None, None, None),
        (["/ep"], ["a"], [], None),  # --entrypoint "" drops the image's Cmd too
        (None, [], None, []),
    ],
)
def test_no_command_is_an_error(img_ep: Any, img_cmd: Any, entrypoint: Any, command: Any) -> None:
    options = CreateOptions(image="i", entrypoint=entrypoint, command=command)
    with pytest.raises(InvalidArgument, match="no command specified"):
        g.process_args(options, {"Entrypoint": img_ep, "Cmd": img_cmd})


def test_generate_uses_args(make: Any) -> None:
    config = make(CreateOptions(image="i", command=["echo", "hi"]), {"Entrypoint": ["/bin/env"]})
    assert config["process"]["args"] == ["/bin/env", "echo", "hi"]


# --- env -------------------------------------------------------------------


def test_env_order_and_overrides() -> None:
    options = CreateOptions(image="i", env=["B=user", "NEW=1", "PATH=/only"], tty=True)
    env = g.process_env(options, {"Env": ["A=img", "B=img"]}, "host1", environ={})
    assert env == ["PATH=/only", "HOSTNAME=host1", "TERM=xterm", "A=img", "B=user", "NEW=1"]


def test_env_default_path_and_no_term_without_tty() -> None:
    env = g.process_env(CreateOptions(image="i"), {}, "h", environ={})
    assert env == [f"PATH={g.DEFAULT_PATH_ENV}", "HOSTNAME=h"]


def test_image_path_replaces_default() -> None:
    env = g.process_env(CreateOptions(image="i"), {"Env": ["PATH=/img/bin"]}, "h", environ={})
    assert env[0] == "PATH=/img/bin"


def test_bare_env_key_comes_from_environ_or_is_dropped() -> None:
    options = CreateOptions(image="i", env=["SET", "UNSET", "EMPTY="])
    env = g.process_env(options, {}, "h", environ={"SET": "from-host"})
    assert "SET=from-host" in env
    assert not any(e.startswith("UNSET") for e in env)
    assert "EMPTY=" in env


def test_env_without_name_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="invalid environment variable"):
        g.process_env(CreateOptions(image="i", env=["=x"]), {}, "h", environ={})


def test_home_is_added_from_passwd(make: Any) -> None:
    config = make(CreateOptions(image="i", user="alice"))
    assert "HOME=/home/alice" in config["process"]["env"]
    config = make(CreateOptions(image="i", env=["HOME=/custom"]))
    assert [e for e in config["process"]["env"] if e.startswith("HOME=")] == ["HOME=/custom"]


# --- cwd and user ------------------------------------------------------------


@pytest.mark.parametrize(
    ("workdir", "image_wd", "expected"),
    [(None, None, "/"), (None, "/app", "/app"), ("/w", "/app", "/w"), ("/a/../b/", None, "/b")],
)
def test_cwd(workdir: str | None, image_wd: str | None, expected: str) -> None:
    assert g.process_cwd(CreateOptions(image="i", workdir=workdir), {"WorkingDir": image_wd}) == expected


def test_relative_cwd_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="needs to be an absolute path"):
        g.process_cwd(CreateOptions(image="i", workdir="rel"), {})


def test_user_from_image_and_options(make: Any) -> None:
    config = make(image={"Cmd": ["sh"], "User": "alice"})
    assert config["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 100]}
    config = make(CreateOptions(image="i", user="0:10", group_add=["users"]),
                  {"Cmd": ["sh"], "User": "alice"})
    assert config["process"]["user"] == {"uid": 0, "gid": 10, "additionalGids": [10, 100]}


def test_default_user_is_root_with_its_groups(make: Any) -> None:
    assert make()["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0, 10]}


def test_unknown_user_uses_dockers_wording(make: Any) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user bob: no matching entries in passwd file"):
        make(CreateOptions(image="i", user="bob"))


# --- process flags -----------------------------------------------------------


def test_no_rlimits_or_oom_score_by_default(make: Any) -> None:
    process = make()["process"]
    assert "rlimits" not in process
    assert "oomScoreAdj" not in process
    assert process["noNewPrivileges"] is False
    assert process["terminal"] is False


def test_ulimits(make: Any) -> None:
    options = CreateOptions(image="i", ulimits=["nofile=1024:2048", "nproc=100", "core=-1", "nofile=10:20"],
                            oom_score_adj=500, tty=True)
    process = make(options)["process"]
    assert process["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 100},
        {"type": "RLIMIT_CORE", "soft": g.RLIM_INFINITY, "hard": g.RLIM_INFINITY},
    ]
    assert process["oomScoreAdj"] == 500
    assert process["terminal"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nofile", "invalid ulimit argument"),
        ("nofile=a", "invalid ulimit argument"),
        ("bogus=1", "invalid ulimit type: bogus"),
        ("nofile=2048:1024", "soft limit must be less than or equal to hard limit"),
        ("nofile=-2", "invalid ulimit argument"),
    ],
)
def test_bad_ulimits(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        g.parse_ulimit(text)


@pytest.mark.parametrize(
    ("opt", "expected"),
    [("no-new-privileges", True), ("no-new-privileges:true", True), ("no-new-privileges=false", False)],
)
def test_no_new_privileges(make: Any, opt: str, expected: bool) -> None:
    assert make(CreateOptions(image="i", security_opt=[opt]))["process"]["noNewPrivileges"] is expected


def test_bad_security_opt() -> None:
    with pytest.raises(InvalidArgument, match="invalid --security-opt"):
        g.parse_security_opts(["nonsense"])
    with pytest.raises(InvalidArgument, match="invalid --security-opt"):
        g.parse_security_opts(["color=blue"])


# --- mounts ------------------------------------------------------------------


def test_default_mounts(make: Any, tmp_path: Path) -> None:
    mounts = make()["mounts"]
    assert [(m["destination"], m["type"]) for m in mounts] == [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/sys", "sysfs"),
        ("/dev/mqueue", "mqueue"),
        ("/dev/shm", "tmpfs"),
        ("/etc/hosts", "bind"),
        ("/etc/hostname", "bind"),
        ("/etc/resolv.conf", "bind"),
    ]
    by_dest = {m["destination"]: m for m in mounts}
    assert by_dest["/dev"]["options"] == ["nosuid", "strictatime", "mode=755", "size=65536k"]
    assert by_dest["/dev/pts"]["options"] == [
        "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
    assert by_dest["/sys"]["options"] == ["nosuid", "noexec", "nodev", "ro"]
    assert by_dest["/dev/shm"]["options"] == ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
    assert by_dest["/etc/hosts"]["source"] == str(tmp_path / "bundle" / "hosts")
    assert by_dest["/etc/resolv.conf"]["options"] == ["rbind", "rprivate"]


def test_volumes_and_tmpfs(make: Any) -> None:
    options = CreateOptions(
        image="i",
        volumes=["/host/data:/data/sub:ro", "/host/x:/data", "/h:/shared:rshared,z"],
        tmpfs=["/run:exec,size=1m", "/dev/shm:size=128m"],
    )
    mounts = make(options)["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests.count("/dev/shm") == 1
    assert dests.index("/data") < dests.index("/data/sub")
    by_dest = {m["destination"]: m for m in mounts}
    assert by_dest["/data/sub"] == {
        "destination": "/data/sub", "type": "bind", "source": "/host/data",
        "options": ["rbind", "rprivate", "ro"]}
    assert by_dest["/data"]["options"] == ["rbind", "rprivate"]
    assert by_dest["/shared"]["options"] == ["rbind", "rshared"]
    assert by_dest["/run"]["options"] == ["nosuid", "nodev", "exec", "size=1m"]
    assert by_dest["/dev/shm"]["type"] == "tmpfs"
    assert by_dest["/dev/shm"]["options"] == ["noexec", "nosuid", "nodev", "size=128m"]


def test_user_dev_mount_drops_default_dev_submounts() -> None:
    merged = g.merge_mounts(g.default_mounts("/b"), [g.parse_volume("/hostdev:/dev")])
    dests = [m["destination"] for m in merged]
    assert not any(d.startswith("/dev/") for d in dests)
    assert dests.count("/dev") == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("data:/data", "named volumes are not supported yet"),
        ("/data", "anonymous volumes are not supported yet"),
        ("/a:rel", "must be absolute"),
        ("/a:/", "destination can't be '/'"),
        ("/a:/b:ro,rw", "invalid mode"),
        ("/a:/b:bogus", "invalid mode"),
        ("/a:/b:ro:x", "invalid volume specification"),
    ],
)
def test_bad_volumes(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        g.parse_volume(spec)


def test_duplicate_mount_point(make: Any) -> None:
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /x"):
        make(CreateOptions(image="i", volumes=["/a:/x"], tmpfs=["/x"]))


def test_relative_tmpfs_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="must be absolute"):
        g.parse_tmpfs("run")


def test_merge_mount_options() -> None:
    assert g.merge_mount_options(["noexec", "mode=1777", "exec", "mode=755", "ro", "rw"]) == [
        "exec", "mode=755", "rw"]


# --- linux -------------------------------------------------------------------


def test_linux_section(make: Any) -> None:
    config = make(CreateOptions(image="i", read_only=True))
    assert config["root"] == {"path": config["root"]["path"], "readonly": True}
    assert config["hostname"] == "c0ffee"
    linux = config["linux"]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "network"]
    assert linux["cgroupsPath"] == "/moorage/c0ffee"
    assert linux["maskedPaths"] == [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap"]
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    assert "rootfsPropagation" not in linux
    assert {d["path"] for d in linux["devices"]} == {
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
    json.dumps(config)  # the runtime reads it as JSON


def test_device_cgroup_rules(make: Any) -> None:
    devices = make()["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    rules = {(d["type"], d.get("major", "*"), d.get("minor", "*"), d["access"]) for d in devices[1:]}
    assert rules == {
        ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"),
        ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"),
        ("c", 136, "*", "rwm"), ("c", 10, 200, "rwm"), ("c", "*", "*", "m"), ("b", "*", "*", "m"),
    }
    assert all(d["allow"] for d in devices[1:])


def test_resources() -> None:
    res = Resources(memory=64 << 20, cpu_shares=1, cpu_quota=150000, cpu_period=100000,
                    cpuset_cpus="0-1", cpuset_mems="0", pids_limit=50)
    out = g.linux_resources(CreateOptions(image="i", resources=res), swap_accounting=True)
    assert out["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert out["cpu"] == {"shares": 2, "quota": 150000, "period": 100000, "cpus": "0-1", "mems": "0"}
    assert out["pids"] == {"limit": 50}


def test_resources_swap_variants() -> None:
    def memory(**kw: Any) -> Any:
        out = g.linux_resources(CreateOptions(image="i", resources=Resources(**kw)), swap_accounting=False)
        return out.get("memory")

    assert memory(memory=64 << 20) == {"limit": 64 << 20}
    assert memory(memory=64 << 20, memory_swap=-1) == {"limit": 64 << 20, "swap": -1}
    assert memory(memory=64 << 20, memory_swap=100 << 20) == {"limit": 64 << 20, "swap": 100 << 20}
    assert memory() is None
    assert "pids" not in g.linux_resources(CreateOptions(image="i", resources=Resources(pids_limit=-1)))


# --- plugins -----------------------------------------------------------------


def test_default_profile_is_applied(make: Any) -> None:
    config = make()
    assert "CAP_CHOWN" in config["process"]["capabilities"]["bounding"]
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


def test_privileged_selects_privileged_profile(make: Any) -> None:
    config = make(CreateOptions(image="i", privileged=True, security_opt=["profile=unconfined"]))
    assert "seccomp" not in config["linux"]
    assert "maskedPaths" not in config["linux"]
    assert "CAP_SYS_ADMIN" in config["process"]["capabilities"]["bounding"]


def test_unknown_profile_is_an_error(make: Any) -> None:
    with pytest.raises(InvalidArgument, match="unknown security profile 'nope'"):
        make(CreateOptions(image="i", security_opt=["profile=nope"]))


class _Recorder:
    name: ClassVar[str] = "recorder"
    seen: ClassVar[list[str]] = []

    def apply(self, config: dict[str, Any], options: CreateOptions) -> None:
        self.seen.append(options.image)
        config["process"]["capabilities"] = {"bounding": [], "effective": [], "permitted": []}


class _RecorderPlugin:
    @hookimpl
    def moorage_register_security_profiles(self, register: Registry[Any]) -> None:
        register.add(_Recorder)


def test_third_party_profile_by_name(make: Any) -> None:
    config = make(CreateOptions(image="mine", security_opt=["profile=recorder"]),
                  plugins=make_plugins(_RecorderPlugin()))
    assert _Recorder.seen[-1] == "mine"
    assert config["process"]["capabilities"]["bounding"] == []
    assert "seccomp" not in config["linux"]


def test_init_builtin_rewrites_args_and_mounts(make: Any) -> None:
    config = make(CreateOptions(image="i", init=True, command=["sleep", "1"]))
    assert config["process"]["args"] == ["/dev/init", "--", "sleep", "1"]
    assert config["mounts"][-1] == {
        "destination": "/dev/init", "type": "bind", "source": "/opt/moorage/runtime", "options": ["bind", "ro"]}


def test_init_none_and_no_init(make: Any) -> None:
    plain = make(CreateOptions(image="i", command=["x"]))
    none = make(CreateOptions(image="i", command=["x"], init=True, init_supervisor="none"))
    assert plain == none
    assert plain["process"]["args"] == ["x"]


def test_unknown_init_supervisor(make: Any) -> None:
    with pytest.raises(InvalidArgument, match="unknown init supervisor 'tini'"):
        make(CreateOptions(image="i", init=True, init_supervisor="tini"))
