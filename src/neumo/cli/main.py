"""Entry point: ``neumo``. User mistakes print one line and exit 2; bugs keep their traceback."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Optional

import click
import typer

from neumo import __version__
from neumo.cli import config_cmd, lab_cmd, runs_cmd, study_cmd
from neumo.errors import NeumoError

app = typer.Typer(
    name="neumo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="neumo: a lab bench for the implicit biases of neural networks.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neumo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
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


def _click_errors() -> tuple[type[BaseException], ...]:
    """The ClickException classes in play: click's own and the copy bundled inside typer."""
    kinds: list[type[BaseException]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        kinds.append(TyperClickException)
    except ImportError:  # an older typer that uses click itself
        pass
    return tuple(kinds)


def _exit_kinds() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    exits: list[type[BaseException]] = [click.exceptions.Exit]
    aborts: list[type[BaseException]] = [click.exceptions.Abort]
    for mod in ("typer.exceptions", "typer._click.exceptions"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        exits += [m.Exit] if hasattr(m, "Exit") else []
        aborts += [m.Abort] if hasattr(m, "Abort") else []
    return tuple(exits), tuple(aborts)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _save_traceback() -> Path:
    """Write the current traceback to a file and return its path (for bug reports)."""
    folder = Path(os.environ.get("NEUMO_CRASH_DIR") or Path(tempfile.gettempdir()) / "neumo-crashes")
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=time.strftime("crash-%Y%m%d-%H%M%S-"), suffix=".txt", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(f"neumo {__version__}\nargv: {sys.argv!r}\n\n")
        traceback.print_exc(file=f)
    return Path(name)


def _user_error(message: str) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI behind one error boundary.

    A user mistake (bad argument, file, value, config, run folder) prints one ``error: ...`` line on stderr
    and exits 2. Anything else is a bug: one line naming a saved traceback file, exit 1.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    exits, aborts = _exit_kinds()
    try:
        rv = app(args=argv, prog_name="neumo", standalone_mode=False)
    except NeumoError as e:
        _user_error(str(e))
    except exits as e:
        sys.exit(getattr(e, "exit_code", 0))
    except aborts:
        click.echo("aborted", err=True)
        sys.exit(130)
    except _click_errors() as e:
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        if not msg.strip():  # no_args_is_help: the help is already printed
            sys.exit(2)
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _user_error(f"{msg}{hint}")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        what = {
            FileNotFoundError: "file not found",
            IsADirectoryError: "is a directory, not a file",
            NotADirectoryError: "not a directory",
            PermissionError: "permission denied",
        }[type(e)]
        _user_error(f"{what}: {e.filename or e}")
    except UnicodeDecodeError as e:
        _user_error(f"input is not UTF-8 text ({e.reason} at byte {e.start}); convert it to UTF-8")
    except OSError as e:
        if e.filename is not None:
            _user_error(f"cannot use {e.filename}: {e.strerror or e}")
        raise _bug() from e
    except RecursionError:
        _user_error("input is nested too deeply; flatten the file (neumo reads at most a few hundred levels)")
    except SystemExit:
        raise
    except Exception:
        raise _bug()
    sys.exit(rv if isinstance(rv, int) else 0)


def _bug() -> SystemExit:
    try:
        where = f"; traceback saved to {_save_traceback()}"
    except OSError:
        where = ""
    exc = sys.exc_info()[1]
    click.echo(f"bug: {type(exc).__name__}: {_one_line(str(exc))[:300]}{where}. Please report it.", err=True)
    return SystemExit(1)


if __name__ == "__main__":
    main()
