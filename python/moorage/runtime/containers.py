"""Container lifecycle: create/start/stop/kill/remove/wait/exec over the
metadata database, the storage driver, the monitor and the OCI runtime.

State lives in three places, each with one writer:
- the database row (this module, under the container's lock),
- ``<runroot>/containers/<id>/status.json`` (the monitor, atomically),
- the OCI runtime's own state (the runtime).
Reads reconcile the row with the monitor's status file, so a container
whose monitor died is reported as it really is."""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import secrets
import signal as _signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moorage.errors import (
    CommandNotFound,
    CommandNotInvokable,
    Conflict,
    ContainerNotFound,
    InvalidArgument,
    MoorageError,
    PermissionDenied,
    RuntimeFailure,
)
from moorage.runtime import names, procs
from moorage.runtime.locks import locked
from moorage.runtime.store import dumps
from moorage.runtime.timefmt import ZERO, now_rfc3339, parse_rfc3339
from moorage.spec.options import CreateOptions, Resources, RestartPolicy

if TYPE_CHECKING:
    from moorage.engine import Context

ACTIVE = ("running", "paused", "restarting")
SIGNALS = {s.name.removeprefix("SIG"): int(s) for s in _signal.Signals}


def parse_signal(sig: str | int) -> int:
    if isinstance(sig, int):
        return sig
    s = sig.strip().upper().removeprefix("SIG")
    if s.isdigit():
        n = int(s)
        if 0 < n < 65:
            return n
    elif s in SIGNALS:
        return SIGNALS[s]
    raise InvalidArgument(f"invalid signal: {sig}")


def options_from_json(data: dict[str, Any]) -> CreateOptions:
    data = dict(data)
    data["restart"] = RestartPolicy(**data.get("restart", {}))
    data["resources"] = Resources(**data.get("resources", {}))
    return CreateOptions(**data)


@dataclass
class ContainerRecord:
    id: str
    name: str
    image_id: str
    image_name: str
    created: float
    state: str
    options: CreateOptions
    config: dict[str, Any]
    driver: str
    runtime: str
    pid: int
    monitor_pid: int
    started_at: str
    finished_at: str
    exit_code: int
    oom_killed: bool
    restart_count: int
    error: str

    @classmethod
    def from_row(cls, row: Any) -> ContainerRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            image_id=row["image_id"],
            image_name=row["image_name"],
            created=row["created"],
            state=row["state"],
            options=options_from_json(json.loads(row["options"])),
            config=json.loads(row["config"]),
            driver=row["driver"],
            runtime=row["runtime"],
            pid=row["pid"],
            monitor_pid=row["monitor_pid"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            exit_code=row["exit_code"],
            oom_killed=bool(row["oom_killed"]),
            restart_count=row["restart_count"],
            error=row["error"],
        )

    @property
    def short_id(self) -> str:
        return self.id[:12]


class ContainerManager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        #: warnings of the last create (Docker prints them; so does the CLI)
        self.warnings: builtins.list[str] = []

    # ------------------------------------------------------------------ paths
    def bundle_dir(self, cid: str) -> Path:
        return self.ctx.root / "containers" / cid

    def state_dir(self, cid: str) -> Path:
        return self.ctx.runroot / "containers" / cid

    def log_path(self, cid: str) -> Path:
        return self.bundle_dir(cid) / f"{cid}-json.log"

    def attach_socket(self, cid: str) -> Path:
        return self.ctx.runroot / "cs" / f"{cid[:16]}.att"

    def attach(self, ref: str) -> tuple[ContainerRecord, Any]:
        """Connect to a running container's monitor for its output (and
        stdin); returns the record and the connected socket."""
        from moorage.runtime.attach import connect

        rec = self.get(ref)
        if rec.state == "paused":
            raise Conflict("You cannot attach to a paused container, unpause it first")
        if rec.state != "running":
            raise Conflict("You cannot attach to a stopped container, start it first")
        try:
            return rec, connect(str(self.attach_socket(rec.id)))
        except OSError as e:
            raise RuntimeFailure(f"attach {rec.name}: the monitor's attach socket: {e.strerror or e}") from None

    def runtime_root(self, runtime: str) -> Path:
        return self.ctx.runroot / ("runtime" if runtime == "builtin" else f"runtime-{runtime}")

    def lock(self, cid: str, blocking: bool = True) -> Any:
        return locked(self.ctx.runroot / "locks", cid, blocking)

    # ---------------------------------------------------------------- lookups
    def get(self, ref: str) -> ContainerRecord:
        """By full id, unique id prefix, or name (Docker's order: id, name, prefix)."""
        row = self.db.one("SELECT * FROM containers WHERE id=?", (ref,))
        if row is None:
            row = self.db.one("SELECT * FROM containers WHERE name=?", (ref.removeprefix("/"),))
        if row is None and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.query("SELECT * FROM containers WHERE id LIKE ?", (ref + "%",))
            if len(rows) > 1:
                raise InvalidArgument(f"multiple containers found with provided prefix: {ref}")
            row = rows[0] if rows else None
        if row is None:
            raise ContainerNotFound(f"No such container: {ref}")
        return self.refresh(ContainerRecord.from_row(row))

    def list(self) -> builtins.list[ContainerRecord]:
        rows = self.db.query("SELECT * FROM containers ORDER BY created DESC")
        return [self.refresh(ContainerRecord.from_row(r)) for r in rows]

    def _update(self, cid: str, **fields: Any) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as db:
            db.execute(f"UPDATE containers SET {cols} WHERE id=?", (*fields.values(), cid))

    def read_status(self, cid: str) -> dict[str, Any] | None:
        try:
            with open(self.state_dir(cid) / "status.json", "rb") as f:
                data: dict[str, Any] = json.loads(f.read())
            return data
        except (OSError, ValueError):
            return None

    def monitor_alive(self, rec: ContainerRecord) -> bool:
        return rec.monitor_pid > 0 and procs.alive(rec.monitor_pid) and self._is_our_monitor(rec)

    def _is_our_monitor(self, rec: ContainerRecord) -> bool:
        try:
            with open(f"/proc/{rec.monitor_pid}/cmdline", "rb") as f:
                return rec.id.encode() in f.read()
        except OSError:
            return False

    def refresh(self, rec: ContainerRecord) -> ContainerRecord:
        """Reconcile an active row with the monitor's status file (and pids)."""
        if rec.state not in ACTIVE:
            return rec
        st = self.read_status(rec.id)
        mon = self.monitor_alive(rec)
        if st is not None:
            status = st.get("status")
            rec.restart_count = int(st.get("restart_count") or 0)
            if st.get("started_at"):
                rec.started_at = st["started_at"]
            if status == "running":
                rec.pid = int(st.get("pid") or 0)
                if rec.state != "paused":
                    rec.state = "running"
            elif status == "restarting":
                rec.state, rec.pid = "restarting", 0
            if status in ("exited", "restarting"):
                rec.exit_code = int(st.get("exit_code") or 0)
                rec.oom_killed = bool(st.get("oom_killed"))
                rec.finished_at = st.get("finished_at") or rec.finished_at
                rec.error = st.get("error") or ""
            if status == "exited":
                rec.state, rec.pid = "exited", 0
        if mon and rec.state in ACTIVE:
            return rec
        if rec.state in ACTIVE:
            # The monitor is gone but the status file says the container runs.
            if rec.pid and procs.alive(rec.pid):
                rec.error = "container monitor exited; the exit status will not be recorded"
                return rec
            rec.state, rec.pid = "exited", 0
            rec.exit_code = rec.exit_code if st and st.get("status") == "exited" else 255
            if not (st and st.get("status") == "exited"):
                rec.error = "container monitor died; exit status lost"
                rec.finished_at = rec.finished_at or now_rfc3339()
        if rec.state == "exited" and not mon:
            self._update(
                rec.id, state="exited", pid=0, exit_code=rec.exit_code, oom_killed=int(rec.oom_killed),
                finished_at=rec.finished_at, restart_count=rec.restart_count, error=rec.error,
                started_at=rec.started_at,
            )
        return rec

    # ----------------------------------------------------------------- create
    def create(self, options: CreateOptions) -> ContainerRecord:
        _require_root("create a container")
        from moorage.spec import validate
        from moorage.spec.generate import generate_config

        self.warnings = validate.validate_options(options)
        image = self.ctx.images.get(options.image)
        driver_name = options.storage_driver or self.ctx.storage_driver
        driver = self.ctx.driver(driver_name)
        runtime_name = options.runtime
        self.ctx.plugins.runtime.get(runtime_name)  # unknown runtime: fail before anything is made
        net_name, _, net_arg = options.network.partition(":")
        network = self.ctx.plugins.network.get(net_name)()
        cid = secrets.token_hex(32)
        name = options.name or names.random_name()
        options = dataclasses.replace(options, name=name, storage_driver=driver_name)
        if self.db.one("SELECT id FROM containers WHERE name=?", (name,)):
            raise self._name_in_use(name)
        bundle = self.bundle_dir(cid)
        layer_ids = self.ctx.images.layer_cache_ids(image.layers, driver_name, driver)
        created = time.time()
        try:
            bundle.mkdir(parents=True)
            driver.prepare(cid, layer_ids)
            # Mounted now (not only at start): the config needs the image's
            # /etc/passwd and /etc/group to resolve --user names.
            driver.mount(cid, layer_ids)
            hostname = options.hostname or cid[:12]
            (bundle / "hostname").write_text(hostname + "\n")
            (bundle / "hosts").write_text(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                f"127.0.1.1\t{hostname}\n"
            )
            (bundle / "resolv.conf").write_text("")
            config = generate_config(
                options,
                image.config.get("config") or {},
                container_id=cid,
                rootfs=driver.rootfs_path(cid),
                hostname=hostname,
                container_dir=str(bundle),
                plugins=self.ctx.plugins,
                runtime_binary=self.ctx.runtime_binary(),
            )
            network.configure(config, bundle, net_arg or None)
            (bundle / "config.json").write_text(json.dumps(config, separators=(",", ":")))
            image_name = options.image
            from moorage.spec.generate import process_args

            args = process_args(options, image.config.get("config") or {})  # without the --init wrapper
            summary = {
                "Path": args[0],
                "Args": args[1:],
                "Env": config["process"].get("env", []),
                "WorkingDir": config["process"].get("cwd", "/"),
                "User": options.user or (image.config.get("config") or {}).get("User") or "",
                "Cmd": options.command if options.command is not None else (image.config.get("config") or {}).get("Cmd"),
                "Entrypoint": options.entrypoint if options.entrypoint is not None else (image.config.get("config") or {}).get("Entrypoint"),
                "Labels": {**((image.config.get("config") or {}).get("Labels") or {}), **options.labels},
                "Hostname": hostname,
                "StopSignal": options.stop_signal or (image.config.get("config") or {}).get("StopSignal") or "SIGTERM",
            }
            with self.db.transaction() as db:
                db.execute(
                    "INSERT INTO containers(id, name, image_id, image_name, created, state, options, config, driver, runtime)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (cid, name, image.id, image_name, created, "created", dumps(dataclasses.asdict(options)),
                     dumps(summary), driver_name, runtime_name),
                )
        except BaseException as exc:
            try:
                driver.remove_container(cid)
            finally:
                from moorage.storage._common import remove_tree

                remove_tree(bundle)
            if "UNIQUE constraint failed: containers.name" in str(exc):
                raise self._name_in_use(name) from None  # a concurrent create took it since the check
            raise
        return self.get(cid)

    def _name_in_use(self, name: str) -> Conflict:
        other = self.db.one("SELECT id FROM containers WHERE name=?", (name,))
        return Conflict(
            f'Conflict. The container name "/{name}" is already in use by container '
            f'"{other["id"] if other else "?"}". You have to remove (or rename) that container to be able to reuse that name.'
        )

    # ------------------------------------------------------------------ start
    def _exit_command(self, cid: str) -> builtins.list[str]:
        return [sys.executable, "-m", "moorage.cli", "--root", str(self.ctx.root), "--runroot",
                str(self.ctx.runroot), "container", "cleanup", cid]

    def start(self, ref: str, attach: bool = False, stream: bool = False) -> tuple[ContainerRecord, Any]:
        """Start a container. Returns the record and, with ``attach``, the open
        sync channel from which :meth:`wait_attached` reads the exit code.

        ``attach``: the caller waits for the exit and cleans up itself, so the
        monitor runs no exit command (unless a restart policy outlives the
        caller). ``stream``: the container's stdio is this process's stdio
        (the monitor tees output to it and feeds it stdin with ``-i``)."""
        rec = self.get(ref)
        with self.lock(rec.id):
            rec = self.get(rec.id)
            if rec.state in ("running", "restarting"):
                return rec, None
            if rec.state == "paused":
                raise Conflict(f"cannot start a paused container {rec.name}, try unpause instead")
            if rec.state not in ("created", "exited"):
                raise Conflict(f"container {rec.name} is {rec.state}")
            return self._start_locked(rec, attach, stream)

    def _start_locked(self, rec: ContainerRecord, attach: bool, stream: bool = False) -> tuple[ContainerRecord, Any]:
        _require_root("start a container")
        image = self.ctx.images.get(rec.image_id)
        driver = self.ctx.driver(rec.driver)
        driver.mount(rec.id, self.ctx.images.layer_cache_ids(image.layers, rec.driver, driver))
        sdir = self.state_dir(rec.id)
        sdir.mkdir(parents=True, exist_ok=True)
        for stale in ("status.json", "stop-requested", "pid", "restart-policy"):
            try:
                os.unlink(sdir / stale)
            except FileNotFoundError:
                pass
        runtime = self.ctx.plugins.runtime.get(rec.runtime)()
        runtime_bin = runtime.binary(str(self.ctx.runroot))
        opts = rec.options
        args = [
            self.ctx.runtime_binary(), "monitor", "--id", rec.id, "--bundle", str(self.bundle_dir(rec.id)),
            "--runtime", runtime_bin, "--runtime-root", str(self.runtime_root(rec.runtime)),
            "--state-dir", str(sdir), "--log-path", str(self.log_path(rec.id)),
            "--restart", str(opts.restart),
        ]
        for a in runtime.global_args:
            args += ["--runtime-arg", a]
        if opts.stdin_open:
            args.append("--stdin")
        if opts.tty:
            # sun_path holds 108 bytes: keep the socket path short.
            (self.ctx.runroot / "cs").mkdir(exist_ok=True)
            args += ["--tty", "--console-socket", str(self.ctx.runroot / "cs" / f"{rec.id[:16]}.sock")]
        if stream:
            args.append("--attach")
        # `attach` clients connect here (sun_path holds 108 bytes: a short name).
        (self.ctx.runroot / "cs").mkdir(exist_ok=True)
        args += ["--attach-socket", str(self.attach_socket(rec.id))]
        if not attach or opts.restart.name != "no":
            cmd = self._exit_command(rec.id)
            args += ["--exit-command", cmd[0]]
            for a in cmd[1:]:
                args += ["--exit-command-arg", a]
        r, w = os.pipe()
        args += ["--sync-fd", str(w)]
        try:
            stdio = None if stream else subprocess.DEVNULL
            proc = subprocess.Popen(args, pass_fds=(w,), stdin=stdio, stdout=stdio, stderr=stdio)
        finally:
            os.close(w)
        sync: Any = os.fdopen(r, "rb")
        if proc.wait() != 0:
            sync.close()
            driver.unmount(rec.id)
            raise RuntimeFailure(f"container monitor failed to start (exit {proc.returncode})")
        line = sync.readline()
        msg: dict[str, Any]
        try:
            msg = json.loads(line) if line else {"error": "container monitor exited without a report", "exit_code": 125}
        except ValueError:
            msg = {"error": f"bad report from the monitor: {line!r}", "exit_code": 125}
        monitor_pid = _read_int(sdir / "monitor.pid")
        if "error" in msg:
            sync.close()
            code = int(msg.get("exit_code") or 125)
            self._update(rec.id, exit_code=code, error=msg["error"], monitor_pid=0, pid=0)
            self._wait_monitor_gone(monitor_pid)
            driver.unmount(rec.id)
            err = msg["error"]
            if code == 127:
                raise CommandNotFound(err)
            if code == 126:
                raise CommandNotInvokable(err)
            raise RuntimeFailure(err)
        st = self.read_status(rec.id) or {}
        self._update(
            rec.id, state="running", pid=int(msg["pid"]), monitor_pid=monitor_pid,
            started_at=st.get("started_at") or now_rfc3339(), finished_at=ZERO, error="",
            exit_code=0, oom_killed=0,
        )
        if not attach:
            sync.close()
            sync = None
        return self.get(rec.id), sync

    def _wait_monitor_gone(self, pid: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while pid and procs.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.002)

    def wait_attached(self, rec: ContainerRecord, sync: Any) -> int:
        """Block until the attached container's first exit; return its code."""
        try:
            line = sync.readline()
        finally:
            sync.close()
        try:
            return int(json.loads(line)["exit_code"])
        except (ValueError, KeyError, TypeError):
            return self.wait(rec.id)

    # ------------------------------------------------------------- stop/kill
    def _runtime_cmd(self, rec: ContainerRecord, *verb: str) -> subprocess.CompletedProcess[str]:
        runtime = self.ctx.plugins.runtime.get(rec.runtime)()
        argv = [runtime.binary(str(self.ctx.runroot)), *runtime.global_args, "--root",
                str(self.runtime_root(rec.runtime)), *verb]
        return subprocess.run(argv, capture_output=True, text=True)

    def kill(self, ref: str, sig: str | int = "KILL") -> ContainerRecord:
        rec = self.get(ref)
        signum = parse_signal(sig)
        if rec.state not in ("running", "paused"):
            raise Conflict(f"Cannot kill container: {rec.name}: container {rec.id} is not running")
        if signum in (_signal.SIGKILL, parse_signal(rec.config.get("StopSignal", "TERM"))):
            (self.state_dir(rec.id) / "stop-requested").touch()
        self._signal(rec, signum)
        return rec

    def _signal(self, rec: ContainerRecord, signum: int) -> None:
        proc = self._runtime_cmd(rec, "kill", rec.id, str(signum))
        if proc.returncode != 0 and rec.pid and procs.alive(rec.pid):
            # The runtime's state may be gone (e.g. between restarts); signal directly.
            try:
                os.kill(rec.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        rec = self.get(ref)
        if timeout is None:
            timeout = rec.options.stop_timeout if rec.options.stop_timeout is not None else 10
        if rec.state not in ACTIVE:
            return rec
        (self.state_dir(rec.id) / "stop-requested").touch()
        if rec.state == "restarting":
            self._wait_exited(rec.id, 15)
            return self.cleanup(rec.id)
        if rec.state == "paused":
            self._runtime_cmd(rec, "resume", rec.id)
            self._update(rec.id, state="running")
        self._signal(rec, parse_signal(rec.config.get("StopSignal", "TERM")))
        if not self._wait_exited(rec.id, float(timeout)):
            self._signal(rec, _signal.SIGKILL)
            self._wait_exited(rec.id, 30)
        return self.cleanup(rec.id)

    def _wait_exited(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            rec = self.get(cid)
            if rec.state not in ACTIVE:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def wait(self, ref: str, timeout: float | None = None) -> int:
        rec = self.get(ref)
        if rec.state == "created":
            # Docker's wait blocks on a created container until it runs and exits.
            while rec.state == "created":
                time.sleep(0.05)
                rec = self.get(rec.id)
        if not self._wait_exited(rec.id, timeout if timeout is not None else float("inf")):
            raise MoorageError(f"timed out waiting for {rec.name}")
        return self.get(rec.id).exit_code

    def cleanup(self, ref: str, blocking: bool = True) -> ContainerRecord:
        """After the final exit: release the rootfs mount and network; --rm removes.

        The monitor runs this (``blocking=False``) as its exit command. When
        another moorage process holds the container's lock (stop, rm, start),
        that process owns the cleanup, so the monitor's call returns at once
        instead of waiting for a lock whose holder may be waiting for the
        monitor."""
        rec = self.get(ref)
        try:
            with self.lock(rec.id, blocking):
                rec = self.get(rec.id)
                if rec.state in ACTIVE or rec.state == "removing":
                    return rec
                self._release(rec)
        except BlockingIOError:
            return rec
        if rec.options.auto_remove:
            self.remove(rec.id, force=True)
        return rec

    def _release(self, rec: ContainerRecord) -> None:
        net_name, _, net_arg = rec.options.network.partition(":")
        try:
            self.ctx.plugins.network.get(net_name)().teardown(rec.id, net_arg or None)
        finally:
            # The monitor deletes the runtime's state after the last exit; only
            # a monitor that died leaves it (runc and moorage-runtime keep it in <root>/<id>).
            if (self.runtime_root(rec.runtime) / rec.id).exists():
                self._runtime_cmd(rec, "delete", "--force", rec.id)
            self.ctx.driver(rec.driver).unmount(rec.id)

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> ContainerRecord:
        rec = self.get(ref)
        with self.lock(rec.id):
            rec = self.get(rec.id)
            if rec.state in ACTIVE:
                if not force:
                    what = "paused" if rec.state == "paused" else "running"
                    raise Conflict(
                        f"cannot remove container \"/{rec.name}\": container is {what}: "
                        "stop the container before removing or force remove"
                    )
                (self.state_dir(rec.id) / "stop-requested").touch()
                if rec.state == "paused":
                    self._runtime_cmd(rec, "resume", rec.id)
                self._signal(rec, _signal.SIGKILL)
                if not self._wait_exited(rec.id, 30):
                    raise RuntimeFailure(f"container {rec.name} did not exit after SIGKILL")
            self._update(rec.id, state="removing")
            mon = rec.monitor_pid
            if mon and procs.alive(mon) and self._is_our_monitor(rec):
                self._wait_monitor_gone(mon, 10)
            self._release(rec)
            self.ctx.driver(rec.driver).remove_container(rec.id)
            from moorage.storage._common import remove_tree

            remove_tree(self.bundle_dir(rec.id))
            remove_tree(self.state_dir(rec.id))
            with self.db.transaction() as db:
                db.execute("DELETE FROM containers WHERE id=?", (rec.id,))
        try:
            os.unlink(self.ctx.runroot / "locks" / f"{rec.id}.lock")
        except FileNotFoundError:
            pass
        return rec

    # ------------------------------------------------------ pause/rename/top
    def pause(self, ref: str) -> ContainerRecord:
        return self._freeze(ref, "running", "pause", "paused")

    def unpause(self, ref: str) -> ContainerRecord:
        return self._freeze(ref, "paused", "resume", "running")

    def _freeze(self, ref: str, needs: str, verb: str, becomes: str) -> ContainerRecord:
        """pause/unpause: the runtime's freezer verb, then the new state."""
        rec = self.get(ref)
        if rec.state == becomes:
            raise Conflict(f"Container {rec.id} is already {becomes}" if becomes == "paused"
                           else f"Container {rec.id} is not paused")
        if rec.state != needs:
            raise Conflict(f"Container {rec.id} is not {needs}")
        proc = self._runtime_cmd(rec, verb, rec.id)
        if proc.returncode != 0:
            raise RuntimeFailure(f"{verb} {rec.name}: {proc.stderr.strip()}")
        self._update(rec.id, state=becomes)
        return self.get(rec.id)

    def rename(self, ref: str, new_name: str) -> None:
        from moorage.spec.validate import check_name

        rec = self.get(ref)
        check_name(new_name)
        if rec.name == new_name:
            raise Conflict("Renaming a container with the same name as its current name")
        try:
            self._update(rec.id, name=new_name)
        except Exception as exc:
            if "UNIQUE" in str(exc):
                raise self._name_in_use(new_name) from None
            raise

    def update(self, ref: str, changes: Resources, restart: RestartPolicy | None = None) -> ContainerRecord:
        """``docker update``: new cgroup limits (the fields of ``changes`` that
        are not None) and/or a new restart policy. A live container gets the
        limits at once (the runtime's ``update``), its monitor the policy at
        its next exit; the bundle and the record keep both for later starts.
        Nothing is changed if any part is refused."""
        from moorage.spec import validate
        from moorage.spec.generate import linux_resources

        rec = self.get(ref)
        with self.lock(rec.id):
            rec = self.get(rec.id)
            merged = dataclasses.replace(
                rec.options.resources,
                **{k: v for k, v in dataclasses.asdict(changes).items() if v is not None})
            if restart is not None and restart.name != "no" and rec.options.auto_remove:
                raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
            options = dataclasses.replace(rec.options, resources=merged,
                                          restart=restart if restart is not None else rec.options.restart)
            self.warnings = validate.validate_options(options)
            resources = linux_resources(options)
            if changes.pids_limit is not None and changes.pids_limit <= 0:
                resources["pids"] = {"limit": -1}  # back to unlimited ("max"), not "unchanged"
            if rec.state in ("running", "paused") and any(v is not None for v in dataclasses.asdict(changes).values()):
                live = {k: v for k, v in resources.items() if k != "devices"}  # device rules stay as they are
                rfile = self.state_dir(rec.id) / f"update-{secrets.token_hex(6)}.json"
                rfile.write_text(json.dumps(live))
                try:
                    proc = self._runtime_cmd(rec, "update", "--resources", str(rfile), rec.id)
                finally:
                    rfile.unlink(missing_ok=True)
                if proc.returncode != 0:
                    msg = (proc.stderr.strip().splitlines() or [f"runtime exited {proc.returncode}"])[-1]
                    raise RuntimeFailure(f"Cannot update container {rec.id}: {msg.removeprefix('moorage-runtime: ')}")
            config_path = self.bundle_dir(rec.id) / "config.json"
            config = json.loads(config_path.read_text())
            config.setdefault("linux", {})["resources"] = resources
            tmp = config_path.with_name(f".config.json.{os.getpid()}")
            tmp.write_text(json.dumps(config))
            os.replace(tmp, config_path)
            self._update(rec.id, options=dumps(dataclasses.asdict(options)))
            if restart is not None and rec.state in ACTIVE:
                policy = self.state_dir(rec.id) / "restart-policy"
                tmp = policy.with_name(f".restart-policy.{os.getpid()}")
                tmp.write_text(str(restart))
                os.replace(tmp, policy)
        return self.get(rec.id)

    def pids(self, ref: str) -> builtins.list[int]:
        rec = self.get(ref)
        if rec.state not in ("running", "paused"):
            raise Conflict(f"container {rec.name} is not running")
        proc = self._runtime_cmd(rec, "ps", "--format", "json", rec.id)
        if proc.returncode != 0:
            raise RuntimeFailure(f"top {rec.name}: {proc.stderr.strip()}")
        return [int(p) for p in json.loads(proc.stdout or "[]")]

    # ------------------------------------------------------------------- exec
    def exec(
        self,
        ref: str,
        cmd: builtins.list[str],
        *,
        env: builtins.list[str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        tty: bool = False,
        detach: bool = False,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        output: builtins.list[bytes] | None = None,
    ) -> int:
        """Run ``cmd`` in a running container; return its exit code (0 when detached).

        With ``stdout=subprocess.PIPE`` the captured bytes are appended to ``output``."""
        rec = self.get(ref)
        if rec.state == "paused":
            raise Conflict(f"container {rec.id} is paused, unpause the container before exec")
        if rec.state != "running":
            raise Conflict(f"container {rec.id} is not running")
        if not cmd:
            raise InvalidArgument("no command specified")
        config = json.loads((self.bundle_dir(rec.id) / "config.json").read_text())
        process = dict(config["process"])
        process["args"] = list(cmd)
        # -t: the runtime makes a pty inside the container and hands us its
        # master; otherwise the process uses the caller's stdio directly.
        use_tty = tty and not detach
        process["terminal"] = use_tty
        if workdir:
            if not workdir.startswith("/"):
                raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
            process["cwd"] = workdir
        if env:
            merged = {e.split("=", 1)[0]: e for e in process.get("env", [])}
            for e in env:
                merged[e.split("=", 1)[0]] = e if "=" in e else f"{e}={os.environ.get(e, '')}"
            process["env"] = list(merged.values())
        if user:
            from moorage.spec.users import resolve_user

            u = resolve_user(config["root"]["path"], user, [])
            process["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}
        token = secrets.token_hex(6)
        sdir = self.state_dir(rec.id)
        pfile, logfile = sdir / f"exec-{token}.json", sdir / f"exec-{token}.log"
        pfile.write_text(json.dumps(process))
        verb = ["exec", "--process", str(pfile)]
        if detach:
            verb.append("--detach")
        console = None
        if use_tty:
            from moorage.runtime.ttyproxy import ConsoleSocket

            console = ConsoleSocket(self.ctx.runroot / "cs" / f"x{token}.sock")
            verb += ["--tty", "--console-socket", str(console.path)]
        verb.append(rec.id)
        runtime = self.ctx.plugins.runtime.get(rec.runtime)()
        argv = [runtime.binary(str(self.ctx.runroot)), *runtime.global_args, "--root",
                str(self.runtime_root(rec.runtime)), "--log", str(logfile), *verb]
        captured = b""
        try:
            if console is not None:
                from moorage.runtime.ttyproxy import relay

                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
                try:
                    master = console.receive()
                except OSError:
                    proc.wait()
                else:
                    relay(master, proc, interactive=stdin is not subprocess.DEVNULL)
                returncode = proc.wait()
            else:
                done = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr)
                returncode = done.returncode
                captured = done.stdout if isinstance(done.stdout, bytes) else b""
            err = logfile.read_text(errors="replace").strip() if logfile.exists() else ""
        finally:
            pfile.unlink(missing_ok=True)
            logfile.unlink(missing_ok=True)
            if console is not None:
                console.close()
        # The runtime writes only its own failures to --log (the process's
        # stdio is the caller's), so a non-empty log means the exec itself failed.
        if returncode in (126, 127) or (returncode != 0 and err):
            msg = err.splitlines()[-1] if err else f"exec failed with {returncode}"
            if returncode == 127:
                raise CommandNotFound(msg)
            if returncode == 126:
                raise CommandNotInvokable(msg)
            # Docker: "OCI runtime exec failed: ...", exit 126.
            raise CommandNotInvokable(f"OCI runtime exec failed: {msg}")
        if output is not None:
            output.append(captured)
        return returncode

    # ------------------------------------------------------------------- logs
    def logs(
        self,
        ref: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
        stdout: bool = True,
        stderr: bool = True,
    ) -> Iterator[tuple[str, str, bytes]]:
        """Yield (stream, time, bytes) from the json-file log."""
        rec = self.get(ref)
        path = self.log_path(rec.id)
        entries: builtins.list[tuple[str, str, bytes]] = []
        pos = 0
        try:
            with open(path, "rb") as f:
                data = f.read()
                pos = len(data)
        except FileNotFoundError:
            data = b""
        for line in data.splitlines():
            e = _parse_log_line(line)
            if e is not None:
                entries.append(e)

        def keep(e: tuple[str, str, bytes]) -> bool:
            if (e[0] == "stdout" and not stdout) or (e[0] == "stderr" and not stderr):
                return False
            if since is not None or until is not None:
                t = parse_rfc3339(e[1])
                if (since is not None and t < since) or (until is not None and t > until):
                    return False
            return True

        entries = [e for e in entries if keep(e)]
        if tail is not None and tail >= 0:
            entries = entries[-tail:] if tail else []
        yield from entries
        if not follow:
            return
        buf = b""
        while True:
            try:
                with open(path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                pos += len(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    e = _parse_log_line(line)
                    if e is not None and keep(e):
                        yield e
                continue
            try:
                cur = self.get(rec.id)
            except ContainerNotFound:
                return
            if cur.state not in ACTIVE and not self.monitor_alive(cur):
                return
            time.sleep(0.05)


def _parse_log_line(line: bytes) -> tuple[str, str, bytes] | None:
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
        return obj.get("stream", "stdout"), obj.get("time", ""), obj.get("log", "").encode("utf-8", "surrogateescape")
    except ValueError:
        return None


def _require_root(what: str) -> None:
    # Mounts, namespaces and cgroups need root here; without this check a
    # non-root caller gets an EPERM from deep inside the overlay mount.
    if os.geteuid() != 0:
        raise PermissionDenied(f"permission denied: moorage needs root to {what} (rootless mode is not supported yet)")


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
