"""Store upkeep verbs: image prune, system df, system check."""

from __future__ import annotations

import sys

import click

from moorage.cli import State, cli
from moorage.cli.container import _print_items, container_group, pass_state
from moorage.cli.image import image_group


@cli.group("system", context_settings={"help_option_names": ["--help"]})
def system_group() -> None:
    """Manage moorage."""


for _name in ("info", "version"):
    if _name in cli.commands:
        system_group.add_command(cli.commands[_name], _name)


def _confirm(warning: str) -> bool:
    click.echo(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ", nl=False)
    line = sys.stdin.readline()
    return line.strip().lower() in ("y", "yes")


@image_group.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@pass_state
def image_prune(state: State, all_: bool, force: bool) -> None:
    """Remove unused images."""
    from moorage.cli import formatting as F

    warning = ("This will remove all images without at least one container associated to them." if all_
               else "This will remove all dangling images.")
    if not force and not _confirm(warning):
        return
    report = state.engine.images.prune(filters={"dangling": not all_})
    deleted = report["ImagesDeleted"] or []
    if deleted:
        click.echo("Deleted Images:")
        for d in deleted:
            for k, v in d.items():
                click.echo(f"{k.lower()}: {v}")
        click.echo("")
    click.echo(f"Total reclaimed space: {F.human_size(report['SpaceReclaimed'], 4)}")


@container_group.command("prune")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. 'until=<timestamp>', 'label=k=v')")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@pass_state
def container_prune(state: State, filters: tuple[str, ...], force: bool) -> None:
    """Remove all stopped containers."""
    from moorage.cli import formatting as F

    flt = F.parse_filters(list(filters))
    if not force and not _confirm("This will remove all stopped containers."):
        return
    report = state.engine.containers.prune(filters=flt)
    deleted = report["ContainersDeleted"] or []
    if deleted:
        click.echo("Deleted Containers:")
        for cid in deleted:
            click.echo(cid)
        click.echo("")
    click.echo(f"Total reclaimed space: {F.human_size(report['SpaceReclaimed'], 4)}")


DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}


@system_group.command("df")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
@pass_state
def df(state: State, fmt: str | None) -> None:
    """Show moorage disk usage."""
    from moorage.cli import formatting as F

    summary = state.engine.df()["Summary"]
    rows = []
    for key, title in (("Images", "Images"), ("Containers", "Containers"), ("Volumes", "Local Volumes"),
                       ("BuildCache", "Build Cache")):
        s = summary[key]
        reclaim = F.human_size(s["Reclaimable"], 4)
        if key != "BuildCache" and s["Size"] > 0:
            reclaim += f" ({s['Reclaimable'] * 100 // s['Size']}%)"
        rows.append({"Type": title, "TotalCount": str(s["Total"]), "Active": str(s["Active"]),
                     "Size": F.human_size(s["Size"], 4), "Reclaimable": reclaim})
    _print_items(rows, fmt, ["Type", "TotalCount", "Active", "Size", "Reclaimable"], DF_HEADERS)


@system_group.command("check")
@click.option("--repair", is_flag=True, help="Remove leftovers and unreferenced or corrupt objects")
@pass_state
def check(state: State, repair: bool) -> None:
    """Verify the store: blobs against their digests, layers, images, leftovers."""
    from moorage.image.maintenance import check_store

    report = check_store(state.engine.ctx, repair)
    for line in report.lines:
        click.echo(line)
    if report.unresolved:
        raise click.exceptions.Exit(1)
    if not report.problems:
        click.echo("no problems found")
