"""One function that evaluates detectors on a labelled file (pair files score their continuations only;
where pair files are found: :func:`neumo.detect.pairs.find_pair_file`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neumo.detect.evaluate import load_labelled, summarize
from neumo.detect.explain import mechanisms
from neumo.detect.lm.base import CausalLM
from neumo.detect.pairs import encode_pairs, is_pair_file, load_pairs, score_pairs
from neumo.detect.registry import compute_scores, resolve
from neumo.detect.score import score_texts

# per-text mechanisms (neumo.detect.explain) averaged over a file's human texts: the calibration's reference
REFERENCE_MECHANISMS = ("mean_logprob", "frac_outside_top_p", "frac_outside_top_k", "frac_long_tail", "mean_entropy")


@dataclass
class FileEval:
    rows: list[dict]                   # one per detector: AUROC, its CI, TPR at 1% / 5% FPR
    scores: dict[str, np.ndarray]      # detector -> score per text
    labels: np.ndarray                 # 1 = machine
    human_reference: dict[str, float]  # mean per-text mechanisms over the human texts


def evaluate_file(lm: CausalLM, path: Path, detectors: list[str] | None = None, limit: int | None = None,
                  max_tokens: int | None = None, n_boot: int = 1000, seed: int = 0, batch_size: int = 8
                  ) -> FileEval:
    """Score every text of a labelled file once and evaluate each detector on the same statistics.

    Fast-DetectGPT pair files (``.json`` / ``.json.gz``): both texts of a pair share a human prompt, so only
    the tokens after it are scored (:mod:`neumo.detect.pairs`) and ``max_tokens`` counts those; other files
    (JSONL / CSV) are scored from their first token, cut to ``max_tokens`` tokens."""
    names = resolve(detectors)
    if is_pair_file(path):
        human, machine = load_pairs(path, limit=limit)
        scored = score_pairs(lm, encode_pairs(lm, human, machine), max_tokens=max_tokens, batch_size=batch_size)
        stats = [s.human for s in scored] + [s.machine for s in scored]
        labels = [0] * len(scored) + [1] * len(scored)
    else:
        texts, labels = load_labelled(path, limit=limit)
        stats = score_texts(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
    per = [compute_scores(s, names) for s in stats]
    scores = {n: np.array([p[n] for p in per]) for n in names}
    y = np.asarray(labels)
    rows = [{"file": Path(path).name, "detector": n, **summarize(scores[n], y, n_boot=n_boot, seed=seed)}
            for n in names]
    human = [mechanisms(s) for s, lab in zip(stats, y) if lab == 0]
    ref = {k: float(np.mean([m[k] for m in human])) for k in REFERENCE_MECHANISMS} if human else {}
    return FileEval(rows, scores, y, ref)
