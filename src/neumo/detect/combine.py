"""A supervised combiner of one-pass detectors: logistic regression over standardised detector scores of one
or two scoring models, saved with its provenance and always evaluated on groups it was not trained on.

Features: the one-pass detector scores of :mod:`neumo.detect.registry` for each scoring model, named
``{model}:{detector}``; a text's features come from one forward pass per model (pair files: the shared prompt
cut as ``neumo detect eval`` does, :func:`file_stats`). The fit is scikit-learn's
``StandardScaler`` then ``LogisticRegression`` (L2, ``C``, lbfgs); :func:`decision` re-computes its decision
function from the saved numbers alone (no pickle).

Transfer (:func:`leave_one_group_out`): for each value of a grouping (the generator or the domain of a file,
from its name ``{domain}_{generator}.raw_data.json[.gz]``, or labels given per file), the combiner is fitted
on the other groups and tested on the held-out one, beside the single detector with the best AUROC on the
training groups. A combiner that only wins in-sample does not transfer; neumo's default stays a single
detector (docs/detect.md, "A supervised combiner").
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from neumo.bounded import read_limited
from neumo.config import StrictModel
from neumo.errors import NeumoError

FORMAT = "neumo-detect-combiner"
_NAME = re.compile(r"^(?P<domain>[^_]+)_(?P<generator>.+?)\.raw_data\.json(\.gz)?$")
MAX_COMBINER_BYTES = 1 << 20


class Scaler(StrictModel):
    mean: list[float]
    scale: list[float]


class ScoringModel(StrictModel):
    name: str
    precision: str


class TrainingFile(StrictModel):
    file: str
    sha256: str
    bytes: int
    groups: dict[str, str]  # grouping -> this file's group (generator, domain, or group)
    n_human: int
    n_machine: int


class HeldOut(StrictModel):
    """One held-out group: the combiner fitted on the other groups vs the single detector best on them."""

    grouping: str
    held_out: str
    n_train: int
    n_test: int
    combiner_auroc: float
    combiner_tpr_at_1fpr: float
    best_single: str
    single_auroc: float
    single_tpr_at_1fpr: float
    # combiner AUROC - single AUROC on the held-out texts and its paired bootstrap interval (None in files
    # fitted before it was recorded)
    auroc_gain: float | None = None
    auroc_gain_lo: float | None = None
    auroc_gain_hi: float | None = None


class Combiner(StrictModel):
    format: Literal["neumo-detect-combiner"] = "neumo-detect-combiner"
    features: list[str]
    models: list[ScoringModel]
    max_tokens: int | None
    limit: int | None = None
    C: float = Field(gt=0)
    coef: list[float]
    intercept: float
    scaler: Scaler
    training_files: list[TrainingFile]
    n: int
    n_human: int
    n_machine: int
    train_auroc: float
    evaluation: list[HeldOut]
    fitted_at: str
    neumo_version: str

    def decision(self, X) -> np.ndarray:
        return decision(self, X)


# ---- the fit --------------------------------------------------------------------------------------------


def fit_logistic(X, y, C: float = 1.0) -> tuple[Scaler, list[float], float]:
    """StandardScaler + LogisticRegression(C) on ``X`` (n, f) and labels ``y`` (1 = machine)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = np.asarray(X, np.float64), np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise NeumoError("the combiner needs human (0) and machine (1) texts to fit; the training set has one class")
    sc = StandardScaler().fit(X)
    lr = LogisticRegression(C=C, max_iter=1000).fit(sc.transform(X), y)
    return Scaler(mean=sc.mean_.tolist(), scale=sc.scale_.tolist()), lr.coef_[0].tolist(), float(lr.intercept_[0])


def decision(comb: Combiner, X) -> np.ndarray:
    """The log-odds of "machine" for each row of ``X`` (features in ``comb.features`` order)."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or X.shape[1] != len(comb.features):
        raise NeumoError(f"the combiner takes {len(comb.features)} features ({', '.join(comb.features)})")
    z = (X - np.asarray(comb.scaler.mean)) / np.asarray(comb.scaler.scale)
    return z @ np.asarray(comb.coef) + comb.intercept


def _decide_with(scaler: Scaler, coef: list[float], intercept: float, X) -> np.ndarray:
    return ((np.asarray(X) - np.asarray(scaler.mean)) / np.asarray(scaler.scale)) @ np.asarray(coef) + intercept


# ---- groups and transfer --------------------------------------------------------------------------------


def groups_from_name(path: str | Path) -> dict[str, str] | None:
    """``{"domain": ..., "generator": ...}`` of a file named ``{domain}_{generator}.raw_data.json[.gz]``."""
    m = _NAME.match(Path(path).name)
    return {"domain": m["domain"], "generator": m["generator"]} if m else None


def file_groups(paths: list[Path], labels: list[str] | None) -> list[dict[str, str]]:
    """Each file's groups: ``labels`` (one per file, grouping ``group``) or its name's domain and generator."""
    if labels:
        if len(labels) != len(paths):
            raise NeumoError(f"--group is given {len(labels)} times for {len(paths)} files; give one label per file")
        if any(not g.strip() for g in labels):
            raise NeumoError("--group labels must not be empty")
        return [{"group": g} for g in labels]
    out = []
    for p in paths:
        g = groups_from_name(p)
        if g is None:
            raise NeumoError(
                f"cannot tell the generator or domain of {Path(p).name} from its name "
                "({domain}_{generator}.raw_data.json[.gz]); give --group LABEL once per file"
            )
        out.append(g)
    return out


def groupings(groups: list[dict[str, str]]) -> list[str]:
    """The groupings with at least two distinct groups (those a held-out evaluation can use)."""
    keys = list(dict.fromkeys(k for g in groups for k in g))
    return [k for k in keys if len({g[k] for g in groups}) >= 2]


def check_groups(paths: list[Path], groups: list[dict[str, str]], counts: list[tuple[int, int]]) -> None:
    """Every group of every usable grouping holds human and machine texts (else it cannot be held out)."""
    for grouping in groupings(groups):
        for g in dict.fromkeys(x[grouping] for x in groups):
            idx = [i for i, x in enumerate(groups) if x[grouping] == g]
            h, m = sum(counts[i][0] for i in idx), sum(counts[i][1] for i in idx)
            if not h or not m:
                names = ", ".join(Path(paths[i]).name for i in idx)
                raise NeumoError(
                    f"{grouping} {g!r} ({names}) holds {h} human and {m} machine texts; every group needs both "
                    "to be held out"
                )


def best_single(X, y, names: list[str]) -> int:
    """Index of the feature with the highest AUROC on (X, y) (higher = more machine-like, as every detector)."""
    from neumo.detect.evaluate import auroc

    return int(np.argmax([auroc(X[:, j], y) for j in range(X.shape[1])]))


def paired_auroc_gain(a, b, y, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """AUROC(a) - AUROC(b) on the same texts (labels ``y``, 1 = machine) and its percentile interval over
    stratified bootstrap resamples of the texts, both scores resampled together (a paired comparison)."""
    from neumo.seeding import numpy_rng

    a, b, y = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(y).astype(int)
    i1, i0 = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(i1) or not len(i0):
        raise NeumoError("an AUROC gain needs both human (label 0) and machine (label 1) texts")

    def gains(r1: np.ndarray, r0: np.ndarray) -> np.ndarray:  # (B, n1), (B, n0) indices -> (B,)
        from scipy.stats import rankdata

        n1, n0 = r1.shape[1], r0.shape[1]
        out = []
        for v in (a, b):  # Mann-Whitney per resample: average ranks handle ties, O(n log n) memory O(B n)
            r = rankdata(np.concatenate([v[r1], v[r0]], axis=1), axis=1)
            out.append((r[:, :n1].sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0))
        return out[0] - out[1]

    point = float(gains(i1[None, :], i0[None, :])[0])
    if n_boot == 0:
        return point, float("nan"), float("nan")
    rng = numpy_rng(seed, "auroc_gain")
    reps = []
    for start in range(0, n_boot, 100):  # chunks bound the (B, n1, n0) comparison arrays
        k = min(100, n_boot - start)
        reps.append(gains(rng.choice(i1, (k, len(i1))), rng.choice(i0, (k, len(i0)))))
    r = np.concatenate(reps)
    q = (1 - level) / 2
    return point, float(np.quantile(r, q)), float(np.quantile(r, 1 - q))


def leave_one_group_out(
    X, y, text_groups: list[dict[str, str]], names: list[str], C: float = 1.0, n_boot: int = 1000
) -> list[HeldOut]:
    """Per grouping and held-out group: the combiner and the best single detector, both chosen on the other
    groups only, scored on the held-out group (AUROC, TPR at 1% FPR, and the paired bootstrap interval of the
    AUROC gain over ``n_boot`` resamples of the held-out texts). ``text_groups[i]`` is text i's groups."""
    from neumo.detect.evaluate import auroc, tpr_at_fpr

    X, y = np.asarray(X, np.float64), np.asarray(y).astype(int)
    rows = []
    for grouping in groupings(text_groups):
        lab = np.array([g[grouping] for g in text_groups])
        for held in dict.fromkeys(lab.tolist()):
            test, train = lab == held, lab != held
            if len(np.unique(y[test])) < 2 or len(np.unique(y[train])) < 2:
                raise NeumoError(
                    f"held-out {grouping} {held!r} or the rest lacks human or machine texts; every group needs both"
                )
            scaler, coef, b = fit_logistic(X[train], y[train], C)
            j = best_single(X[train], y[train], names)
            s_comb = _decide_with(scaler, coef, b, X[test])
            gain, lo, hi = paired_auroc_gain(s_comb, X[test, j], y[test], n_boot)
            rows.append(
                HeldOut(
                    grouping=grouping,
                    held_out=held,
                    n_train=int(train.sum()),
                    n_test=int(test.sum()),
                    combiner_auroc=auroc(s_comb, y[test]),
                    combiner_tpr_at_1fpr=tpr_at_fpr(s_comb, y[test], 0.01),
                    best_single=names[j],
                    single_auroc=auroc(X[test, j], y[test]),
                    single_tpr_at_1fpr=tpr_at_fpr(X[test, j], y[test], 0.01),
                    auroc_gain=gain,
                    auroc_gain_lo=lo if n_boot else None,
                    auroc_gain_hi=hi if n_boot else None,
                )
            )
    return rows


# ---- features from files and texts ---------------------------------------------------------------------


def check_file(path: Path, limit: int | None) -> tuple[int, int]:
    """(humans, machines) of a labelled file, read without a model (refuses empty or missing files)."""
    from neumo.detect.evaluate import load_labelled
    from neumo.detect.pairs import is_pair_file, load_pairs

    p = Path(path)
    if not p.is_file():
        raise NeumoError(f"data file {p} does not exist")
    if is_pair_file(p):
        h, _ = load_pairs(p, limit)
        counts = (len(h), len(h))
    else:
        labels = load_labelled(p, limit)[1]
        counts = (labels.count(0), labels.count(1))
    if sum(counts) == 0:
        raise NeumoError(f"{p} holds no texts; give a file with human and machine texts")
    return counts


def file_stats(lm, path: Path, limit: int | None, max_tokens: int | None) -> tuple[list, np.ndarray]:
    """Per-text statistics and labels of a labelled file, read and cut as ``neumo detect eval`` does (pair files:
    continuation tokens only, the shared prompt as context; human texts first, then machine texts)."""
    from neumo.detect.evaluate import load_labelled
    from neumo.detect.pairs import encode_pairs, is_pair_file, load_pairs, score_pairs
    from neumo.detect.score import score_texts

    if is_pair_file(path):
        scored = score_pairs(lm, encode_pairs(lm, *load_pairs(path, limit)), max_tokens=max_tokens)
        return [s.human for s in scored] + [s.machine for s in scored], np.r_[
            np.zeros(len(scored)), np.ones(len(scored))
        ]
    texts, labels = load_labelled(path, limit)
    return score_texts(lm, texts, max_tokens=max_tokens), np.asarray(labels, np.float64)


def file_features(lms, path: Path, limit: int | None, max_tokens: int | None) -> tuple[np.ndarray, np.ndarray, list]:
    """(X, y, names) of one labelled file: every one-pass detector of every model (one forward pass each)."""
    from neumo.detect.registry import compute_scores, detector_names

    cols, names, y = [], [], None
    for lm in lms:
        stats, y = file_stats(lm, path, limit, max_tokens)
        per = [compute_scores(s) for s in stats]
        for d in detector_names():
            cols.append(np.array([p[d] for p in per]))
            names.append(f"{lm.name}:{d}")
    X = np.column_stack(cols)
    _check_finite(X, names, Path(path).name)
    assert y is not None
    return X, y.astype(int), names


def text_features(comb: Combiner, lms, texts: list[str]) -> np.ndarray:
    """Features of ``texts`` (scored from their first token, cut to the combiner's ``max_tokens``) with the
    combiner's scoring models, which must be the ones it was fitted with (name and precision)."""
    from neumo.detect.registry import compute_scores
    from neumo.detect.score import score_texts

    got = [ScoringModel(name=lm.name, precision=getattr(lm, "precision", "fp32")) for lm in lms]
    if got != comb.models:
        want = ", ".join(f"{m.name} ({m.precision})" for m in comb.models)
        raise NeumoError(f"the combiner was fitted with {want}; score with the same models and precisions")
    cols: dict[str, np.ndarray] = {}
    for lm in lms:
        per = [compute_scores(s) for s in score_texts(lm, texts, max_tokens=comb.max_tokens)]
        for d in per[0] if per else []:
            cols[f"{lm.name}:{d}"] = np.array([p[d] for p in per])
    missing = [f for f in comb.features if f not in cols]
    if missing:
        raise NeumoError(f"the combiner needs detectors this neumo does not have: {', '.join(missing)}")
    X = np.column_stack([cols[f] for f in comb.features])
    _check_finite(X, comb.features, "the texts")
    return X


def _check_finite(X: np.ndarray, names: list[str], where: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        raise NeumoError(
            f"{where}: feature {names[j]} is not finite for {int(bad[:, j].sum())} texts; "
            "drop very short texts or raise --max-tokens"
        )


def fit_files(
    lms,
    paths: list[Path],
    *,
    groups: list[str] | None = None,
    limit: int | None = None,
    max_tokens: int | None = 128,
    C: float = 1.0,
    n_boot: int = 1000,
) -> Combiner:
    """Fit the combiner on every text of ``paths`` and evaluate it leave-one-group-out."""
    from neumo import __version__
    from neumo.detect.evaluate import auroc

    if not 1 <= len(lms) <= 2:
        raise NeumoError(f"the combiner takes the scores of one or two scoring models, not {len(lms)}")
    names_seen = [lm.name for lm in lms]
    if len(set(names_seen)) != len(names_seen):
        raise NeumoError(f"--model {names_seen[0]} is given twice; give two different models or one")
    paths = [Path(p) for p in paths]
    fgroups = file_groups(paths, groups)
    if not groupings(fgroups):
        raise NeumoError(
            "every file is in the same generator and domain: a held-out evaluation needs files of at least two "
            "generators or domains (or two different --group labels)"
        )
    counts = [check_file(p, limit) for p in paths]
    check_groups(paths, fgroups, counts)
    Xs, ys, tg, names = [], [], [], None
    for p, g in zip(paths, fgroups):
        X, y, names = file_features(lms, p, limit, max_tokens)
        Xs.append(X)
        ys.append(y)
        tg += [g] * len(y)
    assert names is not None
    X, y = np.vstack(Xs), np.concatenate(ys)
    scaler, coef, b = fit_logistic(X, y, C)
    evaluation = leave_one_group_out(X, y, tg, names, C, n_boot)
    return Combiner(
        features=names,
        models=[ScoringModel(name=lm.name, precision=getattr(lm, "precision", "fp32")) for lm in lms],
        max_tokens=max_tokens,
        limit=limit,
        C=C,
        coef=coef,
        intercept=b,
        scaler=scaler,
        training_files=[
            TrainingFile(file=p.name, sha256=_sha256(p), bytes=p.stat().st_size, groups=g, n_human=h, n_machine=m)
            for p, g, (h, m) in zip(paths, fgroups, counts)
        ],
        n=int(len(y)),
        n_human=int((y == 0).sum()),
        n_machine=int((y == 1).sum()),
        train_auroc=auroc(_decide_with(scaler, coef, b, X), y),
        evaluation=evaluation,
        fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        neumo_version=__version__,
    )


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- files ----------------------------------------------------------------------------------------------


def save_combiner(comb: Combiner, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(comb.model_dump_json(indent=2), encoding="utf-8")
    return p


def load_combiner(path: str | Path) -> Combiner:
    """A saved combiner, validated: unknown keys, wrong types and inconsistent lengths are refused."""
    p = Path(path)
    if p.exists() and not p.is_file():  # a folder, a device, a pipe: never read
        raise NeumoError(f"combiner {p} is not a regular file; give a combiner .json file")
    if not p.is_file():
        raise NeumoError(f"combiner file {p} does not exist; fit one with 'neumo detect fit'")
    # a bounded read, not stat(): a file that grows (or a /proc-like one that reports 0 bytes) stays bounded
    raw = read_limited(p, "NEUMO_MAX_COMBINER_BYTES", MAX_COMBINER_BYTES, "combiner file")
    try:
        comb = Combiner.model_validate_json(raw.decode("utf-8"))
    except (ValidationError, UnicodeDecodeError) as e:
        raise NeumoError(f"{p} is not a neumo combiner file ({str(e).splitlines()[0]})") from e
    k = len(comb.features)
    if not (len(comb.coef) == len(comb.scaler.mean) == len(comb.scaler.scale) == k) or k == 0:
        raise NeumoError(f"{p}: features, coefficients and scaler lengths differ; refit it with 'neumo detect fit'")
    if not all(s > 0 for s in comb.scaler.scale):
        raise NeumoError(f"{p}: scaler scales must be positive; refit it with 'neumo detect fit'")
    return comb


def transfer_summary(rows: list[HeldOut]) -> dict[str, float]:
    """Mean AUROC difference (combiner - best single) over held-out groups, the share the combiner wins, and
    how many groups' paired intervals lie wholly above / below 0 (rows without intervals count in neither)."""
    d = [r.combiner_auroc - r.single_auroc for r in rows]
    return {
        "held_out": float(len(rows)),
        "mean_delta_auroc": float(np.mean(d)) if d else float("nan"),
        "min_delta_auroc": float(np.min(d)) if d else float("nan"),
        "share_won": float(np.mean([x > 0 for x in d])) if d else float("nan"),
        "gain_above_0": float(sum(r.auroc_gain_lo is not None and r.auroc_gain_lo > 0 for r in rows)),
        "gain_below_0": float(sum(r.auroc_gain_hi is not None and r.auroc_gain_hi < 0 for r in rows)),
    }


__all__ = [
    "Combiner",
    "HeldOut",
    "check_groups",
    "decision",
    "file_groups",
    "fit_files",
    "fit_logistic",
    "groups_from_name",
    "leave_one_group_out",
    "paired_auroc_gain",
    "load_combiner",
    "save_combiner",
    "text_features",
    "transfer_summary",
]
