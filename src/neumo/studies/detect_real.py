"""S-detect-real: one-pass detectors with SmolLM2 on the Fast-DetectGPT pairs, scored after the shared prompt.

Setup: the ``{dataset}_gpt-neo-2.7B`` pairs of Fast-DetectGPT (human text vs GPT-Neo-2.7B continuations of
the same ~30-token human prompt). Default data: the 200-pair-per-file subset shipped with neumo
(``neumo/detect/data/fast-detect-gpt``, MIT, provenance beside it); ``data_dir=../shared/data`` reads the
full files. Both texts of a pair share the prompt, so each text is scored with the prompt as context and
only its first ``n_tokens`` continuation tokens count (:mod:`neumo.detect.pairs`, the same cut as
``neumo detect eval``); pairs with fewer continuation tokens in either text are not drawn.

Seeds: the eligible pairs of each file are put in one random order (fixed per file); seed ``s`` scores block
``s`` of ``n_pairs`` pairs, so seeds 0..k score disjoint pairs. Scoring itself is deterministic. The judged
AUROC pools the distinct pairs of all seeds, with a 95% bootstrap interval over pairs (each pair resampled
whole: its two texts share the prompt); the per-seed AUROCs are reported beside it.

Nulls (inline, from the same scores): ``shuffled_labels`` swaps human and machine in a random half of the
pairs; ``human_halves`` feeds the detector human-vs-human pairs: the first half of each human continuation
as "human", its second half (more context, so lower surprisal) as "machine". Neither may pass a check.

Compared with the AUROCs the Fast-DetectGPT authors published for GPT-Neo-2.7B scoring its own text
(white-box); SmolLM2-135M is a different, smaller scoring model.

Presets. Both score 128 continuation tokens per text (+ ~32 prompt tokens of context); SmolLM2 scores about
180 tokens/s on one core. The full preset scores 5 seeds x 20 pairs per file on xsum and writing (100 pairs
per file, about 64k tokens, 346 s of CPU); the quick preset scores fewer pairs, 3 seeds x 16 per file (48
pooled, about 31k tokens, 176 s of CPU). ``--set 'datasets=[xsum,writing,squad]'`` adds squad.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from neumo.config import StrictModel
from neumo.studies.base import CheckSpec, Estimate, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study

# AUROC published by Bao et al. (2024) for GPT-Neo-2.7B as scoring (and source) model on the same files:
# the "roc_auc" field of exp_main/results/{dataset}_gpt-neo-2.7B.{logrank,sampling_discrepancy}.json in
# github.com/baoguangsheng/fast-detect-gpt (commit 7aeeb49), computed on all pairs of each file with full texts.
PUBLISHED_GPT_NEO = {
    ("xsum", "logrank"): 0.8949,
    ("xsum", "fast_detectgpt"): 0.9885,
    ("writing", "logrank"): 0.9675,
    ("writing", "fast_detectgpt"): 0.9980,
    ("squad", "logrank"): 0.9054,
    ("squad", "fast_detectgpt"): 0.9956,
}
PUBLISHED_SOURCE = "Bao et al. 2024 (ICLR), github.com/baoguangsheng/fast-detect-gpt exp_main/results @7aeeb49"
NULLS = ("shuffled_labels", "human_halves")


class DetectRealThresholds(Thresholds):
    min_auroc: float = Field(
        0.85,
        description="the claim's number: AUROC >= 0.85 (between chance and the "
        "0.89-1.00 published for GPT-Neo-2.7B scoring its own text)",
    )
    min_scored_tokens: float = Field(
        64,
        description="each text contributes at least 64 continuation tokens, "
        "twice its ~32-token shared prompt (the full preset scores 128)",
    )
    min_pairs: float = Field(
        40,
        description="at least 40 distinct pairs per file pooled over seeds: the 95% "
        "interval of an AUROC of 0.85 is then about +-0.09 (Hanley-McNeil)",
    )


class DetectRealConfig(StrictModel):
    model: str = "smollm2"
    data_dir: str | None = None  # None: the subset shipped with neumo; or e.g. ../shared/data
    generator: str = "gpt-neo-2.7B"
    datasets: list[str] = ["xsum", "writing"]
    n_pairs: int = Field(20, ge=1)  # pairs per file per seed
    # continuation tokens scored per text (after the shared prompt); the shipped continuations have < 1024
    n_tokens: int = Field(128, ge=1, le=1024)
    n_boot: int = Field(2000, ge=100)
    claim_detectors: list[str] = ["logrank", "fast_detectgpt"]
    claim_datasets: list[str] = ["xsum", "writing"]
    thresholds: DetectRealThresholds = DetectRealThresholds()


@register_study
class DetectReal(Study):
    id = "S-detect-real"
    instrument = "detect"
    claim = (
        "With SmolLM2-135M as scoring model, log-rank and Fast-DetectGPT reach AUROC >= 0.85 on the "
        "xsum and writing GPT-Neo-2.7B pairs of Fast-DetectGPT, scored on the continuation after the "
        "shared human prompt."
    )
    citation = "Bao et al. 2024 (Fast-DetectGPT, ICLR); Mitchell et al. 2023 (DetectGPT)"
    Config = DetectRealConfig
    presets = {"quick": {"n_pairs": 16}, "full": {}}
    nulls = {
        "shuffled_labels": "the same scores with human and machine swapped in a random half of the pairs",
        "human_halves": "human vs human: the first half of each human continuation labelled human, "
        "its second half (more context) labelled machine",
    }
    replication = (
        "scoring is deterministic; the seed picks which pairs are scored (seed s takes block s of a "
        "fixed random order of each file's eligible pairs, so seeds score disjoint pairs)"
    )
    quick_cost_s = 180.0  # measured: 176 s of CPU (OMP_NUM_THREADS=1), 3 seeds, nulls inline

    def checks(self, cfg):
        return [
            CheckSpec(
                f"auroc_{det}_{ds}",
                f"auroc_{det}_{ds}",
                ">=",
                "min_auroc",
                controls=NULLS,
                label=f"AUROC of {det} on {ds} (pooled pairs, bootstrap interval)",
            )
            for det in cfg.claim_detectors
            for ds in cfg.claim_datasets
        ]

    def preconditions(self, cfg):
        return [
            GateSpec(
                "scored_tokens_min",
                "scored_tokens_min",
                ">=",
                "min_scored_tokens",
                why="every scored text has enough continuation tokens",
            ),
            GateSpec(
                "pairs_pooled_min",
                "pairs_pooled_min",
                ">=",
                "min_pairs",
                why="enough distinct pairs per file to resolve the AUROC",
            ),
        ]

    def measure(self, cfg: DetectRealConfig, ctx: StudyContext) -> Measurement:
        from neumo.detect.lm import load_lm
        from neumo.detect.pairs import encode_pairs, find_pair_file, load_pairs, score_pairs
        from neumo.detect.registry import resolve

        unknown = sorted(set(cfg.claim_datasets) - set(cfg.datasets))
        if unknown:
            from neumo.errors import NeumoError

            raise NeumoError(f"claim_datasets {unknown} are not in datasets {cfg.datasets}; add them to datasets")
        files = {d: find_pair_file(cfg.data_dir, d, cfg.generator) for d in cfg.datasets}
        lm = load_lm(cfg.model)
        names = resolve(None)
        values: dict[str, float] = {}
        nulls: dict[str, dict[str, float]] = {n: {} for n in NULLS}
        rows, pair_rows, n_scored = [], [], []
        for d, path in files.items():
            enc = encode_pairs(lm, *load_pairs(path))
            chosen, eligible = _block(enc, cfg.n_tokens, cfg.n_pairs, ctx.seed, path.name)
            scored = score_pairs(lm, [enc[i] for i in chosen], max_tokens=cfg.n_tokens)
            n_scored += [s.n for p in scored for s in (p.human, p.machine)]
            sc = _scores(scored, names, cfg.n_tokens)
            flip = _rng(ctx.seed, "shuffled_labels", d).random(len(chosen)) < 0.5
            for det in names:
                h, m = sc["human"][det], sc["machine"][det]
                r = _metrics(h, m)
                shuf = _metrics(np.where(flip, m, h), np.where(flip, h, m))
                halves = _metrics(sc["first_half"][det], sc["second_half"][det])
                full = _metrics(sc["human_full"][det], sc["machine_full"][det])
                values[f"auroc_{det}_{d}"], values[f"tpr1_{det}_{d}"] = r["auroc"], r["tpr_at_1fpr"]
                values[f"auroc_with_prompt_{det}_{d}"] = full["auroc"]
                values[f"tpr1_with_prompt_{det}_{d}"] = full["tpr_at_1fpr"]
                for arm, res in (("shuffled_labels", shuf), ("human_halves", halves)):
                    nulls[arm][f"auroc_{det}_{d}"] = res["auroc"]
                    nulls[arm][f"tpr1_{det}_{d}"] = res["tpr_at_1fpr"]
                rows.append(
                    {
                        "dataset": d,
                        "detector": det,
                        "n_tokens": cfg.n_tokens,
                        "auroc": r["auroc"],
                        "tpr_at_1fpr": r["tpr_at_1fpr"],
                        "auroc_with_prompt": full["auroc"],
                        "tpr_with_prompt": full["tpr_at_1fpr"],
                        "null_shuffled": shuf["auroc"],
                        "tpr_null_shuffled": shuf["tpr_at_1fpr"],
                        "null_halves": halves["auroc"],
                        "tpr_null_halves": halves["tpr_at_1fpr"],
                        "published_gpt_neo_2.7B": PUBLISHED_GPT_NEO.get((d, det)),
                    }
                )
            values[f"prompt_tokens_mean_{d}"] = float(np.mean([p.prompt for p in scored]))
            values[f"eligible_pairs_{d}"] = float(eligible)
            values[f"pairs_{d}"] = float(len(chosen))
            for j, i in enumerate(chosen):
                pair_rows.append(
                    {
                        "dataset": d,
                        "pair": int(i),
                        **{f"h_{det}": float(sc["human"][det][j]) for det in names},
                        **{f"m_{det}": float(sc["machine"][det][j]) for det in names},
                    }
                )
        values["scored_tokens_min"] = float(min(n_scored))
        values["scored_tokens_max"] = float(max(n_scored))
        values["n_tokens"] = float(cfg.n_tokens)
        values["pairs_pooled_min"] = float(min(values[f"pairs_{d}"] for d in files))
        for n in NULLS:  # a null in the treatment's place sees the same gates
            nulls[n].update(
                scored_tokens_min=values["scored_tokens_min"],
                pairs_pooled_min=values["pairs_pooled_min"],
                n_tokens=values["n_tokens"],
            )
        if ctx.keep_figures:
            ctx.save_figure("auroc_by_detector", _figure(rows, list(files), names, ctx.seed))
        return Measurement(values=values, nulls=nulls, tables={"detectors": _rounded(rows), "pair_scores": pair_rows})

    def pool(self, cfg: DetectRealConfig, units) -> dict[str, Estimate]:
        """AUROC over the distinct pairs of all seeds, 95% percentile bootstrap over pairs."""
        pairs: dict[tuple[str, int], dict] = {}
        per_seed: dict[str, list[float]] = {}
        null_seed: dict[str, list[float]] = {}
        for unit in units:
            m = unit.get("treatment")
            if m is None:
                continue
            for r in m.tables.get("pair_scores", []):
                pairs.setdefault((r["dataset"], int(r["pair"])), r)
            for k, v in m.values.items():
                if k.startswith("auroc_") and not k.startswith("auroc_with_prompt_"):  # judged AUROCs
                    per_seed.setdefault(k, []).append(v)
                    null_seed.setdefault(k, []).append(m.nulls.get("shuffled_labels", {}).get(k, np.nan))
        out: dict[str, Estimate] = {}
        counts = []
        for d in cfg.datasets:
            rows = [r for (ds, _), r in sorted(pairs.items()) if ds == d]
            counts.append(len(rows))
            if len(rows) < 2:
                continue
            for det in [k[2:] for k in rows[0] if k.startswith("h_")]:
                h = np.array([r[f"h_{det}"] for r in rows])
                mm = np.array([r[f"m_{det}"] for r in rows])
                a, lo, hi = pair_bootstrap_auroc(h, mm, cfg.n_boot, seed=0)
                key = f"auroc_{det}_{d}"
                out[key] = Estimate(
                    a,
                    lo,
                    hi,
                    per_seed=tuple(per_seed.get(key, ())),
                    null_mean=float(np.nanmean(null_seed[key])) if null_seed.get(key) else None,
                    note=f"{len(rows)} distinct pairs pooled over seeds; bootstrap over pairs",
                )
                out[f"tpr1_pooled_{det}_{d}"] = Estimate(_metrics(h, mm)["tpr_at_1fpr"], None, None)
        if counts:
            out["pairs_pooled_min"] = Estimate(float(min(counts)), None, None)
        return out

    def summarize(self, cfg, m):
        parts = []
        for d in cfg.datasets:
            for det in cfg.claim_detectors:
                a, w = m.get(f"auroc_{det}_{d}"), m.get(f"auroc_with_prompt_{det}_{d}")
                t = m.get(f"tpr1_pooled_{det}_{d}", m.get(f"tpr1_{det}_{d}"))
                if a is None:
                    continue
                pub = PUBLISHED_GPT_NEO.get((d, det))
                tw = m.get(f"tpr1_with_prompt_{det}_{d}")
                parts.append(
                    f"{d}/{det} {a:.3f} (TPR@1%FPR {_f(t, 2)}; prompt scored too {_f(w)}, TPR@1%FPR "
                    f"{_f(tw, 2)}" + (f"; published {pub:.3f})" if pub else ")")
                )
        n = m.get("pairs_pooled_min", float("nan"))
        return (
            f"{cfg.model}, {n:.0f} pairs per file pooled over seeds, {cfg.n_tokens} tokens after the shared "
            f"prompt: " + "; ".join(parts) + f". Published: GPT-Neo-2.7B scoring its own text, all pairs, "
            f"full texts ({PUBLISHED_SOURCE})."
        )


# ---- helpers ---------------------------------------------------------------------------------------


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _rng(seed: int, *names):
    from neumo.seeding import numpy_rng

    return numpy_rng(seed, "S-detect-real", *names)


def _block(enc, n_tokens: int, n_pairs: int, seed: int, file_name: str) -> tuple[list[int], int]:
    """Pairs of block ``seed`` of a fixed random order of the eligible pairs (>= n_tokens continuation
    tokens in both texts); blocks wrap around when the seeds outrun the file."""
    eligible = [i for i, p in enumerate(enc) if p.continuation >= n_tokens]
    if not eligible:
        from neumo.errors import NeumoError

        raise NeumoError(f"{file_name}: no pair has {n_tokens} tokens after its prompt in both texts; lower n_tokens")
    order = _rng(0, "order", file_name).permutation(eligible)
    k = min(n_pairs, len(order))
    start = (seed * k) % len(order)
    return sorted(int(order[(start + j) % len(order)]) for j in range(k)), len(eligible)


def _scores(scored, names, n_tokens: int) -> dict[str, dict[str, np.ndarray]]:
    from neumo.detect.pairs import span
    from neumo.detect.registry import compute_scores

    half = n_tokens // 2
    parts = {
        "human": [p.human for p in scored],
        "machine": [p.machine for p in scored],
        "human_full": [p.human_full for p in scored],
        "machine_full": [p.machine_full for p in scored],
        "first_half": [span(p.human, 0, half) for p in scored],
        "second_half": [span(p.human, half, None) for p in scored],
    }
    out = {}
    for k, stats in parts.items():
        per = [compute_scores(s, names) for s in stats]
        out[k] = {det: np.array([p[det] for p in per]) for det in names}
    return out


def _metrics(h, m) -> dict[str, float]:
    from neumo.detect.evaluate import auroc, tpr_at_fpr

    s = np.r_[np.asarray(h, float), np.asarray(m, float)]
    y = np.r_[np.zeros(len(h)), np.ones(len(m))]
    return {"auroc": auroc(s, y), "tpr_at_1fpr": tpr_at_fpr(s, y, 0.01)}


def pair_bootstrap_auroc(h, m, n_boot: int, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC of human scores ``h`` vs machine scores ``m`` (aligned pairs) and its percentile bootstrap
    interval over pairs (a pair's two texts are resampled together)."""
    h, m = np.asarray(h, float), np.asarray(m, float)
    rng = _rng(seed, "pair_bootstrap")
    idx = rng.integers(0, len(h), size=(int(n_boot), len(h)))
    boots = np.array([_fast_auroc(h[i], m[i]) for i in idx])
    a = (1 - level) / 2
    return _fast_auroc(h, m), float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def _fast_auroc(h: np.ndarray, m: np.ndarray) -> float:
    """P(machine > human) + 0.5 P(tie) over all human-machine combinations."""
    diff = m[:, None] - h[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _rounded(rows):
    return [{k: (round(x, 4) if isinstance(x, float) else x) for k, x in r.items()} for r in rows]


def _figure(rows, datasets, dets, seed):
    from neumo.report.figures import heatmap

    m = [[next(r["auroc"] for r in rows if r["dataset"] == d and r["detector"] == k) for k in dets] for d in datasets]
    fig, _ = heatmap(
        m,
        row_labels=datasets,
        col_labels=dets,
        cbar_label="AUROC",
        title=f"AUROC after the shared prompt, seed {seed}'s pairs",
    )
    return fig


__all__ = ["DetectReal", "DetectRealConfig", "PUBLISHED_GPT_NEO", "pair_bootstrap_auroc"]
