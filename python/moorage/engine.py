"""The Engine: what Python users call, and what the CLI is a client of.

Shaped after docker-py's high-level API::

    import moorage
    engine = moorage.Engine(root="/tmp/r", runroot="/tmp/rr")
    engine.images.import_("rootfs.tar", repository="busybox", tag="latest")
    out = engine.containers.run("busybox", ["echo", "hi"], remove=True)
    c = engine.containers.run("busybox", ["sleep", "60"], detach=True)
    c.stop(); c.remove()
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from moorage.errors import Conflict, InvalidArgument, NotFound
from moorage.image.store import Image, ImageStore
from moorage.plugin.manager import Plugins, build_plugin_manager
from moorage.runtime.containers import ContainerManager, ContainerRecord
from moorage.runtime.store import Store
from moorage.spec.options import CreateOptions, Resources, RestartPolicy

DEFAULT_ROOT = "/var/lib/moorage"
DEFAULT_RUNROOT = "/run/moorage"


class Context:
    """Shared state of one Engine: paths, database, plugins, drivers."""

    def __init__(self, root: str | os.PathLike[str] | None, runroot: str | os.PathLike[str] | None,
                 storage_driver: str | None) -> None:
        self.root = Path(root or os.environ.get("MOORAGE_ROOT") or DEFAULT_ROOT).absolute()
        self.runroot = Path(runroot or os.environ.get("MOORAGE_RUNROOT") or DEFAULT_RUNROOT).absolute()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.runroot.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = Store(self.root / "moorage.db")
        self.images = ImageStore(self.root, self.db)
        self._drivers: dict[str, Any] = {}
        self.storage_driver = storage_driver or os.environ.get("MOORAGE_STORAGE_DRIVER") or "overlay"
        self._runtime_binary: str | None = None

    @cached_property
    def plugins(self) -> Plugins:
        return Plugins(build_plugin_manager(cache_dir=self.runroot))

    def driver(self, name: str) -> Any:
        if name not in self._drivers:
            cls = self.plugins.storage.get(name)
            self._drivers[name] = cls(self.root / "storage" / name)
        return self._drivers[name]

    def runtime_binary(self) -> str:
        if self._runtime_binary is None:
            from moorage.runtime.oci import builtin_binary

            self._runtime_binary = builtin_binary(str(self.runroot))
        return self._runtime_binary


class Container:
    """A container handle (docker-py's ``Container``)."""

    def __init__(self, engine: Engine, record: ContainerRecord) -> None:
        self._engine = engine
        self._record = record

    def __repr__(self) -> str:
        return f"<Container: {self.short_id}>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def short_id(self) -> str:
        return self._record.short_id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def status(self) -> str:
        return self._record.state

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._record.options.labels)

    @property
    def image(self) -> Image:
        return self._engine.images.get(self._record.image_id)

    @property
    def attrs(self) -> dict[str, Any]:
        from moorage.runtime.inspect import container_inspect

        return container_inspect(self._engine.ctx, self._record)

    def reload(self) -> None:
        self._record = self._engine._mgr.get(self.id)

    def start(self) -> None:
        self._engine._mgr.start(self.id)
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        self._engine._mgr.stop(self.id, timeout)
        self.reload()

    def kill(self, signal: str | int = "KILL") -> None:
        self._engine._mgr.kill(self.id, signal)
        self.reload()

    def restart(self, timeout: int | None = None) -> None:
        self._engine._mgr.stop(self.id, timeout)
        self._engine._mgr.start(self.id)
        self.reload()

    def pause(self) -> None:
        self._engine._mgr.pause(self.id)
        self.reload()

    def unpause(self) -> None:
        self._engine._mgr.unpause(self.id)
        self.reload()

    def rename(self, name: str) -> None:
        self._engine._mgr.rename(self.id, name)
        self.reload()

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        code = self._engine._mgr.wait(self.id, timeout)
        self.reload()
        return {"StatusCode": code, "Error": {"Message": self._record.error} if self._record.error else None}

    def logs(self, stdout: bool = True, stderr: bool = True, timestamps: bool = False,
             tail: int | str = "all", since: float | None = None, stream: bool = False,
             follow: bool = False) -> bytes | Iterator[bytes]:
        n = None if tail == "all" else int(tail)
        it = self._engine._mgr.logs(self.id, follow=follow or (stream and follow), tail=n, since=since,
                                    stdout=stdout, stderr=stderr)
        chunks = ((f"{t} ".encode() if timestamps else b"") + data for _, t, data in it)
        return chunks if stream else b"".join(chunks)

    def exec_run(self, cmd: str | list[str], environment: list[str] | dict[str, str] | None = None,
                 user: str = "", workdir: str | None = None, detach: bool = False) -> tuple[int, bytes]:
        import subprocess

        args = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        env = [f"{k}={v}" for k, v in environment.items()] if isinstance(environment, dict) else environment
        out: list[bytes] = []
        r = self._engine._mgr.exec(self.id, args, env=env, user=user or None, workdir=workdir, detach=detach,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if not detach else subprocess.DEVNULL,
                                   stderr=subprocess.STDOUT if not detach else subprocess.DEVNULL, output=out)
        return r, b"".join(out)

    def attach(self, stdout: bool = True, stderr: bool = True, stream: bool = False, logs: bool = False) -> Any:
        """docker-py's ``attach``: the container's output from now on (with
        ``logs``, what it wrote before first), as bytes once it exits, or with
        ``stream`` as a generator of chunks. Output written while the logs are
        read may appear twice."""
        from moorage.runtime.attach import FrameReader

        mgr = self._engine._mgr
        rec, sock = mgr.attach(self.id)

        def gen() -> Iterator[bytes]:
            with sock:
                if logs:
                    for _stream, _, data in mgr.logs(rec.id, stdout=stdout, stderr=stderr):
                        yield data
                frames = FrameReader()
                while True:
                    data = sock.recv(65536)
                    if not data:
                        # The stream ends at the exit; let the record say so
                        # before the caller goes on (e.g. to remove it).
                        mgr._wait_exited(rec.id, 5.0)
                        return
                    if rec.options.tty:
                        if stdout:
                            yield data
                        continue
                    for kind, payload in frames.feed(data):
                        if (stdout and kind == 1) or (stderr and kind == 2):
                            yield payload

        return gen() if stream else b"".join(gen())

    def update(self, *, cpu_period: int | None = None, cpu_quota: int | None = None, cpu_shares: int | None = None,
               cpuset_cpus: str | None = None, cpuset_mems: str | None = None, mem_limit: int | str | None = None,
               memswap_limit: int | str | None = None, nano_cpus: int | None = None, pids_limit: int | None = None,
               restart_policy: dict[str, Any] | None = None, **unsupported: Any) -> dict[str, Any]:
        """docker-py's ``update``: new limits and/or restart policy, live if the container runs."""
        if unsupported:
            raise InvalidArgument(f"unsupported update options: {', '.join(sorted(unsupported))}")
        res = Resources(cpu_period=cpu_period, cpu_quota=cpu_quota, cpu_shares=cpu_shares, cpuset_cpus=cpuset_cpus,
                        cpuset_mems=cpuset_mems, memory=_size(mem_limit),
                        memory_swap=-1 if memswap_limit in (-1, "-1") else _size(memswap_limit),
                        pids_limit=pids_limit)
        if nano_cpus is not None:
            res.cpu_period, res.cpu_quota = 100000, int(nano_cpus / 1e9 * 100000)
        restart = (RestartPolicy(restart_policy.get("Name", "no"), int(restart_policy.get("MaximumRetryCount", 0)))
                   if restart_policy is not None else None)
        self._record = self._engine._mgr.update(self.id, res, restart)
        return {"Warnings": list(self._engine._mgr.warnings)}

    def stats(self, decode: bool | None = None, stream: bool = True, one_shot: bool | None = None,
              interval: float = 1.0) -> Any:
        """Resource usage in the Docker API's stats shape, as docker-py returns it.

        ``stream=False``: one dict whose ``precpu_stats`` is a sample taken
        ``interval`` seconds before (none with ``one_shot=True``), so CPU use
        can be computed from it. ``stream=True``: a generator yielding one
        sample per ``interval`` (dicts with ``decode=True``, else JSON bytes)
        until the container stops."""
        import json
        import time

        from moorage.runtime.stats import sample, with_previous

        mgr = self._engine._mgr
        if not stream:
            first = sample(mgr, mgr.get(self.id))
            if one_shot:
                return with_previous(first, None)
            time.sleep(interval)
            return with_previous(sample(mgr, mgr.get(self.id)), first)

        def gen() -> Iterator[Any]:
            prev = None
            while True:
                rec = mgr.get(self.id)
                if rec.state not in ("running", "paused"):
                    return
                cur = sample(mgr, rec)
                out = with_previous(cur, prev)
                yield out if decode else json.dumps(out).encode() + b"\n"
                prev = cur
                time.sleep(interval)

        return gen()

    def top(self, ps_args: str | None = None) -> dict[str, Any]:
        """``{"Titles": [...], "Processes": [...]}``; ``ps_args`` (e.g. ``"aux"``) runs the host's ps with them."""
        from moorage.runtime.procs import top

        return top(self._engine._mgr.pids(self.id), ps_args.split() if ps_args else None)

    def remove(self, force: bool = False, v: bool = False) -> None:
        self._engine._mgr.remove(self.id, force=force, volumes=v)

    def diff(self) -> builtins.list[dict[str, Any]]:
        """Changes to the filesystem: ``[{"Path": "/etc", "Kind": 0}]`` (0 changed, 1 added, 2 deleted)."""
        from moorage.image.commit import container_changes

        return [c.as_api() for c in container_changes(self._engine.ctx, self._engine._mgr.get(self.id))]

    def commit(self, repository: str | None = None, tag: str | None = None, message: str | None = None,
               author: str | None = None, changes: str | builtins.list[str] | None = None,
               pause: bool = True) -> Image:
        """``docker commit``: a new image of the container's changes on top of its image."""
        from moorage.image.commit import commit

        ref = (f"{repository}:{tag}" if tag else repository) if repository else None
        if isinstance(changes, str):
            changes = [changes]
        return commit(self._engine.ctx, self._engine._mgr, self.id, ref, message, author, changes, pause)

    def export(self, path: str | os.PathLike[str] | None = None) -> Iterator[bytes] | None:
        """The flattened root filesystem as a tar: chunks of bytes, or written to ``path``."""
        from moorage.image.commit import export_chunks, export_to

        if path is None:
            return export_chunks(self._engine.ctx, self._engine._mgr, self.id)
        dest = Path(path)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                export_to(self._engine.ctx, self._engine._mgr, self.id, f)
            os.rename(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return None


class ContainerCollection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, image: str, command: str | builtins.list[str] | None = None, **kwargs: Any) -> Container:
        opts = options_from_kwargs(image, command, kwargs)
        return Container(self._engine, self._engine._mgr.create(opts))

    def run(self, image: str, command: str | builtins.list[str] | None = None, *, detach: bool = False,
            remove: bool = False, stdout: bool = True, stderr: bool = False, **kwargs: Any) -> Any:
        """Like docker-py: detached → the Container; else the container's output (bytes).

        A non-zero exit raises :class:`moorage.errors.ContainerError`."""
        from moorage.errors import ContainerError

        kwargs["auto_remove"] = kwargs.pop("auto_remove", False) or (remove and detach)
        c = self.create(image, command, **kwargs)
        mgr = self._engine._mgr
        if detach:
            mgr.start(c.id)
            c.reload()
            return c
        rec, sync = mgr.start(c.id, attach=True)
        code = mgr.wait_attached(rec, sync) if sync is not None else mgr.wait(c.id)
        mgr._wait_exited(c.id, 10)
        c.reload()
        out = c.logs(stdout=stdout, stderr=stderr)
        err = c.logs(stdout=False, stderr=True) if code != 0 else b""
        if remove:
            c.remove(force=True)
        elif c._record.options.restart.name == "no":
            mgr.cleanup(c.id)
        if code != 0:
            raise ContainerError(c.id, code, command, image, err if isinstance(err, bytes) else b"")
        return out

    def get(self, container_id: str) -> Container:
        return Container(self._engine, self._engine._mgr.get(container_id))

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """``docker container prune``: remove every stopped container (created,
        exited or dead), narrowed by ``filters`` ``label`` (``k``, ``k=v``;
        ``label!`` for the opposite) and ``until`` (a timestamp or a duration
        such as ``"10m"``: only containers created before it).

        Returns ``{"ContainersDeleted": [ids] or None, "SpaceReclaimed": bytes}``."""
        import time

        from moorage.cli.formatting import parse_duration_or_timestamp
        from moorage.image.maintenance import container_size_rw

        f = {k: v if isinstance(v, builtins.list) else [str(v)] for k, v in (filters or {}).items()}
        unknown = set(f) - {"label", "label!", "until"}
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        try:
            untils = [parse_duration_or_timestamp(u, time.time()) for u in f.get("until", [])]
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        mgr, deleted, reclaimed = self._engine._mgr, [], 0
        for rec in mgr.list():
            if rec.state not in ("created", "exited", "dead"):
                continue
            labels = rec.options.labels
            if not all(_label_matches(labels, v) for v in f.get("label", [])):
                continue
            if any(_label_matches(labels, v) for v in f.get("label!", [])):
                continue
            if untils and not all(rec.created < u for u in untils):
                continue
            size = container_size_rw(self._engine.ctx, rec)
            try:
                mgr.remove(rec.id)
            except (NotFound, Conflict):
                continue  # removed or started meanwhile by someone else
            deleted.append(rec.id)
            reclaimed += size
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def list(self, all: bool = False, filters: dict[str, Any] | None = None, limit: int = -1) -> builtins.list[Container]:
        from moorage.cli.formatting import match_container

        out = []
        norm = {k: v if isinstance(v, list) else [str(v)] for k, v in (filters or {}).items()}
        for rec in self._engine._mgr.list():
            if not all and rec.state not in ("running", "paused", "restarting") and "status" not in norm:
                continue
            if norm and not match_container(norm, container_summary(rec)):
                continue
            out.append(Container(self._engine, rec))
        return out[:limit] if limit >= 0 else out


def _label_matches(labels: dict[str, str], flt: str) -> bool:
    key, has_value, value = flt.partition("=")
    return key in labels and (not has_value or labels[key] == value)


class ImageCollection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def import_(self, source: str | os.PathLike[str], repository: str | None = None, tag: str | None = None,
                changes: builtins.list[str] | None = None, message: str = "") -> Image:
        """``docker import``: a rootfs tarball (path, or ``-`` for stdin) → a one-layer image."""
        from moorage.image.importer import import_image

        ref = None
        if repository:
            ref = f"{repository}:{tag}" if tag else repository
        return import_image(self._engine.ctx, str(source), ref, changes or [], message)

    def get(self, name: str) -> Image:
        return self._engine.ctx.images.get(name)

    def list(self) -> builtins.list[Image]:
        return self._engine.ctx.images.list()

    def tag(self, image: str, repository: str, tag: str | None = None) -> None:
        img = self.get(image)
        self._engine.ctx.images.tag(img.id, f"{repository}:{tag}" if tag else repository)

    def remove(self, image: str, force: bool = False) -> builtins.list[tuple[str, str]]:
        return self._engine.ctx.images.remove(image, force, self._engine.ctx.driver)

    def prune(self, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """``docker image prune``: dangling images, or with ``filters={"dangling": False}``
        every image no container uses. Returns ``{"ImagesDeleted": [...], "SpaceReclaimed": n}``."""
        from moorage.image.maintenance import prune_images

        dangling = str((filters or {}).get("dangling", True)).lower() not in ("false", "0")
        return prune_images(self._engine.ctx, all_unused=not dangling)

    def history(self, name: str) -> builtins.list[dict[str, Any]]:
        """The image's history, newest first (Docker API ``/images/{name}/history`` shape)."""
        from moorage.image.maintenance import image_history

        return image_history(self._engine.ctx, self.get(name))

    def save(self, names: str | builtins.list[str], path: str | os.PathLike[str] | int,
             format: str = "docker-archive", progress: Any = None) -> None:
        """``docker save``: write images to ``path`` (a file, replaced atomically,
        or an open file descriptor) as a ``docker-archive`` or ``oci-archive``."""
        from moorage.image import archive

        names = [names] if isinstance(names, str) else list(names)
        if isinstance(path, int):
            archive.save(self._engine.ctx, names, path, format, progress)
            return
        dest = Path(path)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                archive.save(self._engine.ctx, names, f.fileno(), format, progress)
                os.fsync(f.fileno())
            os.rename(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def load(self, path: str | os.PathLike[str] | int | Any) -> builtins.list[Image]:
        """``docker load``: every image of an archive (path, binary file object, or fd)."""
        return [r.image for r in self.load_report(path)]

    def load_report(self, path: str | os.PathLike[str] | Any, progress: Any = None,
                    on_image: Any = None) -> builtins.list[Any]:
        """Like :meth:`load`, returning ``archive.Loaded`` (image + the names the archive gave it)."""
        from moorage.image import archive

        if isinstance(path, int) or hasattr(path, "read"):  # an fd at the archive's start, or a file object
            return archive.load(self._engine.ctx, path, progress, on_image)  # type: ignore[arg-type]
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidArgument(f"open {path}: no such file or directory") from None
        try:
            return archive.load(self._engine.ctx, fd, progress, on_image)
        finally:
            os.close(fd)


class Engine:
    """An in-process moorage engine over one root and runroot."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 runroot: str | os.PathLike[str] | None = None,
                 storage_driver: str | None = None) -> None:
        self.ctx = Context(root, runroot, storage_driver)
        self._mgr = ContainerManager(self.ctx)
        self.containers = ContainerCollection(self)
        self.images = ImageCollection(self)

    def info(self) -> dict[str, Any]:
        from moorage.runtime.inspect import system_info

        return system_info(self.ctx)

    def df(self) -> dict[str, Any]:
        """``docker system df`` data: Images, Containers, Volumes, BuildCache."""
        from moorage.image.maintenance import disk_usage

        return disk_usage(self.ctx, self._mgr)

    def check(self, repair: bool = False) -> builtins.list[str]:
        """``moorage system check``: one line per problem found (and, with ``repair``, what was done)."""
        from moorage.image.maintenance import check_store

        return check_store(self.ctx, repair).lines


def options_from_kwargs(image: str, command: str | list[str] | None, kw: dict[str, Any]) -> CreateOptions:
    """docker-py keyword names → :class:`CreateOptions`."""
    import shlex

    env = kw.pop("environment", None) or []
    if isinstance(env, dict):
        env = [f"{k}={v}" for k, v in env.items()]
    cmd = shlex.split(command) if isinstance(command, str) else command
    ep = kw.pop("entrypoint", None)
    if isinstance(ep, str):
        ep = shlex.split(ep)
    restart = kw.pop("restart_policy", None)
    rp = RestartPolicy(restart.get("Name", "no"), int(restart.get("MaximumRetryCount", 0))) if restart else RestartPolicy()
    res = Resources(
        memory=_size(kw.pop("mem_limit", None)),
        cpu_shares=kw.pop("cpu_shares", None),
        pids_limit=kw.pop("pids_limit", None),
        cpuset_cpus=kw.pop("cpuset_cpus", None),
    )
    if "nano_cpus" in kw:
        n = kw.pop("nano_cpus")
        res.cpu_period, res.cpu_quota = 100000, int(n / 1e9 * 100000)
    mapping = {"working_dir": "workdir", "network_mode": "network", "stdin_open": "stdin_open",
               "read_only": "read_only", "labels": "labels", "hostname": "hostname", "user": "user",
               "name": "name", "tty": "tty", "init": "init", "privileged": "privileged",
               "cap_add": "cap_add", "cap_drop": "cap_drop", "security_opt": "security_opt",
               "auto_remove": "auto_remove", "runtime": "runtime", "stop_signal": "stop_signal",
               "group_add": "group_add", "oom_score_adj": "oom_score_adj"}
    fields: dict[str, Any] = {}
    for k in list(kw):
        if k in mapping:
            v = kw.pop(k)
            if v is not None:
                fields[mapping[k]] = v
    if kw:
        raise InvalidArgument(f"unsupported container options: {', '.join(sorted(kw))}")
    if isinstance(fields.get("labels"), list):
        fields["labels"] = {k: "" for k in fields["labels"]}
    return CreateOptions(image=image, command=cmd, entrypoint=ep, env=list(env), restart=rp, resources=res, **fields)


def _size(v: Any) -> int | None:
    if v is None or isinstance(v, int):
        return v
    from moorage.cli.formatting import parse_size

    return parse_size(str(v))


def container_summary(rec: ContainerRecord) -> dict[str, Any]:
    """The dict shape the filter matcher and ``ps`` use."""
    return {
        "Id": rec.id,
        "Names": [rec.name],
        "Image": rec.image_name,
        "ImageID": rec.image_id,
        "Labels": rec.config.get("Labels") or {},
        "State": rec.state,
        "ExitCode": rec.exit_code,
    }
