"""One-pass zero-shot detectors: pure functions of a text's :class:`TokenStats`.

Every score is oriented so that higher = more machine-like (a sampler favours high-probability tokens):
- ``likelihood``: mean log q(x_t) (Solaiman et al. 2019);
- ``logrank``: -mean log rank(x_t) (Mitchell et al. 2023's baseline);
- ``entropy``: -mean H_t, the model's own uncertainty at each position (Gehrmann et al. 2019);
- ``gltr``: fraction of tokens of rank <= 10 (GLTR's first bucket; all four in :func:`gltr_buckets`);
- ``lrr``: -sum log q / sum log rank, the log-likelihood log-rank ratio (Su et al. 2023, DetectLLM);
- ``fast_detectgpt``: sum_t (log q(x_t) - mu_t) / sqrt(sum_t var_t), the analytic conditional probability
  curvature with the scoring model as sampling model (Bao et al. 2024, ICLR).
"""

from __future__ import annotations

import numpy as np

from neumo.detect.score import TokenStats

GLTR_EDGES = (10, 100, 1000)


def likelihood(s: TokenStats) -> float:
    return float(np.mean(s.logprob))


def logrank(s: TokenStats) -> float:
    return float(-np.mean(np.log(s.rank)))


def entropy(s: TokenStats) -> float:
    return float(-np.mean(s.entropy))


def gltr(s: TokenStats) -> float:
    return float(np.mean(s.rank <= GLTR_EDGES[0]))


def gltr_buckets(s: TokenStats) -> dict[str, float]:
    """Fractions of tokens with rank in 1-10, 11-100, 101-1000, >1000."""
    r = s.rank
    return {"rank_1_10": float(np.mean(r <= 10)), "rank_11_100": float(np.mean((r > 10) & (r <= 100))),
            "rank_101_1000": float(np.mean((r > 100) & (r <= 1000))), "rank_gt_1000": float(np.mean(r > 1000))}


def lrr(s: TokenStats) -> float:
    # all tokens at rank 1 make the denominator 0: the text is as machine-like as it gets
    denom = max(float(np.sum(np.log(s.rank))), 1e-9)
    return float(-np.sum(s.logprob) / denom)


def fast_detectgpt(s: TokenStats) -> float:
    denom = np.sqrt(max(float(np.sum(s.var)), 1e-12))
    return float(np.sum(s.logprob - s.mean) / denom)
