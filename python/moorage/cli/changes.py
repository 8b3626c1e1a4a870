"""Container-to-image verbs: diff, commit, export, history."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from moorage.cli import State, cli
from moorage.cli.container import _print_items, container_group, pass_state
from moorage.cli.image import image_group


@cli.command("diff")
@click.argument("container")
@pass_state
def diff(state: State, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    from moorage.image.commit import KIND_LETTER

    for c in state.engine.containers.get(container).diff():
        click.echo(f"{KIND_LETTER[c['Kind']]} {c['Path']}")


def _bool(value: str) -> bool:
    v = value.lower().removeprefix("=")  # pflag spells short ones -H=false
    if v in ("true", "1", "t", "yes"):
        return True
    if v in ("false", "0", "f", "no"):
        return False
    raise click.BadParameter(f"invalid boolean value {value!r}")


@cli.command("commit")
@click.option("-a", "--author", default=None, help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
@click.option("-c", "--change", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default=None, help="Commit message")
@click.option("-p", "--pause", "pause", default="true", is_flag=False, flag_value="true",
              help="Pause container during commit (default true)")
@click.argument("container")
@click.argument("repository", required=False)
@pass_state
def commit(state: State, author: str | None, change: tuple[str, ...], message: str | None, pause: str,
           container: str, repository: str | None) -> None:
    """Create a new image from a container's changes."""
    from moorage.image.commit import commit as do_commit

    eng = state.engine
    image = do_commit(eng.ctx, eng._mgr, container, repository, message, author, list(change), _bool(pause))
    click.echo(image.id)


@cli.command("export")
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT")
@click.argument("container")
@pass_state
def export(state: State, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    c = state.engine.containers.get(container)
    if output:
        c.export(output)
        return
    if sys.stdout.isatty():
        raise click.exceptions.Exit(_refuse())
    out = sys.stdout.buffer
    for chunk in c.export():
        out.write(chunk)
    out.flush()


def _refuse() -> int:
    click.echo("Error: cowardly refusing to save to a terminal. Use the -o flag or redirect", err=True)
    return 1


HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


@cli.command("history")
@click.option("-H", "--human", default="true", is_flag=False, flag_value="true",
              help="Print sizes and dates in human readable format (default true)")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
@click.argument("image")
@pass_state
def history(state: State, human: str, no_trunc: bool, quiet: bool, fmt: str | None, image: str) -> None:
    """Show the history of an image."""
    from moorage.cli import formatting as F

    is_human = _bool(human)
    now = time.time()
    items: list[dict[str, Any]] = []
    for h in state.engine.images.history(image):
        iid = h["Id"]
        if iid != "<missing>" and not no_trunc:
            iid = iid.removeprefix("sha256:")[:12]
        created_by = h["CreatedBy"].replace("\t", " ")
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(h["Created"])) + time.strftime("%z")
        created_at = created_at[:-2] + ":" + created_at[-2:]
        items.append({
            "ID": iid,
            "CreatedSince": F.created_since(h["Created"], now) if is_human else created_at,
            "CreatedAt": created_at,
            "CreatedBy": created_by,
            "Size": F.human_size(h["Size"]) if is_human else str(h["Size"]),
            "Comment": h["Comment"],
        })
    if quiet:
        for it in items:
            click.echo(it["ID"])
        return
    _print_items(items, fmt, ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"], HISTORY_HEADERS)


container_group.add_command(cli.commands["diff"], "diff")
container_group.add_command(cli.commands["commit"], "commit")
container_group.add_command(cli.commands["export"], "export")
image_group.add_command(cli.commands["history"], "history")
