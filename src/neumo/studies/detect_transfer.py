"""S-detect-transfer: a threshold calibrated on one domain's human texts does not hold its FPR on others.

Setup: the Fast-DetectGPT pair files ``{domain}_{generator}`` (human text vs a generator's continuation of
the same ~30-token human prompt). Each text is scored once with the prompt as context and only its first
``n_tokens`` continuation tokens count (:mod:`neumo.detect.pairs`, the cut of ``neumo detect eval`` and
``calibrate``). Per file, the eligible pairs (>= ``n_tokens`` continuation tokens in both texts) are put in
one fixed random order; the first ``n_humans`` give the human texts, the first ``n_machines`` the machine
texts. Scores are computed once per run and cached in the run folder (``scores/``): seeds only re-split.

Seeds: seed s splits each file's human texts at random into a calibration half and a test half. A
*single-domain* threshold is fitted at ``target_fpr`` on one file's calibration half
(:func:`neumo.detect.evaluate.fit_threshold`, the rule of ``neumo detect calibrate``); a cell (calibrated on
A, tested on B) is its FPR on B's test half and its TPR on B's machine texts. The *multi-domain* threshold is
the max rule of ``neumo detect calibrate --rule max``: the largest of the single-domain thresholds of one
file per domain (``multi_generators``), tested on every domain's pooled test halves. The pooled rule
(``--rule pooled``: one threshold over those files' pooled calibration halves) is reported, not judged. Each seed bootstraps its own interval (resampling calibration humans, with the
threshold refitted, test humans and machine texts); the judged value is the seed mean, its interval the
seed mean of the per-seed intervals (seeds share texts, so their intervals are not narrowed as if
independent).

Nulls (inline): ``in_domain`` (the threshold tested on its own file's held-out humans: must be near the
target, the control of the off-domain check), ``shuffled_domains`` (human texts reassigned to files at
random before the split: off-domain is then in-domain) and ``single_domain`` (the worst domain of a
single-domain threshold: the control of the multi-domain check). Gates: the detector separates human from
machine in-domain (AUROC floor), enough calibration humans, and the in-domain FPR near its target.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.studies.base import CheckSpec, Estimate, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study

SID = "S-detect-transfer"
NULLS = ("in_domain", "shuffled_domains", "single_domain")
GENERATORS = ["gpt-neo-2.7B", "gpt2-xl", "opt-2.7b", "gpt-j-6B", "gpt-neox-20b"]
JUDGED = ("offdomain_fpr_ratio", "multidomain_worst_fpr_ratio")
GATED = ("in_domain_fpr_ratio", "auroc_mean", "cal_humans_min")


class DetectTransferThresholds(Thresholds):
    min_offdomain_ratio: float = Field(
        2.0,
        description="'far above its target' = off-domain FPR at least twice the target on average "
        "(in-domain is expected at (k+1)/(n+1) / target, about 1.1-1.2x, from the order statistic)",
    )
    max_multidomain_ratio: float = Field(
        2.0,
        description="'bounds it' = the multi-domain (max-rule) threshold keeps every domain's FPR under the "
        "line that 'far above' starts at (twice the target)",
    )
    min_auroc: float = Field(
        0.70,
        description="competence gate: mean in-domain AUROC of the detector >= 0.70, well above chance and "
        "below the 0.81-0.95 S-detect-real measured for logrank with SmolLM2 (specdetect, judged since the "
        "second look, measures higher: docs/studies/S-detect-transfer.md)",
    )
    min_cal_humans: float = Field(
        50, description="each calibration half holds >= 50 human texts, so a 5% threshold has >= 2 above it"
    )
    in_domain_ratio_max: float = Field(
        2.0, description="null must be near target: in-domain FPR at most twice the target, else inconclusive"
    )
    in_domain_ratio_min: float = Field(
        0.5, description="null must be near target: in-domain FPR at least half the target, else inconclusive"
    )


class DetectTransferConfig(StrictModel):
    model: str = "smollm2"
    precision: str | None = None  # None: what the CLI uses (bf16 for smollm2)
    data_dir: str | None = None  # None: the subsets shipped with neumo (gpt-neo-2.7B only); e.g. ../shared/data
    datasets: list[str] = ["xsum", "writing", "squad"]
    generators: list[str] = list(GENERATORS)
    multi_generators: list[str] = ["gpt-neo-2.7B"]  # the multi-domain threshold pools these files' halves
    detector: str = "specdetect"  # judged: smollm2's default detector (that of its shipped calibration)
    report_detectors: list[str] = ["logrank", "fast_detectgpt", "likelihood"]
    target_fpr: float = Field(0.05, gt=0, lt=1)
    report_fprs: list[float] = [0.01]  # further targets reported (not judged) for the judged detector
    n_humans: int = Field(160, ge=4)  # human texts per file (split in halves per seed)
    n_machines: int = Field(40, ge=2)  # machine texts per file (for TPR and AUROC)
    n_tokens: int = Field(64, ge=1, le=1024)  # continuation tokens per text
    n_boot: int = Field(1000, ge=100, le=100_000)
    thresholds: DetectTransferThresholds = DetectTransferThresholds()

    @model_validator(mode="after")
    def _names(self):
        from neumo.detect.registry import resolve

        resolve([self.detector, *self.report_detectors])
        if not all(0 < f < 1 for f in self.report_fprs):
            raise ValueError(f"report_fprs must be shares in (0, 1); got {self.report_fprs}")
        if len(set(self.datasets)) < 2:
            raise ValueError("datasets needs at least two domains (transfer is measured between them)")
        if not set(self.multi_generators) <= set(self.generators):
            raise ValueError(f"multi_generators {self.multi_generators} must be among generators {self.generators}")
        return self


@register_study
class DetectTransfer(Study):
    id = SID
    instrument = "detect"
    claim = (
        "A specdetect threshold calibrated at 5% FPR on one domain's human texts flags on average at least "
        "twice that share of human texts from other domains, while the largest of the domains' own 5% "
        "thresholds (the max rule) keeps every domain's FPR under twice the target."
    )
    citation = "Bao et al. 2024 (Fast-DetectGPT data, ICLR); Liang et al. 2023 (GPT detectors are biased, Patterns)"
    Config = DetectTransferConfig
    presets = {"quick": {"generators": ["gpt-neo-2.7B"], "n_humans": 120, "n_machines": 40}, "full": {}}
    nulls = {
        "in_domain": "the single-domain threshold tested on held-out humans of its own file (must stay near target)",
        "shuffled_domains": "human texts reassigned to files at random before the split (no domain left to shift)",
        "single_domain": "the worst domain of a single-domain threshold, in the multi-domain check's place",
    }
    replication = (
        "scoring is deterministic and done once per run; the seed splits each file's human texts into "
        "calibration and test halves (and draws the bootstrap and the shuffled-domains permutation)"
    )
    # measured: 167 s of CPU (OMP_NUM_THREADS=1, 3 seeds; the first seed scores, the rest re-split) at bf16 on
    # a CPU with native bf16; 1,632 s on an AVX2 CPU that emulates bf16 (where the faces now load fp32)
    quick_cost_s = 170.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "offdomain_fpr_ratio",
                "offdomain_fpr_ratio",
                ">=",
                "min_offdomain_ratio",
                controls=("in_domain", "shuffled_domains"),
                label=f"off-domain FPR / target of a single-domain {cfg.detector} threshold (mean over cells)",
            ),
            CheckSpec(
                "multidomain_worst_fpr_ratio",
                "multidomain_worst_fpr_ratio",
                "<=",
                "max_multidomain_ratio",
                controls=("single_domain",),
                label="worst domain's FPR / target of the multi-domain threshold (max rule)",
            ),
        ]

    def preconditions(self, cfg):
        why = "the in-domain FPR (the null) is near its target"
        return [
            GateSpec("auroc_mean", "auroc_mean", ">=", "min_auroc", why="the detector separates human and machine"),
            GateSpec("cal_humans_min", "cal_humans_min", ">=", "min_cal_humans", why="enough calibration humans"),
            GateSpec("in_domain_fpr_max", "in_domain_fpr_ratio", "<=", "in_domain_ratio_max", why=why),
            GateSpec("in_domain_fpr_min", "in_domain_fpr_ratio", ">=", "in_domain_ratio_min", why=why),
        ]

    def measure(self, cfg: DetectTransferConfig, ctx: StudyContext) -> Measurement:
        from neumo.detect.lm import face_precision, load_lm

        files, skipped = _files(cfg)
        lm = load_lm(cfg.model, precision=face_precision(cfg.model, cfg.precision))
        cache = Path(ctx.study_dir or ctx.run.dir) / "scores"
        data = {k: _file_scores(cfg, lm, p, cache) for k, p in files.items()}
        from neumo.studies.detect_transfer_stats import analyse

        return analyse(cfg, data, ctx, skipped)

    def pool(self, cfg: DetectTransferConfig, units) -> dict[str, Estimate]:
        """Seed mean of each judged and gated quantity, interval = seed mean of the per-seed bootstrap bounds."""
        out: dict[str, Estimate] = {}
        for arm in ("treatment", *NULLS):
            rows = []
            for unit in units:
                m = unit.get("treatment")
                if m is not None:
                    rows.append(m.values if arm == "treatment" else m.nulls.get(arm, {}))
            for q in (*JUDGED, *GATED):
                vals = [r[q] for r in rows if q in r]
                if not vals:
                    continue
                lo = [r.get(q + "_lo") for r in rows if q in r]
                hi = [r.get(q + "_hi") for r in rows if q in r]
                has_ci = all(x is not None for x in lo + hi)
                key = q if arm == "treatment" else f"{arm}:{q}"
                out[key] = Estimate(
                    float(np.mean(vals)),
                    float(np.mean(lo)) if has_ci else None,
                    float(np.mean(hi)) if has_ci else None,
                    per_seed=tuple(float(v) for v in vals),
                    note="seed mean; interval = seed mean of per-seed bootstrap intervals" if has_ci else "",
                )
        return out

    def summarize(self, cfg, m):
        def g(k, d=2):
            v = m.get(k)
            return "n/a" if v is None else f"{v:.{d}f}"

        t = cfg.target_fpr
        return (
            f"{cfg.model}, {cfg.detector} at {t:.0%} FPR, {cfg.n_tokens} tokens after the prompt: off-domain FPR "
            f"{g('offdomain_fpr_mean', 3)} ({g('offdomain_fpr_ratio')}x target; worst cell "
            f"{g('offdomain_fpr_worst', 3)}), in-domain {g('in_domain_fpr_mean', 3)}, other generator same domain "
            f"{g('cross_generator_fpr_mean', 3)}; multi-domain threshold: worst domain FPR "
            f"{g('multidomain_worst_fpr', 3)} ({g('multidomain_worst_fpr_ratio')}x), TPR "
            f"{g('multidomain_tpr_mean')} vs in-domain {g('in_domain_tpr_mean')}; pooled (not judged): worst "
            f"{g('pooled_worst_fpr', 3)} ({g('pooled_worst_fpr_ratio')}x), TPR {g('pooled_tpr_mean')}."
            + (
                f" {m['files_skipped']:.0f} files skipped (not shipped; give data_dir)."
                if m.get("files_skipped")
                else ""
            )
        )


# ---- data ------------------------------------------------------------------------------------------


def _files(cfg: DetectTransferConfig) -> tuple[dict[str, Path], list[str]]:
    """``{domain}_{generator}`` -> pair file; without ``data_dir`` the files neumo does not ship are skipped."""
    from neumo.detect.pairs import find_pair_file
    from neumo.errors import NeumoError

    files, skipped = {}, []
    for g in cfg.generators:
        for d in cfg.datasets:
            try:
                files[f"{d}_{g}"] = find_pair_file(cfg.data_dir, d, g)
            except NeumoError:
                if cfg.data_dir is not None:
                    raise
                skipped.append(f"{d}_{g}")
    doms = {k.split("_", 1)[0] for k in files}
    multi = [k for k in files if k.split("_", 1)[1] in cfg.multi_generators]
    if len(doms) < 2 or not multi:
        raise NeumoError(
            f"S-detect-transfer needs files of >= 2 domains and of multi_generators {cfg.multi_generators}; "
            f"skipped {skipped} (not shipped with neumo): give data_dir= a folder with detect/fast-detect-gpt"
        )
    return files, skipped


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _file_scores(cfg: DetectTransferConfig, lm, path: Path, cache: Path) -> dict:
    """Detector scores of the file's chosen human and machine texts (continuations only), cached per run."""
    from neumo.detect.pairs import encode_pairs, load_pairs
    from neumo.detect.registry import compute_scores
    from neumo.detect.score import score_ids
    from neumo.errors import NeumoError
    from neumo.runs.atomic import atomic_write_json
    from neumo.seeding import numpy_rng

    key = {
        "file": path.name,
        "sha256": _sha256(path),
        "model": lm.name,
        "precision": getattr(lm, "precision", "fp32"),
        "n_tokens": cfg.n_tokens,
        "n_humans": cfg.n_humans,
        "n_machines": cfg.n_machines,
        "detectors": sorted({cfg.detector, *cfg.report_detectors}),
    }
    cached = cache / (path.name.split(".raw_data")[0] + ".json")
    if cached.is_file():
        doc = json.loads(cached.read_text(encoding="utf-8"))
        if doc.get("key") == key:
            return doc
    enc = encode_pairs(lm, *load_pairs(path))
    eligible = [i for i, p in enumerate(enc) if p.continuation >= cfg.n_tokens]
    if len(eligible) < 4:
        raise NeumoError(
            f"{path.name}: {len(eligible)} pairs have {cfg.n_tokens} tokens after the prompt; lower n_tokens"
        )
    order = [int(i) for i in numpy_rng(0, SID, "order", path.name).permutation(eligible)]
    hum, mac = sorted(order[: cfg.n_humans]), sorted(order[: cfg.n_machines])
    shift = 0 if lm.bos_id is not None else 1
    seqs, pieces, cuts = [], [], []
    for i, side in [(i, "human") for i in hum] + [(i, "machine") for i in mac]:
        p = enc[i]
        ids, pc = (p.human, p.human_pieces) if side == "human" else (p.machine, p.machine_pieces)
        seqs.append(ids[: p.prompt + cfg.n_tokens])
        pieces.append(pc[: p.prompt + cfg.n_tokens])
        cuts.append(max(0, p.prompt - shift))
    stats = [s.tail(c) for s, c in zip(score_ids(lm, seqs, pieces=pieces), cuts)]
    names = key["detectors"]
    per = [compute_scores(s, names) for s in stats]
    h, m = per[: len(hum)], per[len(hum) :]
    doc = {
        "key": key,
        "human_pairs": hum,
        "machine_pairs": mac,
        "eligible": len(eligible),
        "prompt_mean": float(np.mean([enc[i].prompt for i in hum])),
        "scored_min": int(min(s.n for s in stats)),
        "human": {d: [float(r[d]) for r in h] for d in names},
        "machine": {d: [float(r[d]) for r in m] for d in names},
    }
    atomic_write_json(cached, doc)
    return doc


__all__ = ["DetectTransfer", "DetectTransferConfig", "GENERATORS"]
