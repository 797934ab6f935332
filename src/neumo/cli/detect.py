"""``neumo detect score|explain|eval|calibrate``: thin faces over neumo.detect."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from neumo.cli.common import JsonFlag, console, emit_json
from neumo.errors import NeumoError

app = typer.Typer(no_args_is_help=True, help="Score text with a causal LM, detect machine text, explain why.")

ModelOpt = typer.Option("smollm2", "--model", "-m", help="smollm2 | gemma3-270m | ngram | tiny | hf:<folder>.")
ModelsOpt = typer.Option(
    None,
    "--model",
    "-m",
    metavar="MODEL",
    help="smollm2 | gemma3-270m | ngram | tiny | hf:<folder> (default smollm2); repeat it for an ensemble "
    "across tokenizers: the mean of each model's z-score against its calibration's human texts.",
)
ExplainModelOpt = typer.Option(
    None,
    "--model",
    "-m",
    metavar="MODEL",
    help="smollm2 | gemma3-270m | ngram | tiny | hf:<folder> (default smollm2; one model).",
)
DetectorOpt = typer.Option(None, "--detector", "-d", help="Detector name (repeatable; default: all one-pass).")
CalOpt = typer.Option(
    None,
    "--calibration",
    help="Calibration JSON (from 'neumo detect calibrate') for the verdict, or the name of a shipped one "
    "(e.g. gemma3-270m); default: the model's shipped one (smollm2, gemma3-270m), else 'undecided'.",
)
CalsOpt = typer.Option(
    None,
    "--calibration",
    metavar="CAL.json",
    help="Calibration JSON (from 'neumo detect calibrate') for the verdict, or the name of a shipped one "
    "(e.g. gemma3-270m); default: the model's shipped one (smollm2, gemma3-270m), else 'undecided'. With several --model: one per model (its human score statistics) and/or "
    "an ensemble calibration (default: the shipped one of those models, if any).",
)
PrecisionOpt = typer.Option(
    None,
    "--precision",
    help="fp32 | bf16 | int8: arithmetic of a Hugging Face model's "
    "forward pass (default: bf16 for smollm2 and gemma3-270m, fp32 otherwise).",
)
PerformerOpt = typer.Option(
    None,
    "--performer",
    help="Second model for -d binoculars (the --model is the observer); it must share the --model's tokenizer.",
)
MaxTokOpt = typer.Option(
    None, "--max-tokens", help="Score only the first N tokens of each text (after the shared prompt in pair files)."
)
MAX_TOP = 1000
MAX_SEED = 2**63 - 1


def _load(model: str, precision: Optional[str]):
    from neumo.detect.lm import face_precision, load_lm

    return load_lm(model, precision=face_precision(model, precision))


def _check_precision(precision: Optional[str]) -> None:
    from neumo.detect.lm import PRECISION_NAMES

    if precision is not None and precision not in PRECISION_NAMES:
        raise NeumoError(f"--precision must be one of {', '.join(PRECISION_NAMES)}; got {precision!r}")


def _check_performer(detectors: Optional[List[str]], performer: Optional[str]) -> bool:
    """Whether a performer is needed (binoculars asked for); refuses one without the other, before any load."""
    from neumo.detect.registry import PERFORMER_HINT, split_detectors

    two = split_detectors(detectors)[1]
    if not two and performer is not None:
        raise NeumoError("--performer is only used by -d binoculars; add -d binoculars or drop --performer")
    if two and performer is None:
        raise NeumoError(PERFORMER_HINT)
    return bool(two)


def _performer(detectors: Optional[List[str]], performer: Optional[str], precision: Optional[str], lm):
    """The performer model when binoculars is asked for (refused without one, or with another tokenizer)."""
    from neumo.detect.binoculars import check_pair

    if not _check_performer(detectors, performer):
        return None
    assert performer is not None  # _check_performer refuses binoculars without one
    perf = _load(performer, precision)
    check_pair(lm, perf)
    return perf


def _calibration_for(calibration: Optional[Path], lm):
    """The given calibration (a file, or the name of a shipped one), else the model's shipped one (None:
    verdict 'undecided')."""
    from neumo.detect.evaluate import default_calibration, load_calibration

    return load_calibration(calibration) if calibration else default_calibration(lm.name)


def _decided_by(r) -> str:
    th = r.threshold
    if th is None:
        return "no calibration"
    band = f", undecided in [{th.band[0]:.3f}, {th.band[1]:.3f})" if th.band else ""
    fpr = f" at {th.target_fpr:.0%} FPR" if th.target_fpr is not None else ""
    return f"{th.detector} >= {th.value:.3f}{fpr}{band}; calibration {th.calibration or th.reference}"


def _in_range(option: str, value, lo, hi, what: str = "an integer") -> None:
    """Refuse a numeric option outside [lo, hi] (NaN included) before any file is read or model loaded."""
    if value is not None and not lo <= value <= hi:
        raise NeumoError(f"{option} must be {what} in [{lo}, {hi}]; got {value}")


def _check_max_tokens(max_tokens) -> None:
    from neumo.detect.score import MAX_TOKENS

    _in_range("--max-tokens", max_tokens, 1, MAX_TOKENS)


def _read_text(source: str) -> str:
    from neumo.bounded import MAX_TEXT_BYTES, decode_utf8, read_limited

    raw = read_limited(source, "NEUMO_MAX_TEXT_BYTES", MAX_TEXT_BYTES, "text")
    return decode_utf8(raw, "stdin" if source == "-" else source)


def _texts(source: str, lines: bool) -> list[str]:
    if source != "-" and Path(source).suffix in (".json", ".jsonl", ".csv"):
        from neumo.detect.evaluate import load_labelled

        return load_labelled(source)[0]
    text = _read_text(source)
    texts = [t for t in text.splitlines() if t.strip()] if lines else [text]
    if not texts or not any(t.strip() for t in texts):
        raise NeumoError(f"{'stdin' if source == '-' else source} is empty; give text to score")
    return texts


def _one_model(models: Optional[List[str]], command: str) -> str:
    """The single model of ``explain`` (several are an ensemble, which only ``score`` gives)."""
    if models and len(models) > 1:
        raise NeumoError(f"{command} shows one model's tokens; give one --model (ensembles: neumo detect score)")
    return models[0] if models else "smollm2"


def _canonical(model: str) -> str:
    """The name a model's results and calibrations carry (``hf:<folder>``: the folder's name)."""
    return f"hf:{Path(model[3:]).expanduser().name}" if model.startswith("hf:") and len(model) > 3 else model


def _ensemble_plan(models: List[str], calibrations: List[Path], detector, performer):
    """The members and the ensemble calibration of ``score`` with several models, refused before any load
    when they do not fit together (see neumo.detect.ensemble.resolve_members)."""
    from neumo.detect.ensemble import check_models, plan_members

    names = [_canonical(m) for m in models]
    check_models(names)
    if detector:
        raise NeumoError(
            "--detector picks detectors of one model; an ensemble uses each model's calibrated detector "
            "(drop --detector, or give one --model)"
        )
    if performer is not None:
        raise NeumoError("--performer (binoculars) needs one --model that shares its tokenizer; not an ensemble")
    return plan_members(names, calibrations)


def _score_ensemble(source, models, calibrations, detector, max_tokens, lines, precision, performer, json_out):
    from neumo.detect.ensemble import analyze_ensemble

    texts = _texts(source, lines)
    members, ensemble = _ensemble_plan(models, calibrations, detector, performer)
    lms = [_load(m, precision) for m in models]
    results = analyze_ensemble(texts, lms, members, ensemble, max_tokens=max_tokens)
    if json_out:
        emit_json([r.model_dump() for r in results])
        return
    for i, r in enumerate(results):
        s = {"machine": "red", "human": "green"}.get(r.verdict, "yellow")
        sc = "  ".join(f"{m.model} {m.detector}={m.score:.3f} z={m.z:+.3f} ({m.n_tokens} tokens)" for m in r.members)
        decided = _decided_by(r) if r.threshold is not None else "no ensemble calibration"
        decided += "; z against " + ", ".join(r.member_calibrations)
        console.print(
            f"[{s}]{r.verdict:9s}[/] text {i}  ensemble mean z={r.score:+.3f}  {sc}  ({escape(decided)})",
            highlight=False,
        )


@app.command("score")
def score(
    source: str = typer.Argument("-", help="Text file, .json/.jsonl/.csv of texts, or '-' for stdin."),
    model: Optional[List[str]] = ModelsOpt,
    detector: Optional[List[str]] = DetectorOpt,
    calibration: Optional[List[Path]] = CalsOpt,
    max_tokens: Optional[int] = MaxTokOpt,
    lines: bool = typer.Option(False, "--lines", help="Each non-empty line is a separate text."),
    precision: Optional[str] = PrecisionOpt,
    performer: Optional[str] = PerformerOpt,
    json_out: bool = JsonFlag,
) -> None:
    """Print one verdict line per text with its detector scores and the calibration that decided it
    (texts are scored in batches). Several --model: the ensemble's mean z-score and its verdict."""
    from neumo.detect.analyze import analyze_texts
    from neumo.detect.registry import split_detectors

    _check_max_tokens(max_tokens)
    _check_precision(precision)
    models, cals = list(model or ["smollm2"]), list(calibration or [])
    if len(models) > 1:
        _score_ensemble(source, models, cals, detector, max_tokens, lines, precision, performer, json_out)
        return
    if len(cals) > 1:
        raise NeumoError("one --model takes one --calibration (several: an ensemble, give a --model for each)")
    texts = _texts(source, lines)
    split_detectors(detector)
    _check_performer(detector, performer)
    lm = _load(models[0], precision)
    perf = _performer(detector, performer, precision, lm)
    cal = _calibration_for(cals[0] if cals else None, lm)  # read once, not once per text
    results = analyze_texts(texts, lm, detector, cal, max_tokens=max_tokens, performer=perf)
    if json_out:
        emit_json([r.model_dump(exclude={"tokens"}) for r in results])
        return
    for i, r in enumerate(results):
        s = {"machine": "red", "human": "green"}.get(r.verdict, "yellow")
        sc = "  ".join(f"{k}={v:.3f}" for k, v in r.scores.items())
        console.print(
            f"[{s}]{r.verdict:9s}[/] text {i} ({r.n_tokens} tokens)  {sc}  ({escape(_decided_by(r))})", highlight=False
        )


@app.command("explain")
def explain(
    source: str = typer.Argument(..., help="Text file or '-' for stdin."),
    model: Optional[List[str]] = ExplainModelOpt,
    calibration: Optional[Path] = CalOpt,
    max_tokens: Optional[int] = MaxTokOpt,
    html: Optional[Path] = typer.Option(None, "--html", help="Write a token heat map to this HTML file."),
    top: int = typer.Option(8, "--top", help="Show the N most machine-like tokens and sentences."),
    precision: Optional[str] = PrecisionOpt,
    json_out: bool = JsonFlag,
) -> None:
    """Per-token evidence, per-sentence scores and the mechanism summary of one text."""
    from neumo.detect.analyze import analyze_text

    _check_max_tokens(max_tokens)
    _check_precision(precision)
    _in_range("--top", top, 1, MAX_TOP)
    name = _one_model(model, "explain")
    text = _texts(source, False)[0]
    lm = _load(name, precision)
    r = analyze_text(text, lm, None, _calibration_for(calibration, lm), max_tokens=max_tokens)
    if html:
        from neumo.detect.html import render_html

        Path(html).write_text(render_html(r, title=f"neumo detect: {source}"), encoding="utf-8")
    if json_out:
        emit_json(r.model_dump())
        return
    console.print(
        f"verdict [bold]{r.verdict}[/] - model {r.model} ({r.precision}), {r.n_tokens} tokens - "
        f"{escape(_decided_by(r))}",
        highlight=False,
    )
    for n in r.notes:
        console.print(f"  - {n}", highlight=False)
    t = Table(title="most machine-like sentences")
    for c in ("score", "tokens", "sentence"):
        t.add_column(c)
    for s in sorted(r.sentences, key=lambda s: -s.score)[:top]:
        t.add_row(f"{s.score:+.2f}", f"{s.start_token}-{s.end_token}", s.text.strip()[:90])
    console.print(t)
    if html:
        console.print(f"heat map: {html}")


@app.command("eval")
def eval_(
    data: List[Path] = typer.Argument(..., help="Labelled files: Fast-DetectGPT .json, .jsonl or .csv."),
    model: str = ModelOpt,
    detector: Optional[List[str]] = DetectorOpt,
    limit: Optional[int] = typer.Option(None, "--limit", help="First N pairs (JSON) or rows per file."),
    max_tokens: Optional[int] = MaxTokOpt,
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the AUROC interval (0: none)."),
    seed: int = typer.Option(0, "--seed"),
    precision: Optional[str] = PrecisionOpt,
    performer: Optional[str] = PerformerOpt,
    json_out: bool = JsonFlag,
) -> None:
    """AUROC (bootstrap 95% CI) and TPR at 1% / 5% FPR of each detector on each file (one batched pass per
    text), and AUROC / TPR@1%FPR on the first 32, 64, 128, 256 scored tokens."""
    from neumo.detect.datasets import MAX_BOOT, MAX_LIMIT, evaluate_file
    from neumo.detect.registry import split_detectors

    _check_max_tokens(max_tokens)
    _check_precision(precision)
    _in_range("--limit", limit, 1, MAX_LIMIT)
    _in_range("--n-boot", n_boot, 0, MAX_BOOT)  # 0: no interval
    _in_range("--seed", seed, 0, MAX_SEED)
    split_detectors(detector)
    for p in data:
        if not Path(p).is_file():
            raise NeumoError(f"data file {p} does not exist")
    _check_performer(detector, performer)
    lm = _load(model, precision)
    perf = _performer(detector, performer, precision, lm)
    rows = []
    for p in data:
        rows += evaluate_file(
            lm, p, detector, limit=limit, max_tokens=max_tokens, n_boot=n_boot, seed=seed, performer=perf
        ).rows
    if json_out:
        emit_json(rows)
        return
    t = Table(
        title=f"detection with {lm.name} at {lm.precision} (* = default detector; tokens: scored per text, mean and range; "
        "prompt: shared prompt cut from pairs, mean)"
    )
    for c in ("file", "detector", "AUROC [95% CI]", "TPR@1%FPR", "TPR@5%FPR", "n", "tokens", "prompt"):
        t.add_column(c)
    for r in rows:
        t.add_row(
            r["file"],
            r["detector"] + (" *" if r["default"] else ""),
            f"{r['auroc']:.3f} [{r['auroc_lo']:.3f}, {r['auroc_hi']:.3f}]",
            f"{r['tpr_at_1fpr']:.3f}",
            f"{r['tpr_at_5fpr']:.3f}",
            f"{r['n_human']}+{r['n_machine']}",
            f"{r['scored_tokens_mean']:.0f} ({r['scored_tokens_min']}-{r['scored_tokens_max']})",
            f"{r['prompt_tokens_mean']:.0f}" if r["prompt_cut"] else "-",
        )
    console.print(t)
    from neumo.detect.datasets import LENGTH_BUCKETS

    b = Table(title="AUROC / TPR@1%FPR on the first N scored tokens (texts with at least N; n = human+machine)")
    for c in ("file", "detector", *(f"{L} tokens" for L in LENGTH_BUCKETS)):
        b.add_column(c)
    for r in rows:
        cells = {
            x["tokens"]: f"{x['auroc']:.3f} / {x['tpr_at_1fpr']:.2f} ({x['n_human']}+{x['n_machine']})"
            for x in r["by_length"]
        }
        b.add_row(r["file"], r["detector"], *(cells.get(L, "-") for L in LENGTH_BUCKETS))
    console.print(b)


@app.command("calibrate")
def calibrate(
    data: List[Path] = typer.Argument(
        ...,
        help="Labelled reference set(s) (.json pairs, .jsonl, .csv); several files (e.g. one per domain): "
        "one threshold by --rule.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the calibration JSON."),
    model: str = ModelOpt,
    detector: str = typer.Option(
        "fast_detectgpt", "--detector", "-d", help="Detector to threshold (default: registry.DEFAULT_DETECTOR)."
    ),
    target_fpr: float = typer.Option(0.05, "--target-fpr", help="Allowed share of human texts flagged."),
    name: Optional[str] = typer.Option(None, "--name", help="Reference set name (default: file name)."),
    limit: Optional[int] = typer.Option(None, "--limit"),
    max_tokens: Optional[int] = MaxTokOpt,
    band_boot: int = typer.Option(
        1000, "--band-boot", help="Bootstrap resamples of the human scores for the uncertainty band (0: no band)."
    ),
    rule: str = typer.Option(
        "max",
        "--rule",
        metavar="max|pooled",
        help="How several files make one threshold: max = the largest of the files' own thresholds (every "
        "file's FPR at most the target; S-detect-transfer), pooled = one threshold over their pooled human "
        "texts. One file: the same threshold either way.",
    ),
    precision: Optional[str] = PrecisionOpt,
    json_out: bool = JsonFlag,
) -> None:
    """Fit a threshold and its uncertainty band on a named reference set and save them with their provenance
    (several files: by --rule, with each file's own threshold recorded)."""
    from neumo.detect.datasets import evaluate_file
    from neumo.detect.evaluate import MAX_BAND_BOOT, check_rule, fit_calibration, save_calibration
    from neumo.detect.datasets import MAX_LIMIT
    from neumo.detect.registry import resolve

    _check_max_tokens(max_tokens)
    _check_precision(precision)
    _in_range("--limit", limit, 1, MAX_LIMIT)
    _in_range("--band-boot", band_boot, 0, MAX_BAND_BOOT)
    if not 0 < target_fpr < 1:  # also refuses NaN
        raise NeumoError(f"--target-fpr must be a share in (0, 1), e.g. 0.05; got {target_fpr}")
    try:
        check_rule(rule)
    except NeumoError:
        raise NeumoError(f"--rule must be max or pooled; got {rule!r}") from None
    from neumo.detect.registry import TWO_MODEL

    if detector in TWO_MODEL:
        raise NeumoError(f"calibrate fits one-pass detectors; {detector} has no calibration yet (pick e.g. -d logrank)")
    resolve([detector])
    for p in data:
        if not Path(p).is_file():
            raise NeumoError(f"data file {p} does not exist")
    names = _set_names(data)
    lm = _load(model, precision)
    from neumo.detect.datasets import pool_files

    evals = [evaluate_file(lm, p, [detector], limit=limit, max_tokens=max_tokens, n_boot=0) for p in data]
    scores, labels, human_reference = pool_files(evals, detector)
    domains = [n for n, fe in zip(names, evals) for _ in fe.labels]
    cal = fit_calibration(
        scores,
        labels,
        detector=detector,
        model=lm.name,
        reference=name or " + ".join(Path(p).name for p in data),
        target_fpr=target_fpr,
        max_tokens=max_tokens,
        human_reference=human_reference,
        band_boot=band_boot,
        precision=lm.precision,
        domains=domains,
        rule=rule,
    )
    save_calibration(cal, out)
    if json_out:
        emit_json(cal.model_dump())
        return
    band = f"; undecided in [{cal.band[0]:.4f}, {cal.band[1]:.4f})" if cal.band else ""
    console.print(
        f"{detector} >= {cal.threshold:.4f} flags machine text{band} (reference {cal.reference}: "
        f"{cal.n_human} human, {cal.n_machine} machine, AUROC {cal.reference_auroc:.3f}); saved {out}",
        highlight=False,
    )
    if cal.domains:
        console.print(
            f"rule {cal.rule}; each file's own threshold and its FPR at {cal.threshold:.4f}:", highlight=False
        )
        for d in cal.domains:
            console.print(
                f"  {d.reference}: {d.threshold:.4f} ({d.n_human} human, {d.n_machine} machine), FPR {d.fpr:.3f}",
                highlight=False,
            )


def _set_names(data: List[Path]) -> List[str]:
    """The name each reference file's threshold is recorded under: its file name (its path when two share
    one); the same file twice is refused (it would count as two domains)."""
    resolved = [Path(p).resolve() for p in data]
    if len(set(resolved)) < len(resolved):
        raise NeumoError("a reference file is given twice; give each once")
    names = [Path(p).name for p in data]
    return names if len(set(names)) == len(names) else [str(p) for p in data]


app.command("fit")(__import__("neumo.cli.detect_fit", fromlist=["fit"]).fit)  # 'detect fit': neumo.cli.detect_fit
