"""The ``moorage`` command line: Docker's verbs and flags, a thin client of
:class:`moorage.Engine`. Each noun has its module; this one holds the group,
the global options and the error → exit code mapping."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import click

from moorage.errors import MoorageError

_default_showwarning = warnings.showwarning

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


class State:
    """Global options, and the Engine made from them on first use."""

    def __init__(self, root: str | None, runroot: str | None, storage_driver: str | None) -> None:
        self.root, self.runroot, self.storage_driver = root, runroot, storage_driver
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from moorage.engine import Engine

            self._engine = Engine(self.root, self.runroot, self.storage_driver)
        return self._engine


class Group(click.Group):
    """Lists commands in the order they were added, like ``docker --help``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=Group, context_settings=CONTEXT)
@click.option("--root", envvar="MOORAGE_ROOT", help="Root directory of persistent state [/var/lib/moorage]")
@click.option("--runroot", envvar="MOORAGE_RUNROOT", help="Directory of runtime state [/run/moorage]")
@click.option("--storage-driver", "-s", envvar="MOORAGE_STORAGE_DRIVER", help="Storage driver [overlay]")
@click.version_option(package_name="moorage", prog_name="moorage")
@click.pass_context
def cli(ctx: click.Context, root: str | None, runroot: str | None, storage_driver: str | None) -> None:
    """moorage: a daemonless, Docker-compatible container engine."""
    ctx.obj = State(root, runroot, storage_driver)


def fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"Error: {message}", err=True)
    return click.exceptions.Exit(code)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Warnings meant for the user (a plugin that failed to load) as Docker prints them."""
    from moorage.errors import PluginLoadWarning

    if issubclass(category, PluginLoadWarning):
        click.echo(f"WARNING: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    from moorage.cli import archive, changes, container, image, maintenance, system  # noqa: F401  (registers commands)

    warnings.showwarning = _show_warning

    try:
        rv = cli.main(args=argv, prog_name="moorage", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as e:
        # Docker's shape: the cause on one line, then where to read more.
        click.echo(f"Error: {e.format_message()}", err=True)
        if e.ctx is not None:
            click.echo(f"See '{e.ctx.command_path} --help'.", err=True)
        sys.exit(125)
    except click.ClickException as e:
        e.show()
        sys.exit(125)
    except MoorageError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(_exit_code(e, sys.argv[1:] if argv is None else argv))
    except OSError as e:
        what = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        if isinstance(e, PermissionError) and os.geteuid() != 0:
            what += " (moorage needs root; rootless mode is not supported yet)"
        click.echo(f"Error: {what}", err=True)
        sys.exit(_exit_code(MoorageError(what), sys.argv[1:] if argv is None else argv))
    except ValueError as e:
        from moorage.cli.formatting import FilterError, FormatError

        if not isinstance(e, (FilterError, FormatError)):
            raise
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


def command_name(argv: list[str]) -> str | None:
    """The verb in ``argv`` after the global options (``container run`` → ``run``)."""
    it = iter(argv)
    for tok in it:
        if tok in ("--root", "--runroot", "--storage-driver", "-s"):
            next(it, None)
        elif tok.startswith("-"):
            continue
        elif tok in ("container", "image", "system"):
            return next(it, tok)
        else:
            return tok
    return None


def _exit_code(e: MoorageError, argv: list[str]) -> int:
    """Docker: `run`/`create` errors exit 125 (126/127 for the command); others exit 1."""
    if e.exit_code in (126, 127):
        return e.exit_code
    return 125 if command_name(argv) in ("run", "create") else 1
