"""S-detect-transfer, one seed: split the cached scores, fit thresholds, fill the transfer cells, bootstrap.

Cells are keyed by file (``{domain}_{generator}``): ``in_domain`` (A = B), ``cross_generator`` (same
domain, other generator: other human texts of the same kind), ``off_domain`` (another domain). Every
statistic is computed on ``n_boot`` bootstrap replicates at once (:mod:`neumo.detect.transfer`; replicate 0
is the unresampled data, the point value).
"""

from __future__ import annotations

import numpy as np

from neumo.detect.transfer import percentile_interval, rate_at, resample, thresholds
from neumo.seeding import numpy_rng
from neumo.studies.base import Measurement, StudyContext

SID = "S-detect-transfer"


def domain(key: str) -> str:
    return key.split("_", 1)[0]


def kind(a: str, b: str) -> str:
    if a == b:
        return "in_domain"
    return "cross_generator" if domain(a) == domain(b) else "off_domain"


def split_halves(seed: int, keys: list[str], sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per file, (calibration, test) indices of its human texts: a random half each (seed-specific)."""
    out = {}
    for k in keys:
        idx = numpy_rng(seed, SID, "split", k).permutation(sizes[k])
        h = sizes[k] // 2
        out[k] = (np.sort(idx[:h]), np.sort(idx[h:]))
    return out


def shuffle_domains(seed: int, human: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same human scores reassigned to files at random (sizes kept): domains no longer differ."""
    keys = list(human)
    pooled = np.concatenate([human[k] for k in keys])
    perm = numpy_rng(seed, SID, "shuffled_domains").permutation(len(pooled))
    out, start = {}, 0
    for k in keys:
        out[k] = pooled[perm[start : start + len(human[k])]]
        start += len(human[k])
    return out


def transfer(human, machine, halves, multi, target_fpr, n_boot, rng) -> dict[str, np.ndarray]:
    """Bootstrap replicates ``(n_boot,)`` of every cell and summary of one detector at one target FPR.

    ``human`` / ``machine``: file -> scores; ``halves``: file -> (cal, test) indices; ``multi``: the files
    the multi-domain threshold is fitted on. ``multi`` (judged) is the max rule of ``neumo detect calibrate
    --rule max``: in each replicate the largest of those files' own thresholds; ``pooled`` (reported) is
    ``--rule pooled``: one threshold over their pooled calibration halves."""
    keys = list(human)
    cal = {k: resample(human[k][halves[k][0]], n_boot, rng) for k in keys}
    test = {k: resample(human[k][halves[k][1]], n_boot, rng) for k in keys}
    mac = {k: resample(machine[k], n_boot, rng) for k in keys}
    thr = {k: thresholds(cal[k], target_fpr) for k in keys}
    doms = sorted({domain(k) for k in keys})
    test_dom = {d: np.concatenate([test[k] for k in keys if domain(k) == d], axis=1) for d in doms}
    r: dict[str, np.ndarray] = {}
    for a in keys:
        r[f"thr|{a}"] = thr[a]
        for b in keys:
            r[f"fpr|{a}|{b}"] = rate_at(thr[a], test[b])
            r[f"tpr|{a}|{b}"] = rate_at(thr[a], mac[b])
        for d in doms:
            r[f"fpr_dom|{a}|{d}"] = rate_at(thr[a], test_dom[d])
    # judged: the max rule (per replicate, the largest of the multi files' own thresholds); reported: the
    # pooled rule (one threshold over their pooled calibration halves)
    r["thr|multi"] = np.max([thr[k] for k in multi], axis=0)
    r["thr|pooled"] = thresholds(np.concatenate([cal[k] for k in multi], axis=1), target_fpr)
    for rule in ("multi", "pooled"):
        t_rule = r[f"thr|{rule}"]
        for b in keys:
            r[f"fpr|{rule}|{b}"] = rate_at(t_rule, test[b])
            r[f"tpr|{rule}|{b}"] = rate_at(t_rule, mac[b])
        for d in doms:
            r[f"fpr_dom|{rule}|{d}"] = rate_at(t_rule, test_dom[d])

    def mean_over(what, pick):
        cells = [r[f"{what}|{a}|{b}"] for a in keys for b in keys if pick(a, b)]
        return np.mean(cells, axis=0) if cells else None

    for kd in ("in_domain", "cross_generator", "off_domain"):
        for what in ("fpr", "tpr"):
            v = mean_over(what, lambda a, b, kd=kd: kind(a, b) == kd)
            if v is not None:
                r[f"{kd}_{what}_mean"] = v
    off = [r[f"fpr|{a}|{b}"] for a in keys for b in keys if kind(a, b) == "off_domain"]
    r["offdomain_fpr_worst"] = np.max(off, axis=0)
    r["multidomain_worst_fpr"] = np.max([r[f"fpr_dom|multi|{d}"] for d in doms], axis=0)
    r["multidomain_tpr_mean"] = np.mean([r[f"tpr|multi|{b}"] for b in keys], axis=0)
    r["pooled_worst_fpr"] = np.max([r[f"fpr_dom|pooled|{d}"] for d in doms], axis=0)
    r["pooled_tpr_mean"] = np.mean([r[f"tpr|pooled|{b}"] for b in keys], axis=0)
    # a single-domain threshold's worst domain, averaged over the files it could be calibrated on
    r["single_worst_fpr"] = np.mean([np.max([r[f"fpr_dom|{a}|{d}"] for d in doms], axis=0) for a in keys], axis=0)
    return r


def _ci(reps) -> tuple[float, float, float]:
    lo, hi = percentile_interval(reps)
    return float(reps[0]), lo, hi


def _put(out: dict, name: str, reps) -> None:
    out[name], out[name + "_lo"], out[name + "_hi"] = _ci(reps)


def analyse(cfg, data: dict[str, dict], ctx: StudyContext, skipped: list[str]) -> Measurement:
    """One seed's measurement of S-detect-transfer from the cached scores ``data`` (file -> scores doc)."""
    from neumo.detect.evaluate import auroc

    keys = list(data)
    multi = [k for k in keys if k.split("_", 1)[1] in cfg.multi_generators]
    sizes = {k: len(data[k]["human"][cfg.detector]) for k in keys}
    halves = split_halves(ctx.seed, keys, sizes)
    t = cfg.target_fpr
    values: dict[str, float] = {}
    nulls: dict[str, dict[str, float]] = {n: {} for n in ("in_domain", "shuffled_domains", "single_domain")}
    judged = None
    for det in dict.fromkeys([cfg.detector, *cfg.report_detectors]):
        h = {k: np.asarray(data[k]["human"][det]) for k in keys}
        m = {k: np.asarray(data[k]["machine"][det]) for k in keys}
        sfx = "" if det == cfg.detector else f"_{det}"
        rng = numpy_rng(ctx.seed, SID, "bootstrap", det)
        r = transfer(h, m, halves, multi, t, cfg.n_boot, rng)
        s = transfer(shuffle_domains(ctx.seed, h), m, halves, multi, t, cfg.n_boot, rng)
        aurocs = {k: auroc(np.r_[h[k], m[k]], np.r_[np.zeros(len(h[k])), np.ones(len(m[k]))]) for k in keys}
        values[f"auroc_mean{sfx}"] = float(np.mean(list(aurocs.values())))
        _put(values, f"offdomain_fpr_ratio{sfx}", r["off_domain_fpr_mean"] / t)
        _put(values, f"multidomain_worst_fpr_ratio{sfx}", r["multidomain_worst_fpr"] / t)
        _put(values, f"in_domain_fpr_ratio{sfx}", r["in_domain_fpr_mean"] / t)
        _put(values, f"pooled_worst_fpr_ratio{sfx}", r["pooled_worst_fpr"] / t)  # reported, not judged
        for q in (
            "off_domain_fpr_mean",
            "offdomain_fpr_worst",
            "in_domain_fpr_mean",
            "cross_generator_fpr_mean",
            "multidomain_worst_fpr",
            "in_domain_tpr_mean",
            "off_domain_tpr_mean",
            "cross_generator_tpr_mean",
            "multidomain_tpr_mean",
            "single_worst_fpr",
            "pooled_worst_fpr",
            "pooled_tpr_mean",
        ):
            if q in r:
                values[q.replace("off_domain", "offdomain") + sfx] = float(r[q][0])
        if det == cfg.detector:
            judged = (r, s, aurocs)
            for k, a in aurocs.items():
                values[f"auroc_{k}"] = float(a)
            _put(nulls["in_domain"], "offdomain_fpr_ratio", r["in_domain_fpr_mean"] / t)
            _put(nulls["shuffled_domains"], "offdomain_fpr_ratio", s["off_domain_fpr_mean"] / t)
            _put(nulls["single_domain"], "multidomain_worst_fpr_ratio", r["single_worst_fpr"] / t)
            _put(nulls["shuffled_domains"], "multidomain_worst_fpr_ratio", s["multidomain_worst_fpr"] / t)
            for d in sorted({domain(k) for k in keys}):
                values[f"multidomain_fpr_{d}"] = float(r[f"fpr_dom|multi|{d}"][0])
                values[f"pooled_fpr_{d}"] = float(r[f"fpr_dom|pooled|{d}"][0])
            for extra in cfg.report_fprs:
                x = transfer(h, m, halves, multi, extra, cfg.n_boot, numpy_rng(ctx.seed, SID, "at", extra))
                tag = f"_at{extra * 100:g}pct"
                _put(values, "offdomain_fpr_ratio" + tag, x["off_domain_fpr_mean"] / extra)
                _put(values, "in_domain_fpr_ratio" + tag, x["in_domain_fpr_mean"] / extra)
                _put(values, "multidomain_worst_fpr_ratio" + tag, x["multidomain_worst_fpr"] / extra)
    assert judged is not None
    r, _, aurocs = judged
    values["cal_humans_min"] = float(min(len(halves[k][0]) for k in keys))
    values["files"], values["files_skipped"] = float(len(keys)), float(len(skipped))
    values["n_tokens"] = float(cfg.n_tokens)
    values["scored_tokens_min"] = float(min(data[k]["scored_min"] for k in keys))
    values["prompt_tokens_mean"] = float(np.mean([data[k]["prompt_mean"] for k in keys]))
    gated = ("auroc_mean", "cal_humans_min", "in_domain_fpr_ratio", "in_domain_fpr_ratio_lo", "in_domain_fpr_ratio_hi")
    for n in nulls:  # a null in the treatment's place sees the same gates
        nulls[n].update({q: values[q] for q in gated})
    cells = _cells(r, keys, multi, aurocs, data, cfg.detector)
    if ctx.keep_figures:
        ctx.save_figure("fpr_transfer", _figure(r, keys, t, ctx.seed, cfg.detector))
    tables = {
        "cells": cells,
        "files": [{"file": k, "skipped": True} for k in skipped] + _file_rows(data, halves, aurocs),
    }
    return Measurement(values=values, nulls=nulls, tables=tables)


def _cells(r, keys, multi, aurocs, data, det) -> list[dict]:
    rows = []
    names = {"multi": "multi-domain (max rule)", "pooled": "multi-domain (pooled, not judged)"}
    kinds = {"multi": "multi_domain", "pooled": "pooled"}
    for a in [*keys, "multi", "pooled"]:
        for b in keys:
            f, tp = _ci(r[f"fpr|{a}|{b}"]), _ci(r[f"tpr|{a}|{b}"])
            rows.append(
                {
                    "detector": det,
                    "calibrated_on": names.get(a, a),
                    "tested_on": b,
                    "kind": kinds.get(a) or kind(a, b),
                    "threshold": round(float(r[f"thr|{a}"][0]), 4),
                    "fpr": round(f[0], 4),
                    "fpr_lo": round(f[1], 4),
                    "fpr_hi": round(f[2], 4),
                    "tpr": round(tp[0], 4),
                    "tpr_lo": round(tp[1], 4),
                    "tpr_hi": round(tp[2], 4),
                }
            )
    return rows


def _file_rows(data, halves, aurocs) -> list[dict]:
    return [
        {
            "file": k,
            "eligible_pairs": d["eligible"],
            "humans_cal": len(halves[k][0]),
            "humans_test": len(halves[k][1]),
            "machines": len(next(iter(d["machine"].values()))),
            "prompt_tokens_mean": round(d["prompt_mean"], 1),
            "auroc": round(float(aurocs[k]), 4),
        }
        for k, d in data.items()
    ]


def _figure(r, keys, target, seed, det):
    from neumo.report.figures import heatmap

    rows = [*keys, "multi", "pooled"]
    mat = [[float(r[f"fpr|{a}|{b}"][0]) for b in keys] for a in rows]
    fig, _ = heatmap(
        mat,
        row_labels=[*keys, "multi-domain (max)", "pooled (not judged)"],
        col_labels=keys,
        cbar_label="FPR on held-out humans",
        title=f"{det} at {target:.0%} FPR: calibrated on (rows), tested on (cols), seed {seed}",
        figsize=(6, 2 + 0.25 * len(rows)),
    )
    return fig


__all__ = ["analyse", "shuffle_domains", "split_halves", "transfer"]
