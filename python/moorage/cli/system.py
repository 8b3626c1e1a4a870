"""System verbs: info, version."""

from __future__ import annotations

import json
import platform

import click

from moorage.cli import State, cli
from moorage.cli.container import pass_state


@cli.command()
@click.option("-f", "--format", "fmt", help="Format output using a Go template or 'json'")
@pass_state
def info(state: State, fmt: str | None) -> None:
    """Display system-wide information."""
    from moorage.cli import formatting as F

    data = state.engine.info()
    if fmt == "json":
        click.echo(json.dumps(data))
        return
    if fmt:
        click.echo(F.render(fmt, data))
        return
    p = data["Plugins"]
    lines = [
        f"Server Version: {data['ServerVersion']}",
        f"Containers: {data['Containers']}",
        f" Running: {data['ContainersRunning']}",
        f" Paused: {data['ContainersPaused']}",
        f" Stopped: {data['ContainersStopped']}",
        f"Images: {data['Images']}",
        f"Storage Driver: {data['Driver']}",
        f"Cgroup Driver: {data['CgroupDriver']}",
        f"Cgroup Version: {data['CgroupVersion']}",
        "Plugins:",
        f" Storage: {' '.join(p['storage'])}",
        f" Network: {' '.join(p['network'])}",
        f" Security: {' '.join(p['security'])}",
        f" Init: {' '.join(p['init'])}",
        f" Runtimes: {' '.join(p['runtime'])}",
        f"Default Runtime: {data['DefaultRuntime']}",
        f"Kernel Version: {data['KernelVersion']}",
        f"Operating System: {data['OperatingSystem']}",
        f"OSType: {data['OSType']}",
        f"Architecture: {data['Architecture']}",
        f"CPUs: {data['NCPU']}",
        f"Total Memory: {data['MemTotal'] / (1 << 30):.3g}GiB",
        f"Name: {data['Name']}",
        f"Docker Root Dir: {data['DockerRootDir']}",
        f"Run Root: {data['RunRoot']}",
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.option("-f", "--format", "fmt", help="Format output using a Go template or 'json'")
def version(fmt: str | None) -> None:
    """Show the moorage version information."""
    from moorage import __version__, _core

    data = {
        "Client": {"Version": __version__, "ApiVersion": "1.41", "GoVersion": "",
                   "PythonVersion": platform.python_version(), "Os": "linux", "Arch": platform.machine()},
        "Server": {"Version": __version__, "Runtime": "builtin", "RuntimeDigest": "sha256:" + _core.runtime_digest(),
                   "KernelVersion": platform.release()},
    }
    if fmt == "json":
        click.echo(json.dumps(data))
        return
    if fmt:
        from moorage.cli import formatting as F

        click.echo(F.render(fmt, data))
        return
    c, s = data["Client"], data["Server"]
    click.echo(f"Client:\n Version:\t{c['Version']}\n API version:\t{c['ApiVersion']}\n Python version:\t"
               f"{c['PythonVersion']}\n OS/Arch:\tlinux/{c['Arch']}\n\nServer:\n Engine:\n  Version:\t{s['Version']}\n"
               f"  Runtime:\t{s['Runtime']}\n  Kernel Version:\t{s['KernelVersion']}")
