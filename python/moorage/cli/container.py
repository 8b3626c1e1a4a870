"""Container verbs: run, create, start, ps, stop, kill, restart, pause,
unpause, rm, logs, wait, exec, inspect, top, rename (and the monitor's
``container cleanup``)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

import click

from moorage.cli import State, cli
from moorage.errors import ContainerNotFound, ImageNotFound, InvalidArgument, MoorageError, NotFound
from moorage.spec.options import CreateOptions, Resources, RestartPolicy

pass_state = click.make_pass_decorator(State)
NOSPLIT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


@cli.group("container", context_settings={"help_option_names": ["--help"]})
def container_group() -> None:
    """Manage containers."""


def _read_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidArgument(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    # Docker's rules (opts/file.go): leading blanks dropped, trailing kept;
    # "#" starts a comment line; a name alone is taken from the caller's
    # environment later; a name must be non-empty and without blanks.
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name = line.split("=", 1)[0]
        if not name:
            raise InvalidArgument(f"no variable name on line '{line}' of {path}")
        if any(c.isspace() for c in name):
            raise InvalidArgument(f"variable '{name}' contains whitespaces (line {n} of {path})")
        out.append(line)
    return out


def _size(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    from moorage.cli.formatting import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise InvalidArgument(f"invalid argument {text!r} for {flag}: {e}") from None


def _cpus(text: str) -> tuple[int, int]:
    """``--cpus 1.5`` → (CFS period, quota) in microseconds."""
    try:
        cpus = float(text)
    except ValueError:
        raise InvalidArgument(f"invalid argument {text!r} for --cpus: not a number") from None
    if cpus <= 0:
        raise InvalidArgument("range of CPUs is from 0.01 to the number of CPUs available")
    return 100000, int(cpus * 100000)


def create_options(image: str, command: tuple[str, ...], kw: dict[str, Any]) -> CreateOptions:
    """Flags → :class:`CreateOptions` (parsing only; validation is the engine's)."""
    env: list[str] = []
    for f in kw["env_file"]:
        env += _read_env_file(f)
    env += list(kw["env"])
    labels: dict[str, str] = {}
    for f in kw["label_file"]:
        for line in _read_env_file(f):
            k, _, v = line.partition("=")
            labels[k] = v
    for lab in kw["label"]:
        k, _, v = lab.partition("=")
        labels[k] = v
    res = Resources(
        memory=_size(kw["memory"], "--memory"),
        memory_swap=-1 if kw["memory_swap"] == "-1" else _size(kw["memory_swap"], "--memory-swap"),
        cpu_shares=kw["cpu_shares"],
        cpuset_cpus=kw["cpuset_cpus"],
        cpuset_mems=kw["cpuset_mems"],
        pids_limit=kw["pids_limit"],
        cpu_period=kw["cpu_period"],
        cpu_quota=kw["cpu_quota"],
    )
    if kw["cpus"] is not None:
        res.cpu_period, res.cpu_quota = _cpus(kw["cpus"])
    entrypoint = None
    if kw["entrypoint"] is not None:
        entrypoint = [kw["entrypoint"]] if kw["entrypoint"] else []
    return CreateOptions(
        image=image,
        command=list(command) if command else None,
        entrypoint=entrypoint,
        name=kw["name"],
        env=env,
        workdir=kw["workdir"],
        user=kw["user"],
        group_add=list(kw["group_add"]),
        hostname=kw["hostname"],
        labels=labels,
        tty=kw["tty"],
        stdin_open=kw["interactive"],
        read_only=kw["read_only"],
        init=kw["init"],
        network=kw["network"] or "none",
        restart=RestartPolicy.parse(kw["restart"]) if kw["restart"] else RestartPolicy(),
        auto_remove=kw.get("rm", False),
        privileged=kw["privileged"],
        cap_add=list(kw["cap_add"]),
        cap_drop=list(kw["cap_drop"]),
        security_opt=list(kw["security_opt"]),
        resources=res,
        ulimits=list(kw["ulimit"]),
        oom_score_adj=kw["oom_score_adj"],
        stop_signal=kw["stop_signal"],
        stop_timeout=kw["stop_timeout"],
        runtime=kw["runtime"] or "builtin",
        volumes=list(kw["volume"]),
        tmpfs=list(kw["tmpfs"]),
    )


def create_flags(f: Any) -> Any:
    opts = [
        click.option("--name", help="Assign a name to the container"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables"),
        click.option("-w", "--workdir", help="Working directory inside the container"),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-h", "--hostname", help="Container host name"),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("--group-add", multiple=True, help="Add additional groups to join"),
        click.option("-l", "--label", multiple=True, help="Set meta data on a container"),
        click.option("--label-file", multiple=True, help="Read in a line delimited file of labels"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        click.option("--network", "--net", help="Connect a container to a network (none, host)"),
        click.option("--restart", help="Restart policy to apply when a container exits [no]"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--security-opt", multiple=True, help="Security Options"),
        click.option("-m", "--memory", help="Memory limit"),
        click.option("--memory-swap", help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        click.option("--cpus", help="Number of CPUs"),
        click.option("--cpu-shares", "-c", type=int, help="CPU shares (relative weight)"),
        click.option("--cpu-period", type=int, help="Limit CPU CFS period"),
        click.option("--cpu-quota", type=int, help="Limit CPU CFS quota"),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)"),
        click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)"),
        click.option("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)"),
        click.option("--ulimit", multiple=True, help="Ulimit options"),
        click.option("--oom-score-adj", type=int, help="Tune host's OOM preferences (-1000 to 1000)"),
        click.option("--stop-signal", help="Signal to stop the container"),
        click.option("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container"),
        click.option("--runtime", help="Runtime to use for this container [builtin]"),
        click.option("-v", "--volume", multiple=True, help="Bind mount a volume"),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory"),
        click.option("--cidfile", help="Write the container ID to the file"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _require_tty() -> None:
    """Docker's check for -i with -t: the caller's stdin must be a terminal."""
    if not sys.stdin.isatty():
        click.echo("the input device is not a TTY", err=True)
        raise click.exceptions.Exit(1)


class _CidFile:
    """``--cidfile``, as Docker does it: the file is made before the container
    (so a bad path fails with nothing created) and removed again if the
    container cannot be created."""

    def __init__(self, path: str | None) -> None:
        self.path, self.fd = path, -1
        if not path:
            return
        if os.path.exists(path):
            raise InvalidArgument(
                f"Container ID file found, make sure the other container isn't running or delete {path}")
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise InvalidArgument(
                f"failed to create the container ID file: open {path}: {(e.strerror or str(e)).lower()}") from None

    def write(self, cid: str) -> None:
        if self.fd >= 0:
            os.write(self.fd, cid.encode())
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        if self.fd >= 0 and self.path:
            os.close(self.fd)
            self.fd = -1
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _create_with_cidfile(state: State, opts: CreateOptions, cidfile: str | None) -> Any:
    cf = _CidFile(cidfile)
    try:
        rec = _create(state, opts)
    except BaseException:
        cf.discard()
        raise
    cf.write(rec.id)
    return rec


def _engine(state: State) -> Any:
    return state.engine


@cli.command(context_settings=NOSPLIT)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@create_flags
@pass_state
def create(state: State, image: str, command: tuple[str, ...], **kw: Any) -> None:
    """Create a new container."""
    opts = create_options(image, command, {**kw, "rm": False})
    rec = _create_with_cidfile(state, opts, kw["cidfile"])
    click.echo(rec.id)


def _create(state: State, opts: CreateOptions) -> Any:
    try:
        rec = state.engine._mgr.create(opts)
    except ImageNotFound:
        click.echo(f"Unable to find image '{opts.image}' locally", err=True)
        raise
    for w in state.engine._mgr.warnings:
        click.echo(f"WARNING: {w}", err=True)
    return rec


@cli.command(context_settings=NOSPLIT)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.option("--rm", is_flag=True, help="Automatically remove the container when it exits")
@create_flags
@pass_state
def run(state: State, image: str, command: tuple[str, ...], detach: bool, rm: bool, **kw: Any) -> None:
    """Create and run a new container from an image."""
    opts = create_options(image, command, {**kw, "rm": rm})
    if opts.tty and opts.stdin_open and not detach:
        _require_tty()
    mgr = state.engine._mgr
    rec = _create_with_cidfile(state, opts, kw["cidfile"])
    if detach:
        try:
            mgr.start(rec.id)
        except MoorageError:
            if rm:
                mgr.remove(rec.id, force=True)
            raise
        click.echo(rec.id)
        return
    code = _run_attached(mgr, rec, opts)
    raise click.exceptions.Exit(code)


def _run_attached(mgr: Any, rec: Any, opts: CreateOptions) -> int:
    import termios
    import tty as ttymod

    saved = None
    if opts.tty and opts.stdin_open and sys.stdin.isatty():
        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
    forwarded: dict[int, Any] = {}

    def forward(signum: int, _frame: Any) -> None:
        try:
            cur = mgr.get(rec.id)
            if cur.monitor_pid:
                os.kill(cur.monitor_pid, signum)
        except (MoorageError, ProcessLookupError):
            pass

    try:
        try:
            rec, sync = mgr.start(rec.id, attach=True, stream=True)
        except MoorageError:
            if opts.auto_remove:
                mgr.remove(rec.id, force=True)
            else:
                mgr.cleanup(rec.id)
            raise
        if not opts.tty:
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
                forwarded[s] = signal.signal(s, forward)
        code = mgr.wait_attached(rec, sync) if sync is not None else mgr.wait(rec.id)
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        for signum, handler in forwarded.items():
            signal.signal(signum, handler)
    if opts.restart.name == "no":
        mgr._wait_exited(rec.id, 10)
        mgr.cleanup(rec.id)
    return code


@cli.command(context_settings={"help_option_names": ["--help"]})
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def start(state: State, attach: bool, interactive: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    mgr = state.engine._mgr
    if attach or interactive:
        if len(containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        rec = mgr.get(containers[0])
        if interactive and rec.options.tty and rec.options.stdin_open:
            _require_tty()
        code = _run_attached(mgr, rec, rec.options)
        raise click.exceptions.Exit(code)
    failed = _each(containers, lambda c: mgr.start(c))
    raise click.exceptions.Exit(1 if failed else 0)


def _each(refs: tuple[str, ...], fn: Any, echo: bool = True) -> bool:
    """Docker's multi-container verbs: report each failure, go on, exit 1 if any failed."""
    failed = False
    for ref in refs:
        try:
            fn(ref)
            if echo:
                click.echo(ref)
        except MoorageError as e:
            click.echo(f"Error: {e}", err=True)
            failed = True
    return failed


@cli.command()
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container")
@click.option("-s", "--signal", "sig", help="Signal to send to the container")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def stop(state: State, timeout: int | None, sig: str | None, containers: tuple[str, ...]) -> None:
    """Stop one or more running containers."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(1 if _each(containers, lambda c: mgr.stop(c, timeout)) else 0)


@cli.command()
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing the container")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def restart(state: State, timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart one or more containers."""
    mgr = state.engine._mgr

    def one(c: str) -> None:
        mgr.stop(c, timeout)
        mgr.start(c)

    raise click.exceptions.Exit(1 if _each(containers, one) else 0)


@cli.command()
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send to the container [KILL]")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def kill(state: State, sig: str, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(1 if _each(containers, lambda c: mgr.kill(c, sig)) else 0)


@cli.command()
@click.argument("containers", nargs=-1, required=True)
@pass_state
def pause(state: State, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(1 if _each(containers, mgr.pause) else 0)


@cli.command()
@click.argument("containers", nargs=-1, required=True)
@pass_state
def unpause(state: State, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(1 if _each(containers, mgr.unpause) else 0)


@cli.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def rm(state: State, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(1 if _each(containers, lambda c: mgr.remove(c, force, volumes)) else 0)


@cli.command()
@click.argument("containers", nargs=-1, required=True)
@pass_state
def wait(state: State, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    mgr = state.engine._mgr
    raise click.exceptions.Exit(
        1 if _each(containers, lambda c: click.echo(mgr.wait(c)), echo=False) else 0
    )


@cli.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs [all]")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
@click.option("--until", help="Show logs before a timestamp or relative")
@click.argument("container")
@pass_state
def logs(state: State, follow: bool, tail: str, timestamps: bool, since: str | None, until: str | None,
         container: str) -> None:
    """Fetch the logs of a container."""
    from moorage.cli.formatting import parse_duration_or_timestamp

    now = time.time()
    try:
        n = None if tail == "all" else int(tail)
    except ValueError:
        raise InvalidArgument(f"invalid value for --tail: {tail!r}") from None
    try:
        s = parse_duration_or_timestamp(since, now) if since else None
        u = parse_duration_or_timestamp(until, now) if until else None
    except ValueError as e:
        raise InvalidArgument(str(e)) from None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    try:
        for stream, ts, data in state.engine._mgr.logs(container, follow=follow, tail=n, since=s, until=u):
            target = err if stream == "stderr" else out
            if timestamps:
                target.write(ts.encode() + b" ")
            target.write(data)
            if follow:
                target.flush()
    except BrokenPipeError:
        pass
    out.flush()
    err.flush()


@cli.command("exec", context_settings=NOSPLIT)
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
@click.option("-w", "--workdir", help="Working directory inside the container")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_state
def exec_(state: State, interactive: bool, tty: bool, detach: bool, env: tuple[str, ...], user: str | None,
          workdir: str | None, container: str, command: tuple[str, ...]) -> None:
    """Execute a command in a running container."""
    import subprocess

    if interactive and tty and not detach:
        _require_tty()
    code = state.engine._mgr.exec(
        container, list(command), env=list(env), user=user, workdir=workdir, tty=tty, detach=detach,
        stdin=None if interactive else subprocess.DEVNULL,
    )
    raise click.exceptions.Exit(code)


@cli.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container")
@pass_state
def ps(state: State, all_: bool, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None,
       last: int, latest: bool) -> None:
    """List containers."""
    from moorage.cli import formatting as F
    from moorage.engine import container_summary

    flt = F.parse_filters(list(filters))
    F.validate_container_filters(flt)
    now = time.time()
    recs = state.engine._mgr.list()
    if latest:
        last = 1
    rows = []
    for rec in recs:
        if not (all_ or last >= 0) and rec.state not in ("running", "paused", "restarting") and "status" not in flt:
            continue
        if flt and not F.match_container(flt, container_summary(rec)):
            continue
        rows.append(rec)
    if last >= 0:
        rows = rows[:last]
    if quiet:
        for rec in rows:
            click.echo(rec.id if no_trunc else rec.short_id)
        return
    from moorage.runtime.inspect import container_inspect

    items = []
    for rec in rows:
        attrs = container_inspect(state.engine.ctx, rec)
        args = [attrs["Path"], *attrs["Args"]]
        items.append({
            "ID": rec.id if no_trunc else rec.short_id,
            "Image": rec.image_name,
            "Command": F.format_command(args, trunc=not no_trunc),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(rec.created)),
            "RunningFor": F.created_since(rec.created, now),
            "Status": F.status_text(attrs["State"], now),
            "State": rec.state,
            "Ports": "",
            "Names": rec.name,
            "Labels": ",".join(f"{k}={v}" for k, v in (attrs["Config"]["Labels"] or {}).items()),
            "Size": "",
            "Mounts": "",
            "Networks": rec.options.network,
        })
    _print_items(items, fmt, ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"], CONTAINER_HEADERS)


CONTAINER_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
                     "CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
                     "State": "STATE", "Labels": "LABELS", "Size": "SIZE", "Mounts": "MOUNTS",
                     "Networks": "NETWORKS"}


def _print_items(items: list[dict[str, Any]], fmt: str | None, default_cols: list[str],
                 headers: dict[str, str]) -> None:
    from moorage.cli import formatting as F

    default = "table " + "\\t".join("{{." + c + "}}" for c in default_cols)
    out = F.render_list(fmt or "table", items, headers, default_table=default)
    if out:
        click.echo(out, nl=False)


@cli.command()
@click.option("-f", "--format", "fmt", help="Format output using a Go template")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), help="Return JSON for specified type")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container")
@click.argument("names", nargs=-1, required=True)
@pass_state
def inspect(state: State, fmt: str | None, kind: str | None, size: bool, names: tuple[str, ...]) -> None:
    """Return low-level information on containers or images."""
    from moorage.cli import formatting as F
    from moorage.runtime.inspect import container_inspect, image_inspect

    engine = state.engine
    results: list[Any] = []
    failed = False
    for name in names:
        try:
            if kind != "image":
                try:
                    results.append(container_inspect(engine.ctx, engine._mgr.get(name)))
                    continue
                except ContainerNotFound:
                    if kind == "container":
                        raise
            results.append(image_inspect(engine.ctx, engine.ctx.images.get(name)))
        except NotFound:
            click.echo(f"Error: No such object: {name}", err=True)
            failed = True
    if fmt:
        for r in results:
            click.echo(F.render(fmt, r))
    else:
        click.echo(json.dumps(results, indent=4))
    raise click.exceptions.Exit(1 if failed else 0)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@pass_state
def top(state: State, container: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of a container (ps options after the name)."""
    from moorage.cli import formatting as F

    table = state.engine.containers.get(container).top(" ".join(ps_args) or None)
    click.echo(F.tabulate(table["Processes"], table["Titles"]), nl=False)


@cli.command()
@click.option("--cpus", help="Number of CPUs")
@click.option("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
@click.option("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period")
@click.option("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota")
@click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
@click.option("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
@click.option("-m", "--memory", help="Memory limit")
@click.option("--memory-swap", help="Swap limit equal to memory plus swap: -1 to enable unlimited swap")
@click.option("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
@click.option("--restart", help="Restart policy to apply when a container exits")
@click.argument("containers", nargs=-1, required=True)
@pass_state
def update(state: State, cpus: str | None, cpu_shares: int | None, cpu_period: int | None, cpu_quota: int | None,
           cpuset_cpus: str | None, cpuset_mems: str | None, memory: str | None, memory_swap: str | None,
           pids_limit: int | None, restart: str | None, containers: tuple[str, ...]) -> None:
    """Update configuration of one or more containers."""
    res = Resources(
        memory=_size(memory, "--memory"),
        memory_swap=-1 if memory_swap == "-1" else _size(memory_swap, "--memory-swap"),
        cpu_shares=cpu_shares, cpu_period=cpu_period, cpu_quota=cpu_quota,
        cpuset_cpus=cpuset_cpus, cpuset_mems=cpuset_mems, pids_limit=pids_limit,
    )
    if cpus is not None:
        res.cpu_period, res.cpu_quota = _cpus(cpus)
    policy = RestartPolicy.parse(restart) if restart is not None else None
    if all(v is None for v in dataclasses.asdict(res).values()) and policy is None:
        raise InvalidArgument("you must provide one or more flags when using this command")
    mgr = state.engine._mgr
    failed = _each(containers, lambda c: mgr.update(c, res, policy))
    for w in mgr.warnings:
        click.echo(f"WARNING: {w}", err=True)
    raise click.exceptions.Exit(1 if failed else 0)


@cli.command()
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option("--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process")
@click.option("--detach-keys", default=None, help="Override the key sequence for detaching a container")
@click.argument("container")
@pass_state
def attach(state: State, no_stdin: bool, sig_proxy: bool, detach_keys: str | None, container: str) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    from moorage.runtime.attach import DEFAULT_DETACH_KEYS, parse_detach_keys, relay
    from moorage.runtime.ttyproxy import raw_terminal

    keys = parse_detach_keys(detach_keys or DEFAULT_DETACH_KEYS)
    mgr = state.engine._mgr
    rec = mgr.get(container)
    use_stdin = rec.options.stdin_open and not no_stdin
    if use_stdin and rec.options.tty:
        _require_tty()
    rec, sock = mgr.attach(container)
    forwarded: dict[int, Any] = {}

    def forward(signum: int, _frame: Any) -> None:
        try:
            cur = mgr.get(rec.id)
            if cur.monitor_pid:
                os.kill(cur.monitor_pid, signum)  # the monitor passes it on to the container
        except (MoorageError, ProcessLookupError):
            pass

    if sig_proxy and not rec.options.tty:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            forwarded[sig] = signal.signal(sig, forward)
    try:
        with sock, raw_terminal(0) if use_stdin and rec.options.tty else contextlib.nullcontext():
            detached = relay(sock, rec.options.tty, 0 if use_stdin else None, keys)
    finally:
        for signum, old in forwarded.items():
            signal.signal(signum, old)
    if detached:
        click.echo("read escape sequence", err=True)
        raise click.exceptions.Exit(1)
    # The stream ends when the container exits (a restart policy may start it
    # again: Docker's attach ends there too). Its exit status, if still known.
    try:
        mgr._wait_exited(rec.id, 5.0)
        raise click.exceptions.Exit(mgr.get(rec.id).exit_code)
    except ContainerNotFound:
        raise MoorageError(f"container {rec.name} was removed; its exit status is unknown") from None


STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}


def stats_row(ref: str, st: dict[str, Any], no_trunc: bool = False) -> dict[str, str]:
    """One ``docker stats`` line from an API stats dict (the docker CLI's arithmetic)."""
    from moorage.cli import formatting as F

    cpu, pre = st.get("cpu_stats") or {}, st.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpu_pct = cpu_delta / sys_delta * (cpu.get("online_cpus") or 1) * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = st.get("memory_stats") or {}
    usage, limit, raw = mem.get("usage", 0), mem.get("limit", 0), mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # page cache is not counted, as docker does
        if key in raw and raw[key] < usage:
            usage -= raw[key]
            break
    nets = (st.get("networks") or {}).values()
    rx, tx = sum(n.get("rx_bytes", 0) for n in nets), sum(n.get("tx_bytes", 0) for n in nets)
    bio = (st.get("blkio_stats") or {}).get("io_service_bytes_recursive")
    rd = sum(b["value"] for b in bio or [] if str(b.get("op")).lower() == "read")
    wr = sum(b["value"] for b in bio or [] if str(b.get("op")).lower() == "write")
    cid = st.get("id", "")
    return {
        "Container": ref, "ID": cid if no_trunc else cid[:12], "Name": str(st.get("name", "")).lstrip("/"),
        "CPUPerc": f"{cpu_pct:.2f}%",
        "MemUsage": f"{F.bytes_size(usage)} / {F.bytes_size(limit)}",
        "MemPerc": f"{usage / limit * 100.0:.2f}%" if limit else "0.00%",
        "NetIO": f"{F.human_size(rx)} / {F.human_size(tx)}",
        "BlockIO": f"{F.human_size(rd)} / {F.human_size(wr)}" if bio is not None else "--",  # not counted here
        "PIDs": str((st.get("pids_stats") or {}).get("current", 0)),
    }


@cli.command()
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
@click.option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.argument("containers", nargs=-1)
@pass_state
def stats(state: State, all_: bool, fmt: str | None, no_stream: bool, no_trunc: bool,
          containers: tuple[str, ...]) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    from moorage.runtime.stats import sample, with_previous

    mgr = state.engine._mgr
    named = bool(containers)
    refs = list(containers) or [r.id for r in mgr.list() if all_ or r.state in ("running", "paused")]
    for ref in refs:
        mgr.get(ref)  # an unknown name fails before anything is shown
    default = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"]
    prev: dict[str, Any] = {}

    def rows() -> list[dict[str, str]]:
        out = []
        for ref in refs:
            try:
                rec = mgr.get(ref)
            except ContainerNotFound:
                continue
            if rec.state not in ("running", "paused"):
                if named or all_:  # docker shows a stopped container with zeros
                    out.append({"Container": ref, "ID": rec.id if no_trunc else rec.short_id, "Name": rec.name,
                                "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
                                "BlockIO": "0B / 0B", "PIDs": "0"})
                continue
            cur = sample(mgr, rec)
            out.append(stats_row(ref, with_previous(cur, prev.get(rec.id)), no_trunc))
            prev[rec.id] = cur
        return out

    rows()  # the first sample only sets the baseline CPU use is measured from
    try:
        while True:
            time.sleep(1.0)
            items = rows()
            if not no_stream:
                click.echo("\x1b[2J\x1b[H", nl=False)  # clear the screen, cursor home
            _print_items(items, fmt, default, STATS_HEADERS)
            if no_stream:
                return
    except KeyboardInterrupt:
        return


@cli.command()
@click.argument("container")
@click.argument("new_name")
@pass_state
def rename(state: State, container: str, new_name: str) -> None:
    """Rename a container."""
    state.engine._mgr.rename(container, new_name)


@container_group.command("cleanup", hidden=True)
@click.argument("container")
@pass_state
def cleanup(state: State, container: str) -> None:
    """(monitor's exit command) release a stopped container's mounts; --rm removes it."""
    try:
        state.engine._mgr.cleanup(container, blocking=False)
    except ContainerNotFound:
        pass


for _name in ("run", "create", "start", "stop", "restart", "kill", "pause", "unpause", "rm", "wait", "logs",
              "exec", "top", "rename", "inspect"):
    container_group.add_command(cli.commands[_name], _name)
container_group.add_command(cli.commands["ps"], "ls")
container_group.add_command(cli.commands["ps"], "ps")
container_group.add_command(cli.commands["rm"], "remove")
