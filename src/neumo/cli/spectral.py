"""``neumo spectral``: per-layer ranks of a checkpoint (or of its difference to a base) and Hessian spectra."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

from neumo.cli.common import JsonFlag, console, emit_json
from neumo.errors import NeumoError

app = typer.Typer(no_args_is_help=True, help="Effective ranks of weights and updates; curvature spectra.")


def load_tensors(path: Path) -> dict:
    if not path.exists():
        raise NeumoError(f"checkpoint {path} does not exist; pass a .safetensors file")
    if path.suffix != ".safetensors":
        raise NeumoError(f"{path.name} is not a .safetensors file; convert it or pass a safetensors checkpoint")
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # corrupt header, truncated file
        raise NeumoError(f"cannot read {path}: {e}") from None


def analyze_tensors(tensors: dict, base: dict | None = None, eps: float = 0.01) -> list[dict]:
    """One row per >=2-D tensor: its shape and the four ranks of W (or of W - W0 when a base is given)."""
    from neumo.spectral.ranks import as_matrix, matrix_ranks

    rows = []
    for name, w in tensors.items():
        if w.dim() < 2 or not w.is_floating_point():
            continue
        if base is not None:
            if name not in base or base[name].shape != w.shape:
                raise NeumoError(
                    f"the base checkpoint has no tensor {name!r} of shape {tuple(w.shape)}; "
                    "pass a base from the same architecture"
                )
            w = w - base[name]
        rows.append({"name": name, "shape": list(w.shape), **matrix_ranks(as_matrix(w).double(), eps)})
    if not rows:
        raise NeumoError("the checkpoint holds no floating-point tensor with 2 or more dimensions")
    return rows


@app.command()
def analyze(
    checkpoint: Path = typer.Argument(..., help="A .safetensors file."),
    base: Optional[Path] = typer.Option(None, "--base", help="Initial checkpoint: analyse W - W0."),
    eps: float = typer.Option(0.01, help="Energy-rank tolerance."),
    json_out: bool = JsonFlag,
) -> None:
    """Per-layer effective ranks of W (or of W - W0 with --base)."""
    if not 0 < eps < 1:
        raise NeumoError(f"--eps must be a fraction of the energy in (0, 1), e.g. 0.01; got {eps}")
    rows = analyze_tensors(load_tensors(checkpoint), load_tensors(base) if base else None, eps)
    if json_out:
        emit_json({"checkpoint": str(checkpoint), "base": str(base) if base else None, "layers": rows})
        return
    from rich.table import Table

    t = Table(title=f"{'W - W0' if base else 'W'} ranks of {checkpoint.name}")
    for c in ("name", "shape", "energy", "stable", "entropy", "PR"):
        t.add_column(c)
    for r in rows:
        t.add_row(
            r["name"],
            "x".join(map(str, r["shape"])),
            f"{r['energy_rank']:.0f}",
            f"{r['stable_rank']:.2f}",
            f"{r['entropy_rank']:.2f}",
            f"{r['participation_ratio']:.2f}",
        )
    console.print(t)


@app.command()
def hessian(
    model: str = typer.Option("mlp", help="Registered model name (digits data: mlp only)."),
    hidden: str = typer.Option("32,32", help="Hidden widths, comma-separated."),
    activation: str = typer.Option("relu"),
    n_samples: int = typer.Option(256, help="Samples of digits in the loss."),
    k: int = typer.Option(10, min=1, max=1000, help="Top-k eigenvalues."),
    density: bool = typer.Option(False, "--density", help="Also estimate moments by SLQ."),
    trace: bool = typer.Option(False, "--trace", help="Also estimate the trace (Hutch++)."),
    backend: str = typer.Option("double_backward", help="double_backward | func | finite_difference"),
    surrogate: str = typer.Option(
        "none",
        help="none | bf16: find the top-k subspace with bf16 products, then refine it with exact ones "
        "(lanczos_refined; pays off only where bf16 is native: AVX512_BF16 / AMX CPUs, GPUs).",
    ),
    tol: float = typer.Option(
        1e-6,
        min=0.0,
        help="Stop when residuals <= tol * max|eigenvalue| (with --surrogate: when every eigenvalue error bound <= tol * |eigenvalue|).",
    ),
    seed: int = typer.Option(0),
    json_out: bool = JsonFlag,
) -> None:
    """Curvature of a freshly initialised registered model on the digits data (cross-entropy)."""
    import torch.nn.functional as F

    from neumo.data.digits import load_digits_split
    from neumo.nn import build_model
    from neumo.errors import check_choice
    from neumo.spectral.curvature import HVP_PRECISIONS, HessianOperator, hutchpp, lanczos, lanczos_refined, slq

    check_choice("surrogate", surrogate, ("none", *(p for p in HVP_PRECISIONS if p != "native")))
    if not math.isfinite(tol):
        raise NeumoError(f"--tol must be a finite number >= 0; got {tol}")

    if model != "mlp":
        raise NeumoError(f"'neumo spectral hessian' runs on digits, which only the 'mlp' model takes; got {model!r}")
    try:
        widths = [int(h) for h in hidden.split(",") if h.strip()]
    except ValueError:
        raise NeumoError(f"--hidden must be comma-separated integers, e.g. 32,32; got {hidden!r}") from None
    d = load_digits_split(seed)
    if not 1 <= n_samples <= len(d.y_train):
        raise NeumoError(f"--n-samples must be in [1, {len(d.y_train)}]; got {n_samples}")
    net = build_model("mlp", seed=seed, in_dim=64, out_dim=10, hidden=widths, activation=activation)
    batch = (d.x_train[:n_samples], d.y_train[:n_samples])

    def loss(m, b):
        return F.cross_entropy(m(b[0]), b[1])

    op = HessianOperator(net, loss, batch, backend=backend)
    if surrogate == "none":
        res = lanczos(op, k=k, seed=seed, tol=tol, return_vectors=False)
    else:
        sur = HessianOperator(net, loss, batch, backend=backend, precision=surrogate)
        res = lanczos_refined(op, sur, k=k, tol=tol, seed=seed, return_vectors=False)
    out: dict[str, Any] = {
        "n_params": op.size,
        "eigenvalues": res.eigenvalues.tolist(),
        "residuals": res.residuals.tolist(),
        "matvecs": res.matvecs,
        "converged": res.converged,
    }
    if surrogate != "none":
        out["surrogate"], out["surrogate_matvecs"] = surrogate, sur.matvecs
    if density:
        dens = slq(op, n_probes=4, steps=30, seed=seed)
        out["moments"] = {f"m{j}": dens.moment(j) for j in (1, 2)}
    if trace:
        tr = hutchpp(op, n_matvecs=60, seed=seed)
        out["trace"] = {"estimate": tr.estimate, "stderr": tr.stderr}
    if json_out:
        emit_json(out)
        return
    hvps = f"{res.matvecs} HVPs" + (f" + {sur.matvecs} {surrogate} HVPs" if surrogate != "none" else "")
    console.print(f"P = {op.size} parameters; top-{k} eigenvalues ({hvps}, converged={res.converged}):")
    console.print(", ".join(f"{v:.4g}" for v in out["eigenvalues"]))
    for key in ("moments", "trace"):
        if key in out:
            console.print(f"{key}: {out[key]}")
