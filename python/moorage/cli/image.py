"""Image verbs: import, images, rmi, tag, image inspect."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from moorage.cli import State, cli
from moorage.cli.container import _print_items, pass_state
from moorage.errors import MoorageError, NotFound


@cli.group("image", context_settings={"help_option_names": ["--help"]})
def image_group() -> None:
    """Manage images."""


@cli.command("import")
@click.option("-c", "--change", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.argument("source")
@click.argument("reference", required=False)
@pass_state
def import_(state: State, change: tuple[str, ...], message: str, source: str, reference: str | None) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    image = state.engine.images.import_(source, reference, changes=list(change), message=message)
    click.echo(image.id)


IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE"}


@cli.command("images")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--digests", is_flag=True, help="Show digests")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided")
@click.option("--format", "fmt", help="Format output using a Go template or 'json'")
@click.argument("repository", required=False)
@pass_state
def images(state: State, all_: bool, quiet: bool, digests: bool, no_trunc: bool, filters: tuple[str, ...],
           fmt: str | None, repository: str | None) -> None:
    """List images."""
    from moorage.cli import formatting as F
    from moorage.image import reference as R
    from moorage.runtime.timefmt import parse_rfc3339

    now = time.time()
    items: list[dict[str, Any]] = []
    flt = F.parse_filters(list(filters))
    for key in flt:
        if key not in ("dangling", "reference", "label"):
            raise MoorageError(f"invalid filter '{key}'")
    for img in state.engine.images.list():
        refs: list[R.Reference | None] = [R.parse(t) for t in img.tags] or [None]
        if "dangling" in flt:
            want = flt["dangling"][0].lower() in ("true", "1")
            if want != (not img.tags):
                continue
        labels = (img.config.get("config") or {}).get("Labels") or {}
        if "label" in flt and not all(
            (lab.split("=", 1)[0] in labels and ("=" not in lab or labels[lab.split("=", 1)[0]] == lab.split("=", 1)[1]))
            for lab in flt["label"]
        ):
            continue
        for ref in refs:
            repo = ref.familiar_repository if ref else "<none>"
            tag = (ref.tag or "<none>") if ref else "<none>"
            if repository and repo != repository and (ref is None or ref.repository != repository):
                continue
            if "reference" in flt and not any(_ref_match(p, ref) for p in flt["reference"]):
                continue
            created = parse_rfc3339(img.created)
            iid = img.id if no_trunc else img.short_id
            items.append({
                "Repository": repo, "Tag": tag, "Digest": "<none>", "ID": iid,
                "CreatedSince": F.created_since(created, now) if created else "N/A",
                "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
                "Size": F.human_size(img.size),
            })
    if quiet:
        seen = []
        for it in items:
            if it["ID"] not in seen:
                seen.append(it["ID"])
        for i in seen:
            click.echo(i)
        return
    cols = ["Repository", "Tag"] + (["Digest"] if digests else []) + ["ID", "CreatedSince", "Size"]
    _print_items(items, fmt, cols, IMAGE_HEADERS)


def _ref_match(pattern: str, ref: Any) -> bool:
    import fnmatch

    if ref is None:
        return False
    name = ref.familiar_repository
    if ":" in pattern.rsplit("/", 1)[-1]:
        return fnmatch.fnmatch(f"{name}:{ref.tag}", pattern)
    return fnmatch.fnmatch(name, pattern)


@cli.command("rmi")
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.argument("images", nargs=-1, required=True)
@pass_state
def rmi(state: State, force: bool, no_prune: bool, images: tuple[str, ...]) -> None:
    """Remove one or more images."""
    failed = False
    for name in images:
        try:
            for action, what in state.engine.images.remove(name, force=force):
                click.echo(f"{action}: {what}")
        except MoorageError as e:
            click.echo(f"Error: {e}", err=True)
            failed = True
    raise click.exceptions.Exit(1 if failed else 0)


@cli.command("tag")
@click.argument("source")
@click.argument("target")
@pass_state
def tag(state: State, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    img = state.engine.images.get(source)
    state.engine.ctx.images.tag(img.id, target)


@image_group.command("inspect")
@click.option("-f", "--format", "fmt", help="Format output using a Go template")
@click.argument("names", nargs=-1, required=True)
@pass_state
def image_inspect(state: State, fmt: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    from moorage.cli import formatting as F
    from moorage.runtime.inspect import image_inspect as ii

    out, failed = [], False
    for n in names:
        try:
            out.append(ii(state.engine.ctx, state.engine.images.get(n)))
        except NotFound as e:
            click.echo(f"Error: {e}", err=True)
            failed = True
    if fmt:
        for r in out:
            click.echo(F.render(fmt, r))
    else:
        click.echo(json.dumps(out, indent=4))
    raise click.exceptions.Exit(1 if failed else 0)


image_group.add_command(cli.commands["import"], "import")
image_group.add_command(cli.commands["images"], "ls")
image_group.add_command(cli.commands["images"], "list")
image_group.add_command(cli.commands["rmi"], "rm")
image_group.add_command(cli.commands["tag"], "tag")
