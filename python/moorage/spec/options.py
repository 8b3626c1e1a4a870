"""The documented create-options dataclass: what ``moorage create``/``run``
flags (and ``engine.containers.create(...)`` keywords) parse into. The CLI
builds one of these and hands it to the Engine; nothing else reads flags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """``--restart``: name is ``no``, ``on-failure``, ``always`` or ``unless-stopped``."""

    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        from moorage.errors import InvalidArgument

        name, _, count = text.partition(":")
        if name not in ("no", "on-failure", "always", "unless-stopped"):
            raise InvalidArgument(f"invalid restart policy {text!r}")
        if count and name != "on-failure":
            raise InvalidArgument(f"maximum retry count cannot be used with restart policy {name!r}")
        try:
            n = int(count) if count else 0
        except ValueError:
            raise InvalidArgument(f"invalid restart policy retry count {count!r}") from None
        if n < 0:
            raise InvalidArgument("maximum retry count cannot be negative")
        return cls(name, n)

    def __str__(self) -> str:
        if self.name == "on-failure" and self.maximum_retry_count:
            return f"on-failure:{self.maximum_retry_count}"
        return self.name


@dataclass
class Resources:
    """cgroup limits (``--memory``, ``--cpus``, ``--cpu-shares``, ``--cpuset-cpus``, ``--pids-limit``)."""

    memory: int | None = None  #: bytes
    memory_swap: int | None = None  #: bytes, -1 unlimited
    cpu_shares: int | None = None
    cpu_quota: int | None = None  #: microseconds per period
    cpu_period: int | None = None  #: microseconds
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None


@dataclass
class CreateOptions:
    """Everything needed to create one container from an image."""

    image: str
    command: list[str] | None = None  #: None: the image's Cmd
    entrypoint: list[str] | None = None  #: None: the image's Entrypoint; [] clears it
    name: str | None = None
    env: list[str] = field(default_factory=list)  #: "K=V" (already merged with --env-file)
    workdir: str | None = None
    user: str | None = None  #: "uid[:gid]" or "name[:group]"
    group_add: list[str] = field(default_factory=list)
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    stdin_open: bool = False  #: -i
    read_only: bool = False
    init: bool = False
    init_supervisor: str = "builtin"  #: which registered init supervisor --init uses
    network: str = "none"  #: registered network mode name, or "container:<id>"
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    auto_remove: bool = False  #: --rm
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)  #: "seccomp=unconfined", "no-new-privileges"...
    resources: Resources = field(default_factory=Resources)
    ulimits: list[str] = field(default_factory=list)  #: "nofile=1024:2048"
    oom_score_adj: int | None = None
    stop_signal: str | None = None
    stop_timeout: int | None = None
    runtime: str = "builtin"  #: registered OCI runtime name
    storage_driver: str | None = None  #: None: the engine's default
    volumes: list[str] = field(default_factory=list)  #: "-v" bind mounts "src:dst[:ro]"
    tmpfs: list[str] = field(default_factory=list)  #: "/path[:opts]"
