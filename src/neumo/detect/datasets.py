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
from neumo.detect.registry import compute_scores, resolve
from neumo.detect.score import TokenStats, check_max_tokens, score_texts
from neumo.errors import NeumoError

# per-text mechanisms (neumo.detect.explain) averaged over a file's human texts: the calibration's reference
REFERENCE_MECHANISMS = ("mean_logprob", "frac_outside_top_p", "frac_outside_top_k", "frac_long_tail", "mean_entropy")
LENGTH_BUCKETS = (32, 64, 128, 256)     # scored tokens per text in the by-length results
MAX_BOOT = 100_000
MAX_LIMIT = 1_000_000


@dataclass
class FileEval:
    rows: list[dict]                   # one per detector: AUROC, its CI, TPR at 1% / 5% FPR, by_length
    scores: dict[str, np.ndarray]      # detector -> score per text
    labels: np.ndarray                 # 1 = machine
    human_reference: dict[str, float]  # mean per-text mechanisms over the human texts


def check_eval_args(limit: int | None, max_tokens: int | None, n_boot: int) -> None:
    """The bounds of :func:`evaluate_file`'s numeric arguments (checked before any scoring)."""
    check_max_tokens(max_tokens)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or not 1 <= limit <= MAX_LIMIT):
        raise NeumoError(f"The 'limit' parameter must be an integer in [1, {MAX_LIMIT}] or None. Got {limit!r} instead.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 0 <= n_boot <= MAX_BOOT:
        raise NeumoError(f"The 'n_boot' parameter must be an integer in [0, {MAX_BOOT}] (0: no interval). "
                         f"Got {n_boot!r} instead.")


def by_length(stats: list[TokenStats], labels, names: list[str], paired: bool,
              buckets=LENGTH_BUCKETS) -> dict[str, list[dict]]:
    """detector -> one row per bucket L: AUROC and TPR at 1% FPR of the detector on the first L scored tokens
    of every text that has at least L (for pairs, ``stats`` = human texts then machine texts, both texts
    of a pair need L). Buckets with no text of one class are left out."""
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
        per = [compute_scores(stats[i].span(0, L), names) for i in keep]
        for d in names:
            sc = np.array([p[d] for p in per])
            out[d].append({"tokens": int(L), "auroc": auroc(sc, yk), "tpr_at_1fpr": tpr_at_fpr(sc, yk, 0.01),
                           "n_human": int((yk == 0).sum()), "n_machine": int((yk == 1).sum())})
    return out


def evaluate_file(lm: CausalLM, path: Path, detectors: list[str] | None = None, limit: int | None = None,
                  max_tokens: int | None = None, n_boot: int = 1000, seed: int = 0, batch_size: int = 8
                  ) -> FileEval:
    """Score every text of a labelled file once and evaluate each detector on the same statistics.

    Fast-DetectGPT pair files (``.json`` / ``.json.gz``): both texts of a pair share a human prompt, so only
    the tokens after it are scored (:mod:`neumo.detect.pairs`) and ``max_tokens`` counts those; other files
    (JSONL / CSV) are scored from their first token, cut to ``max_tokens`` tokens. Each row reports the
    scored tokens per text, the default detector (``"default"``) and the results by length
    (:func:`by_length`)."""
    names = resolve(detectors)
    check_eval_args(limit, max_tokens, n_boot)
    prompt_mean = None
    paired = is_pair_file(path)
    if paired:
        human, machine = load_pairs(path, limit=limit)
        scored = score_pairs(lm, encode_pairs(lm, human, machine), max_tokens=max_tokens, batch_size=batch_size)
        stats = [s.human for s in scored] + [s.machine for s in scored]
        labels = [0] * len(scored) + [1] * len(scored)
        prompt_mean = float(np.mean([s.prompt for s in scored])) if scored else None
    else:
        texts, labels = load_labelled(path, limit=limit)
        stats = score_texts(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
    if not stats:
        raise NeumoError(f"{path} holds no texts; give a file with human and machine texts")
    per = [compute_scores(s, names) for s in stats]
    scores = {n: np.array([p[n] for p in per]) for n in names}
    y = np.asarray(labels)
    lengths = np.array([s.n for s in stats])
    tokens = {"max_tokens": max_tokens, "scored_tokens_mean": float(lengths.mean()),
              "scored_tokens_min": int(lengths.min()), "scored_tokens_max": int(lengths.max()),
              "prompt_tokens_mean": prompt_mean, "prompt_cut": paired}
    buckets = by_length(stats, y, names, paired)
    default = default_detector(lm.name)
    rows = [{"file": Path(path).name, "detector": n, "default": n == default,
             **summarize(scores[n], y, n_boot=n_boot, seed=seed), **tokens, "by_length": buckets[n]}
            for n in names]
    human_mechs = [mechanisms(s) for s, lab in zip(stats, y) if lab == 0]
    ref = {k: float(np.mean([m[k] for m in human_mechs])) for k in REFERENCE_MECHANISMS} if human_mechs else {}
    return FileEval(rows, scores, y, ref)
