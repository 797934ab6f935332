"""One function that evaluates detectors on a labelled file (pair files score their continuations only;
where pair files are found: :func:`neumo.detect.pairs.find_pair_file`), with results by text length."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neumo.detect.evaluate import auroc, default_detector, load_labelled, summarize, tpr_at_fpr
from neumo.detect.explain import mechanisms
from neumo.detect.lm.base import CausalLM
from neumo.detect.pairs import encode_pairs, is_pair_file, load_pairs, score_pairs
from neumo.detect.registry import PERFORMER_HINT, compute_scores, split_detectors
from neumo.detect.score import TokenStats, check_max_tokens, score_texts
from neumo.errors import NeumoError

# per-text mechanisms (neumo.detect.explain) averaged over a file's human texts: the calibration's reference
REFERENCE_MECHANISMS = ("mean_logprob", "frac_outside_top_p", "frac_outside_top_k", "frac_long_tail", "mean_entropy")
LENGTH_BUCKETS = (32, 64, 128, 256)  # scored tokens per text in the by-length results
MAX_BOOT = 100_000
MAX_LIMIT = 1_000_000


@dataclass
class FileEval:
    rows: list[dict]  # one per detector: AUROC, its CI, TPR at 1% / 5% FPR, by_length
    scores: dict[str, np.ndarray]  # detector -> score per text
    labels: np.ndarray  # 1 = machine
    human_reference: dict[str, float]  # mean per-text mechanisms over the human texts


def check_eval_args(limit: int | None, max_tokens: int | None, n_boot: int) -> None:
    """The bounds of :func:`evaluate_file`'s numeric arguments (checked before any scoring)."""
    check_max_tokens(max_tokens)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= MAX_LIMIT
    ):
        raise NeumoError(
            f"The 'limit' parameter must be an integer in [1, {MAX_LIMIT}] or None. Got {limit!r} instead."
        )
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 0 <= n_boot <= MAX_BOOT:
        raise NeumoError(
            f"The 'n_boot' parameter must be an integer in [0, {MAX_BOOT}] (0: no interval). Got {n_boot!r} instead."
        )


def by_length(
    stats: list[TokenStats],
    labels,
    names: list[str],
    paired: bool,
    buckets=LENGTH_BUCKETS,
    binoculars_terms: list | None = None,
) -> dict[str, list[dict]]:
    """detector -> one row per bucket L: AUROC and TPR at 1% FPR of the detector on the first L scored tokens
    of every text that has at least L (for pairs, ``stats`` = human texts then machine texts, both texts
    of a pair need L). Buckets with no text of one class are left out. ``binoculars_terms`` (per text, the
    (nll, xent) arrays aligned with ``stats``) adds the ``binoculars`` rows."""
    from neumo.detect.binoculars import binoculars_score

    y = np.asarray(labels)
    n = np.array([s.n for s in stats])
    if paired:
        k = len(stats) // 2
        pair_n = np.minimum(n[:k], n[k:])
        n = np.r_[pair_n, pair_n]
    out: dict[str, list[dict]] = {d: [] for d in names}
    for L in buckets:
        keep = np.flatnonzero(n >= L)
        yk = y[keep]
        if not (yk == 0).any() or not (yk == 1).any():
            continue
        one = [d for d in names if d != "binoculars"]
        per = [compute_scores(stats[i].span(0, L), one) if one else {} for i in keep]
        if binoculars_terms is not None:
            for row, i in zip(per, keep):
                row["binoculars"] = binoculars_score(binoculars_terms[i][0][:L], binoculars_terms[i][1][:L])
        for d in names:
            sc = np.array([p[d] for p in per])
            out[d].append(
                {
                    "tokens": int(L),
                    "auroc": auroc(sc, yk),
                    "tpr_at_1fpr": tpr_at_fpr(sc, yk, 0.01),
                    "n_human": int((yk == 0).sum()),
                    "n_machine": int((yk == 1).sum()),
                }
            )
    return out


def evaluate_file(
    lm: CausalLM,
    path: Path,
    detectors: list[str] | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 8,
    performer: CausalLM | None = None,
) -> FileEval:
    """Score every text of a labelled file once and evaluate each detector on the same statistics.

    Fast-DetectGPT pair files (``.json`` / ``.json.gz``): both texts of a pair share a human prompt, so only
    the tokens after it are scored (:mod:`neumo.detect.pairs`) and ``max_tokens`` counts those; other files
    (JSONL / CSV) are scored from their first token, cut to ``max_tokens`` tokens. Each row reports the
    scored tokens per text, the default detector (``"default"``) and the results by length
    (:func:`by_length`). ``binoculars`` among ``detectors`` needs ``performer`` (the same tokens scored by
    both models, :func:`neumo.detect.binoculars.binoculars_tokens`)."""
    one, two = split_detectors(detectors)
    names = one + two
    check_eval_args(limit, max_tokens, n_boot)
    if two:
        from neumo.detect.binoculars import binoculars_score, binoculars_tokens, check_pair

        if performer is None:
            raise NeumoError(PERFORMER_HINT)
        check_pair(lm, performer)
    prompt_mean = None
    paired = is_pair_file(path)
    terms = None
    if paired:
        human, machine = load_pairs(path, limit=limit)
        enc = encode_pairs(lm, human, machine)
        scored = score_pairs(lm, enc, max_tokens=max_tokens, batch_size=batch_size)
        stats = [s.human for s in scored] + [s.machine for s in scored]
        labels = [0] * len(scored) + [1] * len(scored)
        prompt_mean = float(np.mean([s.prompt for s in scored])) if scored else None
        if two:  # the same continuation tokens, the prompt as context only
            shift = 0 if lm.bos_id is not None else 1
            end = [None if max_tokens is None else p.prompt + int(max_tokens) for p in enc]
            seqs = [p.human[:e] for p, e in zip(enc, end)] + [p.machine[:e] for p, e in zip(enc, end)]
            cuts = [max(0, p.prompt - shift) for p in enc] * 2
            assert performer is not None  # two-model detectors were checked to come with a performer
            terms = [(n[c:], x[c:]) for (n, x), c in zip(binoculars_tokens(lm, performer, seqs), cuts)]
    else:
        texts, labels = load_labelled(path, limit=limit)
        stats = score_texts(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
        if two:
            seqs = [lm.encode(t)[0][:max_tokens] for t in texts]
            assert performer is not None
            terms = binoculars_tokens(lm, performer, seqs)
    if not stats:
        raise NeumoError(f"{path} holds no texts; give a file with human and machine texts")
    per = [compute_scores(s, one) if one else {} for s in stats]
    if terms is not None:
        for row, (n, x) in zip(per, terms):
            row["binoculars"] = binoculars_score(n, x)
    scores = {n: np.array([p[n] for p in per]) for n in names}
    y = np.asarray(labels)
    lengths = np.array([s.n for s in stats])
    tokens = {
        "max_tokens": max_tokens,
        "scored_tokens_mean": float(lengths.mean()),
        "scored_tokens_min": int(lengths.min()),
        "scored_tokens_max": int(lengths.max()),
        "prompt_tokens_mean": prompt_mean,
        "prompt_cut": paired,
    }
    buckets = by_length(stats, y, names, paired, binoculars_terms=terms)
    default = default_detector(lm.name)
    rows = [
        {
            "file": Path(path).name,
            "detector": n,
            "default": n == default,
            "precision": lm.precision,
            **summarize(scores[n], y, n_boot=n_boot, seed=seed),
            **tokens,
            "by_length": buckets[n],
        }
        for n in names
    ]
    human_mechs = [mechanisms(s) for s, lab in zip(stats, y) if lab == 0]
    ref = {k: float(np.mean([m[k] for m in human_mechs])) for k in REFERENCE_MECHANISMS} if human_mechs else {}
    return FileEval(rows, scores, y, ref)


def pool_files(evals: list[FileEval], detector: str) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(scores, labels, human reference) of several evaluated files pooled: one reference set whose human
    reference statistics are the means over all its human texts (each file weighted by its humans)."""
    scores = np.concatenate([fe.scores[detector] for fe in evals])
    labels = np.concatenate([fe.labels for fe in evals])
    w = np.array([(fe.labels == 0).sum() for fe in evals], np.float64)
    ref: dict[str, float] = {}
    if w.sum() > 0:
        for k in REFERENCE_MECHANISMS:
            ref[k] = float(sum(wi * fe.human_reference[k] for wi, fe in zip(w, evals) if wi > 0) / w.sum())
    return scores, labels, ref
