"""``neumo serve``: the local web page and JSON API (detection, runs, studies)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer

from neumo.cli.common import RunsDir, err_console, root_or_default
from neumo.errors import NeumoError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_model(model: str) -> None:
    """Validate the model name without loading it (loading waits for the first detect request)."""
    from neumo.detect.lm import LM_NAMES

    if model.startswith("hf:"):
        if not Path(model[3:]).is_dir():
            raise NeumoError(f"--model {model!r}: folder {model[3:]!r} does not exist; give a local HF model folder")
    elif model not in LM_NAMES:
        raise NeumoError(f"unknown --model {model!r}; use one of: {', '.join(LM_NAMES)}")


def command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind; anything but loopback is reachable from other machines."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port (0 picks a free one)."),
    runs_dir: Optional[Path] = RunsDir,
    model: str = typer.Option(
        "smollm2",
        "--model",
        help="Scoring LM: smollm2, tiny, ngram or hf:<folder>; loaded on the first detect request.",
    ),
    calibration: Optional[Path] = typer.Option(
        None,
        "--calibration",
        help="Calibration JSON for the verdict "
        "threshold ('neumo detect calibrate'), or the name of a shipped one (e.g. gemma3-270m); default "
        "for smollm2: the shipped one; other models without one: verdict 'undecided'.",
    ),
    max_body_bytes: int = typer.Option(200_000, "--max-body-bytes", help="Largest request body."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Longest text /api/detect scores, in tokens."),
    timeout: float = typer.Option(120.0, "--timeout", help="Per-request budget of /api/detect, seconds."),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        help="fp32 | bf16 | int8 for smollm2, gemma3-270m and hf:<folder> models "
        "(default: bf16 for smollm2 and gemma3-270m, fp32 otherwise).",
    ),
    performer: Optional[str] = typer.Option(
        None, "--performer", help="Second model for the 'binoculars' detector; must share --model's tokenizer."
    ),
) -> None:
    """Serve the detection page, the runs and studies browser and the JSON API (OpenAPI at /docs)."""
    import uvicorn
    from pydantic import ValidationError

    from neumo.server import Limits, create_app

    if not 0 <= port <= 65535:
        raise NeumoError(f"--port must be in 0..65535, got {port}")
    _check_model(model)
    if performer is not None:
        _check_model(performer)
    from neumo.detect.lm import PRECISION_NAMES

    if precision is not None:
        if precision not in PRECISION_NAMES:
            raise NeumoError(f"--precision must be one of {', '.join(PRECISION_NAMES)}; got {precision!r}")
        if not (model == "smollm2" or model.startswith("hf:")) and precision != "fp32":
            raise NeumoError(f"--precision {precision} applies to smollm2 and hf:<folder> models, not {model!r}")
    try:
        limits = Limits(max_body_bytes=max_body_bytes, max_tokens=max_tokens, timeout_s=timeout)
    except ValidationError as e:
        first = e.errors()[0]
        raise NeumoError(f"invalid limit {first['loc'][0]}: {first['msg']}") from None
    if calibration is None:
        from neumo.detect.evaluate import shipped_calibration

        calibration = shipped_calibration(model)
        if calibration is not None:
            err_console.print(f"calibration: {calibration} (shipped; --calibration FILE to use your own)")
    cal = None
    if calibration is not None:
        from neumo.detect.evaluate import load_calibration

        cal = load_calibration(calibration)  # read once: a bad file fails now, and the app reuses it
        if cal.max_tokens is not None and cal.max_tokens < max_tokens:
            err_console.print(
                f"[yellow]note:[/] the calibration was fitted on texts of at most {cal.max_tokens} "
                "tokens; longer texts get a less reliable verdict"
            )
    if not is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/] binding {host}: the server is reachable from other machines "
            "and has no authentication; use --host 127.0.0.1 to keep it local"
        )
    root = root_or_default(runs_dir)
    app = create_app(
        runs_dir=root, model=model, limits=limits, calibration=cal, precision=precision, performer=performer
    )
    err_console.print(f"neumo serve: http://{host}:{port}/  (runs: {root}, model: {model}, API docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info")
