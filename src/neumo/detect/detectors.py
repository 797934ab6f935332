"""One-pass zero-shot detectors: pure functions of a text's :class:`TokenStats`.

Every score is oriented so that higher = more machine-like (a sampler favours high-probability tokens):
- ``likelihood``: mean log q(x_t) (Solaiman et al. 2019);
- ``logrank``: -mean log rank(x_t) (Mitchell et al. 2023's baseline);
- ``entropy``: -mean H_t, the model's own uncertainty at each position (Gehrmann et al. 2019);
- ``gltr``: fraction of tokens of rank <= 10 (GLTR's first bucket; all four in :func:`gltr_buckets`);
- ``lrr``: -sum log q / sum log rank, the log-likelihood log-rank ratio (Su et al. 2023, DetectLLM);
- ``fast_detectgpt``: sum_t (log q(x_t) - mu_t) / sqrt(sum_t var_t), the analytic conditional probability
  curvature with the scoring model as sampling model (Bao et al. 2024, ICLR);
- ``lastde``: mean log q / MDE, the multiscale diversity entropy of the log-prob sequence (Xu et al. 2025,
  ICLR, "Training-free LLM-generated text detection by mining token probability sequences"); defaults of
  the reference code for white-box open models: embedding s = 3, eps = 10 n bins, scales tau' = 5;
- ``lastde++``: (Lastde(x) - mean_j Lastde(x~_j)) / std_j Lastde(x~_j) over the sequences x~_j of
  tokens drawn from the model at each position (as Fast-DetectGPT samples; ``TokenStats.sample_logprob``,
  100 samples); reference-code defaults s = 4, eps = 8 n, tau' = 15;
- ``specdetect``: -E, minus the energy of the first half of the DFT spectrum of the centred log-prob
  sequence (Luo et al. 2025, "SpecDetect", AAAI 2026).
The sequence statistics are in :mod:`neumo.detect.sequence`.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from neumo.detect import sequence
from neumo.detect.score import TokenStats
from neumo.errors import NeumoError

GLTR_EDGES = (10, 100, 1000)


class LastdeParams(TypedDict):
    """The options of :func:`neumo.detect.sequence.lastde`."""

    embed: int
    eps_per_token: float
    tau_max: int


LASTDE: LastdeParams = {"embed": 3, "eps_per_token": 10.0, "tau_max": 5}  # Xu et al. 2025, white-box defaults
LASTDE_PP: LastdeParams = {"embed": 4, "eps_per_token": 8.0, "tau_max": 15}  # their Lastde++ defaults


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
    return {
        "rank_1_10": float(np.mean(r <= 10)),
        "rank_11_100": float(np.mean((r > 10) & (r <= 100))),
        "rank_101_1000": float(np.mean((r > 100) & (r <= 1000))),
        "rank_gt_1000": float(np.mean(r > 1000)),
    }


def lrr(s: TokenStats) -> float:
    # all tokens at rank 1 make the denominator 0: the text is as machine-like as it gets
    denom = max(float(np.sum(np.log(s.rank))), 1e-9)
    return float(-np.sum(s.logprob) / denom)


def fast_detectgpt(s: TokenStats) -> float:
    denom = np.sqrt(max(float(np.sum(s.var)), 1e-12))
    return float(np.sum(s.logprob - s.mean) / denom)


def lastde(s: TokenStats) -> float:
    return float(sequence.lastde(s.logprob, **LASTDE))


def lastde_pp(s: TokenStats) -> float:
    if s.sample_logprob is None or s.sample_logprob.shape[1] < 2:
        raise NeumoError(
            "lastde++ needs tokens sampled from the model at each position; score with "
            "n_samples >= 2 (the default draws 100)"
        )
    x = sequence.lastde(s.logprob, **LASTDE_PP)
    tilde = sequence.lastde(s.sample_logprob, **LASTDE_PP)
    return float((x - tilde.mean()) / max(float(tilde.std(ddof=1)), 1e-12))


def specdetect(s: TokenStats) -> float:
    return float(-sequence.spectral_energy(s.logprob))
