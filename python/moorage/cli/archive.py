"""Archive verbs: save, load (Docker's flags, output and exit codes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from moorage.cli import State, cli, fail
from moorage.cli.container import pass_state
from moorage.cli.image import image_group

#: moorage.image.archive.FORMATS, spelled here so that starting the CLI does not
#: import the archive code (and tarfile) for every command
FORMATS = ("docker-archive", "oci-archive")


@contextmanager
def _progress(description: str, total: int | None, enabled: bool) -> Iterator[tuple[Any, Any]]:
    """A rich progress bar on stderr when it is a terminal; (advance, relabel) callbacks or Nones."""
    if not enabled or not sys.stderr.isatty():
        yield None, None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as p:
        task = p.add_task(description, total=total)

        def advance(n: int) -> None:
            p.advance(task, n)

        def relabel(i: int, n: int) -> None:
            p.update(task, description=f"Storing image {i + 1}/{n}")

        yield advance, relabel


@cli.command("save")
@click.option("-o", "--output", help="Write to a file, instead of STDOUT")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="docker-archive", show_default=True,
              help="Archive format")
@click.argument("images", nargs=-1, required=True)
@pass_state
def save(state: State, output: str | None, fmt: str, images: tuple[str, ...]) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    from moorage.image import archive

    if output is None and sys.stdout.isatty():
        raise fail("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1)
    eng = state.engine
    total = archive.save_total(eng.ctx, images, fmt) if sys.stderr.isatty() else None
    with _progress("Saving", total, True) as (advance, _):
        if output is None:
            sys.stdout.flush()
            eng.images.save(list(images), sys.stdout.fileno(), fmt, advance)
        else:
            eng.images.save(list(images), output, fmt, advance)


@cli.command("load")
@click.option("-i", "--input", "input_", help="Read from tar archive file, instead of STDIN")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@pass_state
def load(state: State, input_: str | None, quiet: bool) -> None:
    """Load an image from a tar archive or STDIN."""
    from moorage.image import reference

    total: int | None = None
    if input_ is None:
        if sys.stdin.isatty():
            raise fail("requested load from stdin, but stdin is empty", 1)
        source: Any = sys.stdin.fileno()
    else:
        try:
            total = os.stat(input_).st_size
        except OSError:
            raise fail(f"open {input_}: no such file or directory", 1) from None
        source = input_
    with _progress("Loading", total, not quiet) as (advance, relabel):
        on_image: Callable[[int, int], None] | None = relabel
        loaded = state.engine.images.load_report(source, advance, on_image)
    for r in loaded:
        if r.names:
            for n in r.names:
                click.echo(f"Loaded image: {reference.parse(n).familiar}")
        else:
            click.echo(f"Loaded image ID: {r.image.id}")


image_group.add_command(save, "save")
image_group.add_command(load, "load")
