"""``neumo detect fit``: the supervised combiner (neumo.detect.combine), fitted, evaluated held-out, saved."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from neumo.cli.common import JsonFlag, console, emit_json
from neumo.errors import NeumoError

MAX_MODELS = 2


def fit(
    data: List[Path] = typer.Argument(
        ..., help="Labelled files: Fast-DetectGPT {domain}_{generator}.raw_data.json[.gz] pairs, .jsonl or .csv."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the combiner JSON."),
    model: Optional[List[str]] = typer.Option(
        None,
        "--model",
        "-m",
        help="Scoring model (repeat for two; default smollm2): smollm2 | ngram | tiny | hf:<folder>.",
    ),
    group: Optional[List[str]] = typer.Option(
        None, "--group", help="Group label of each file, in order (default: domain and generator from the file name)."
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="fp32 | bf16 | int8 for Hugging Face models (default: bf16 for smollm2)."
    ),
    max_tokens: Optional[int] = typer.Option(
        128, "--max-tokens", help="Score the first N tokens of each text (after the shared prompt in pair files)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="First N pairs (JSON) or rows per file."),
    n_boot: int = typer.Option(
        1000, "--n-boot", help="Paired bootstrap resamples of each held-out group for the AUROC gain (0: none)."
    ),
    json_out: bool = JsonFlag,
) -> None:
    """Fit a logistic regression over the one-pass detector scores of one or two models on labelled files;
    report it leave-one-generator-out and leave-one-domain-out against the best single detector."""
    from neumo.cli.detect import _check_max_tokens, _check_precision, _in_range, _load
    from neumo.detect.combine import (
        check_file,
        check_groups,
        file_groups,
        fit_files,
        groupings,
        save_combiner,
        transfer_summary,
    )
    from neumo.detect.datasets import MAX_LIMIT
    from neumo.detect.evaluate import MAX_BAND_BOOT

    _check_max_tokens(max_tokens)
    _check_precision(precision)
    _in_range("--limit", limit, 1, MAX_LIMIT)
    _in_range("--n-boot", n_boot, 0, MAX_BAND_BOOT)
    if Path(out).is_dir():
        raise NeumoError(f"--out {out} is a folder; give the path of the combiner JSON to write")
    models = list(model or ["smollm2"])
    if len(models) > MAX_MODELS:
        raise NeumoError(f"--model is given {len(models)} times; the combiner takes one or two scoring models")
    if len(set(models)) != len(models):
        raise NeumoError(f"--model {models[0]} is given twice; give two different models or one")
    fg = file_groups(list(data), group)
    if not groupings(fg):
        raise NeumoError(
            "every file is in the same generator and domain: a held-out evaluation needs files of at least two "
            "generators or domains (or two different --group labels)"
        )
    check_groups(list(data), fg, [check_file(p, limit) for p in data])  # before any model loads
    lms = [_load(m, precision) for m in models]
    comb = fit_files(lms, list(data), groups=group, limit=limit, max_tokens=max_tokens, n_boot=n_boot)
    save_combiner(comb, out)
    summary = transfer_summary(comb.evaluation)
    if json_out:
        emit_json({**comb.model_dump(), "transfer": summary})
        return
    t = Table(
        title=f"held out: combiner of {len(comb.features)} features vs the best single detector on the training groups"
    )
    cols = ("grouping", "held out", "n", "combiner AUROC", "TPR@1%FPR", "best single (train)", "AUROC", "TPR@1%FPR")
    for c in (*cols, "gain [95%]"):
        t.add_column(c)
    for r in comb.evaluation:
        t.add_row(
            r.grouping,
            r.held_out,
            str(r.n_test),
            f"{r.combiner_auroc:.3f}",
            f"{r.combiner_tpr_at_1fpr:.2f}",
            r.best_single,
            f"{r.single_auroc:.3f}",
            f"{r.single_tpr_at_1fpr:.2f}",
            f"{r.auroc_gain:+.3f} [{r.auroc_gain_lo:+.3f}, {r.auroc_gain_hi:+.3f}]"
            if r.auroc_gain is not None and r.auroc_gain_lo is not None and r.auroc_gain_hi is not None
            else "",
        )
    console.print(t)
    console.print(
        f"combiner - best single AUROC held out: mean {summary['mean_delta_auroc']:+.3f}, worst "
        f"{summary['min_delta_auroc']:+.3f}, wins {summary['share_won']:.0%} of {summary['held_out']:.0f} "
        f"(interval above 0: {summary['gain_above_0']:.0f}, below 0: {summary['gain_below_0']:.0f}); "
        f"in-sample AUROC {comb.train_auroc:.3f} on {comb.n} texts; saved {out}",
        highlight=False,
    )
