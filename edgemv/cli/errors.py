"""One place where library errors become one line and an exit code."""

import os
import sys

import click

from ..errors import EdgemvError

__all__ = ["run_cli"]


def run_cli(group: click.Group, args=None) -> int:
    """Run the Click group; EdgemvError -> 'error: ...' on stderr and exit 1 (traceback with EDGEMV_DEBUG=1)."""
    debug = os.environ.get("EDGEMV_DEBUG", "") not in ("", "0")
    try:
        # Without standalone mode Click returns ctx.exit(code)'s code instead of raising: pass it on.
        result = group.main(args=args, prog_name="edgemv", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:  # usage errors, bad option values
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except EdgemvError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def main() -> None:  # pragma: no cover - console entry point
    from . import cli

    sys.exit(run_cli(cli))
