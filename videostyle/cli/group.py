"""The ``videostyle`` command group itself; the command modules add their commands to it."""

from __future__ import annotations

import logging
import sys

import click

from videostyle import __version__
from flow.errors import FlowError
from videostyle.errors import UserError


class _UserFormatter(logging.Formatter):
    """A user reads ``note: ...`` or ``warning: ...``, as errors read ``error: ...``; which module
    logged it is for ``--verbose``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING and not message.startswith("note:"):
            message = f"{record.levelname.lower()}: {message}"
        return message


class _Group(click.Group):
    """Turns user errors raised anywhere below into one line and exit status 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (UserError, FlowError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except MemoryError:
            click.echo("error: out of memory; finished work is kept: work at a smaller --width, or free memory",
                       err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; finished work is kept, run the same command to resume", err=True)
            sys.exit(130)
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC
                click.echo("error: disk full; finished work is kept, free space and run again", err=True)
                sys.exit(2)
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="videostyle")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logging.")
def main(verbose: bool) -> None:
    """Give a whole video the look of a painting, without flicker."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if verbose else _UserFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
