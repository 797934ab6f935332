"""Entry point: ``neumo``. User mistakes print one line and exit 2; bugs keep their traceback."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Optional

import click
import typer

from neumo import __version__
from neumo.cli import config_cmd, lab_cmd, runs_cmd, study_cmd
from neumo.errors import NeumoError

app = typer.Typer(name="neumo", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="neumo: a lab bench for the implicit biases of neural networks.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neumo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                 help="Show the version and exit.")) -> None:
    """neumo: measure where learning concentrates, why LM text is detectable, how networks remember."""


app.command("lab")(lab_cmd.lab)
app.add_typer(study_cmd.app, name="study")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(config_cmd.app, name="config")

# Instrument faces live in their own modules (neumo.cli.<name>) and expose `app` (a group) or
# `command` (a single command). They are added when present.
for _name in ("spectral", "detect", "memory", "serve"):
    try:
        _mod = importlib.import_module(f"neumo.cli.{_name}")
    except ModuleNotFoundError as _e:
        if _e.name != f"neumo.cli.{_name}":
            raise
        continue
    if hasattr(_mod, "app"):
        app.add_typer(_mod.app, name=_name)
    else:
        app.command(_name)(_mod.command)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        rv = app(args=argv, prog_name="neumo", standalone_mode=False)
    except NeumoError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except FileNotFoundError as e:
        click.echo(f"error: file not found: {e.filename or e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
