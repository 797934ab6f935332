"""Judging a study: per-seed values -> intervals -> pass / fail / undecided -> a verdict with its reason.

Pure functions over ``arm_values[i][arm][quantity]`` (seed i), so a test can re-judge the same
measurements with a null in the treatment's place (:func:`judge_units` with ``treatment=``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from neumo.stats import t_interval
from neumo.studies.base import (
    TREATMENT,
    CheckResult,
    CheckSpec,
    ControlResult,
    Estimate,
    GateResult,
    GateSpec,
    Measurement,
    Study,
    Verdict,
)

ArmValues = list[dict[str, dict[str, float]]]


def interval_decision(op: str, lo: float | None, hi: float | None, threshold: float) -> bool | None:
    """True when the whole interval is on the claimed side, False when wholly on the other, else None."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    if op == ">=":
        return True if lo >= threshold else (False if hi < threshold else None)
    if op == ">":
        return True if lo > threshold else (False if hi <= threshold else None)
    if op == "<=":
        return True if hi <= threshold else (False if lo > threshold else None)
    if op == "<":
        return True if hi < threshold else (False if lo >= threshold else None)
    raise ValueError(f"unknown comparison {op!r}")


def point_passes(op: str, value: float | None, threshold: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold, "<": value < threshold}[op]


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _stat(arms: dict[str, dict[str, float]], spec: CheckSpec, treatment: str) -> float | None:
    t = _num(arms.get(treatment, {}).get(spec.quantity))
    if spec.null is None or t is None:
        return t
    n = _num(arms.get(spec.null, {}).get(spec.quantity))
    if n is None:
        return None
    if spec.relation == "ratio":
        return t / n if n != 0 else None
    return t - n


def merge_arms(units: list[dict[str, Measurement]]) -> ArmValues:
    """Per seed ``{arm: values}``, inline nulls of the treatment's measurement included."""
    out: ArmValues = []
    for unit in units:
        arms = {arm: dict(m.values) for arm, m in unit.items()}
        for arm, m in unit.items():
            for null, vals in m.nulls.items():
                arms.setdefault(null if arm == TREATMENT else f"{arm}/{null}", dict(vals))
        out.append(arms)
    return out


def judge_check(
    spec: CheckSpec,
    threshold: float,
    arm_values: ArmValues,
    pooled: dict[str, Estimate],
    justification: str = "",
    treatment: str = TREATMENT,
) -> CheckResult:
    res = CheckResult(
        name=spec.name,
        quantity=spec.quantity,
        op=spec.op,
        threshold=threshold,
        justification=justification,
        relative_to=spec.null,
        relation=spec.relation if spec.null else None,
        label=spec.label,
    )
    key = spec.quantity if treatment == TREATMENT else f"{treatment}:{spec.quantity}"
    if key in pooled:
        est = pooled[key]
        res.per_seed, res.mean, res.ci_low, res.ci_high = list(est.per_seed), est.mean, est.ci_low, est.ci_high
        res.null_mean, res.note = est.null_mean, est.note
    else:
        per_seed = [_stat(a, spec, treatment) for a in arm_values]
        res.per_seed = per_seed
        res.mean, res.ci_low, res.ci_high = t_interval([v for v in per_seed if v is not None])
        res.mean = _num(res.mean)
        missing = sum(v is None for v in per_seed)
        if missing:
            res.note = f"{missing} of {len(per_seed)} seeds gave no finite value"
        if spec.null is not None:
            res.null_per_seed = [_num(a.get(spec.null, {}).get(spec.quantity)) for a in arm_values]
            res.null_mean = _num(t_interval([v for v in res.null_per_seed if v is not None])[0])
    res.passed = interval_decision(spec.op, res.ci_low, res.ci_high, threshold)
    for arm in spec.controls:
        if f"{arm}:{spec.quantity}" in pooled:  # a pooled control, with the interval the study computed
            est = pooled[f"{arm}:{spec.quantity}"]
            res.controls.append(
                ControlResult(
                    arm=arm,
                    per_seed=list(est.per_seed),
                    mean=est.mean,
                    ci_low=est.ci_low,
                    ci_high=est.ci_high,
                    passed=interval_decision(spec.op, est.ci_low, est.ci_high, threshold),
                )
            )
            continue
        per = [_stat(a, spec, arm) for a in arm_values]
        m, lo, hi = t_interval([v for v in per if v is not None])
        res.controls.append(
            ControlResult(
                arm=arm,
                per_seed=per,
                mean=_num(m),
                ci_low=lo,
                ci_high=hi,
                passed=interval_decision(spec.op, lo, hi, threshold),
            )
        )
    if spec.null is None and res.controls:
        res.null_mean = res.controls[0].mean
    return res


def judge_gate(spec: GateSpec, threshold: float, arm_values: ArmValues, pooled: dict[str, Estimate]) -> GateResult:
    key = spec.quantity if spec.arm == TREATMENT else f"{spec.arm}:{spec.quantity}"
    if key in pooled:
        per = [_num(pooled[key].mean)]
    else:
        per = [_num(a.get(spec.arm, {}).get(spec.quantity)) for a in arm_values]
    ok = bool(per) and all(point_passes(spec.op, v, threshold) for v in per)
    # the worst seed's value; unknown (None) when any seed gave no finite value
    known = [v for v in per if v is not None]
    if not per or len(known) < len(per):
        worst = None
    else:
        worst = min(known) if spec.op in (">=", ">") else max(known)
    return GateResult(
        name=spec.name,
        value=worst,
        op=spec.op,
        threshold=threshold,
        passed=ok,
        arm=spec.arm,
        why=spec.why,
        per_seed=per,
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def decide(checks: list[CheckResult], gates: list[GateResult], n_seeds: int) -> tuple[str, str, list[str]]:
    """(status, reason in words, defects)."""
    failed_gates = [g for g in gates if not g.passed]
    if failed_gates:
        words = "; ".join(
            f"{g.name} = {_fmt(g.value)} (worst seed) is not {g.op} {g.threshold:g}" + (f" ({g.why})" if g.why else "")
            for g in failed_gates
        )
        return "inconclusive", f"precondition failed: {words}", []
    defects = [
        f"null '{c.arm}' passes check {r.name} ({_fmt(c.mean)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] "
        f"{r.op} {r.threshold:g})"
        for r in checks
        for c in r.controls
        if c.passed
    ]
    if not checks:
        return "inconclusive", "the study judged no check", defects
    failed = [c for c in checks if c.passed is False]
    if failed:  # a claim that fails against a valid null fails, whatever a control does elsewhere
        why = "; ".join(
            f"{c.name}: {_fmt(c.mean)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] lies wholly outside {c.op} {c.threshold:g}"
            for c in failed
        )
        return "fails", why + ("; also a study defect: " + "; ".join(defects) if defects else ""), defects
    if defects:
        return "inconclusive", "study defect: " + "; ".join(defects), defects
    undecided = [c for c in checks if c.passed is None]
    if undecided:
        hint = " (one seed gives no interval: run with --seeds 2 or more)" if n_seeds < 2 else ""
        return (
            "inconclusive",
            "undecided: "
            + "; ".join(
                f"{c.name}: {_fmt(c.mean)} [{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] straddles {c.threshold:g}"
                for c in undecided
            )
            + hint,
            [],
        )
    return "holds", "every check's interval clears its threshold", []


def judge_units(
    study: Study, cfg, units: list[dict[str, Measurement]], seeds: list[int], treatment: str = TREATMENT
) -> Verdict:
    """The verdict of ``units`` (``units[i][arm]`` for ``seeds[i]``); ``treatment`` may name a null to
    re-judge the study with that null in the treatment's place (its pooled statistics are the study's
    ``"<arm>:<quantity>"`` estimates, when it provides them)."""
    thr = cfg.thresholds
    just = type(thr).justifications()
    arm_values = merge_arms(units)
    pooled = study.pool(cfg, units)
    checks = [
        judge_check(s, float(getattr(thr, s.threshold)), arm_values, pooled, just.get(s.threshold, ""), treatment)
        for s in study.checks(cfg)
    ]
    gates = [
        judge_gate(
            g if treatment == TREATMENT or g.arm != TREATMENT else _rearm(g, treatment),
            float(getattr(thr, g.threshold)),
            arm_values,
            pooled,
        )
        for g in study.preconditions(cfg)
    ]
    status, reason, defects = decide(checks, gates, len(seeds))
    measured = seed_means(arm_values)
    for k, est in pooled.items():
        measured[k] = est.mean  # "<arm>:<quantity>" keys read like the other null means
    tables: dict[str, list[dict[str, Any]]] = {}
    for s, unit in zip(seeds, units):
        m = unit.get(TREATMENT)
        for name, rows in m.tables.items() if m else []:
            tables.setdefault(name, []).extend({"seed": s, **r} for r in rows)
    return Verdict(
        study=study.id,
        claim=study.claim,
        status=status,
        reason=reason,
        summary=study.summarize(cfg, measured),
        measured=measured,
        checks=checks,
        preconditions=gates,
        nulls=dict(study.nulls),
        defects=defects,
        tables=tables,
        seeds=list(seeds),
        replication=study.replication,
    )


def _rearm(g: GateSpec, arm: str) -> GateSpec:
    return replace(g, arm=arm)


def seed_means(arm_values: ArmValues) -> dict[str, Any]:
    """Seed-mean of every finite number, treatment keys bare and null keys as ``arm:quantity``."""
    keys: dict[str, list[float]] = {}
    for arms in arm_values:
        for arm, vals in arms.items():
            for q, v in vals.items():
                x = _num(v)
                if x is not None:
                    keys.setdefault(q if arm == TREATMENT else f"{arm}:{q}", []).append(x)
    return {k: sum(v) / len(v) for k, v in keys.items()}


__all__ = ["decide", "interval_decision", "judge_check", "judge_gate", "judge_units", "merge_arms", "seed_means"]
