"""``neumo config validate|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import typer

from neumo.cli.common import JsonFlag, console, emit_json

app = typer.Typer(no_args_is_help=True, help="Validate and inspect config files.")


@app.command("validate")
def validate(files: List[Path], json_out: bool = JsonFlag) -> None:
    """Validate config files; every error is reported with its path. Exit 2 if any file is invalid."""
    from neumo.catalog import validate_file
    from neumo.errors import ConfigError, NeumoError

    results: list[dict[str, Any]] = []
    bad = 0
    for f in files:
        try:
            kind, _ = validate_file(f)
            results.append({"file": str(f), "kind": kind, "ok": True, "errors": []})
        except ConfigError as e:
            bad += 1
            results.append(
                {
                    "file": str(f),
                    "ok": False,
                    "errors": [{"path": p, "message": m} for p, m in e.errors] or [{"path": "", "message": str(e)}],
                }
            )
        except NeumoError as e:
            bad += 1
            results.append({"file": str(f), "ok": False, "errors": [{"path": "", "message": str(e)}]})
    if json_out:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                console.print(f"[green]ok[/]    {r['file']} ({r['kind']})")
            else:
                for err in r["errors"]:  # one unwrapped line per error, on stderr
                    where = f"{err['path']}: " if err["path"] else ""
                    msg = " ".join(f"{where}{err['message']}".split())
                    typer.echo(f"error: {r['file']}: {msg}", err=True)
    if bad:
        raise typer.Exit(2)


@app.command("kinds")
def kinds_(json_out: bool = JsonFlag) -> None:
    """List the config kinds a file can declare with 'kind:'."""
    from neumo.catalog import kinds

    names = sorted(kinds())
    if json_out:
        emit_json(names)
    else:
        for n in names:
            console.print(n)
