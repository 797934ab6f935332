"""Binoculars (Hans et al. 2024): a two-model score for models that share a tokenizer.

B(s) = log PPL_performer(s) / log X-PPL(s), with log PPL = -mean_t log q_perf(x_t) and the cross-perplexity
log X-PPL = mean_t sum_v q_obs(v | x_<t) * (-log q_perf(v | x_<t)) (as in the authors' code: observer
probabilities against performer log-probabilities). Machine text has low B; the score returned is -B so
that, like every neumo detector, higher = more machine-like. With one model as both, -B = mean log q / H.

:func:`binoculars_tokens` gives the two per-token terms (nll_t, xent_t) of id sequences, aligned with the
scored tokens of :func:`neumo.detect.score.score_ids` on the same sequences (same start token, same
windows), so a caller can cut them as it cuts :class:`TokenStats` (a pair's prompt, the first L tokens) and
score any span with :func:`binoculars_score`. Two models are accepted only when their ``tokenizer_id`` and
vocabulary size agree (:func:`check_pair`).
"""

from __future__ import annotations

import numpy as np
import torch

from neumo.detect.lm.base import CausalLM
from neumo.detect.score import check_max_tokens, plan_windows
from neumo.errors import NeumoError


def check_pair(observer: CausalLM, performer: CausalLM) -> None:
    """Refuse two models that do not share a tokenizer (and so cannot score the same token ids)."""
    if observer.tokenizer_id != performer.tokenizer_id or observer.vocab_size != performer.vocab_size:
        raise NeumoError(
            f"Binoculars needs two models with one tokenizer; {observer.name} and {performer.name} "
            "tokenize differently (pick a performer with the observer's tokenizer)"
        )


def binoculars_tokens(
    observer: CausalLM, performer: CausalLM, sequences: list[list[int]], stride: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per scored token of each id sequence (without the start token): (nll_t, xent_t), float64 (n,)."""
    check_pair(observer, performer)
    W = min(observer.max_len, performer.max_len)
    S = stride or max(1, W // 2)
    bos = [] if observer.bos_id is None else [observer.bos_id]
    out = []
    for i, ids in enumerate(sequences):
        seq = bos + [int(t) for t in ids]
        if len(seq) < 2:
            raise NeumoError(f"text {i} is too short to score")
        nll, xent = [], []
        for s, e, first in plan_windows(len(seq), W, S):
            x = torch.tensor([seq[s:e]])
            m = torch.ones_like(x)
            with torch.no_grad():
                lo = torch.log_softmax(observer.forward(x, m)[0].double(), -1)  # (T, V)
                lp = torch.log_softmax(performer.forward(x, m)[0].double(), -1)
            pos = torch.arange(first - 1 - s, e - 1 - s)
            nll.append(-lp[pos].gather(-1, x[0, pos + 1, None])[:, 0])
            xent.append(-(lo[pos].exp() * lp[pos]).sum(-1))
        out.append((torch.cat(nll).numpy(), torch.cat(xent).numpy()))
    return out


def binoculars_score(nll: np.ndarray, xent: np.ndarray) -> float:
    """-B of the tokens given: -(mean nll) / (mean cross-entropy)."""
    if not len(nll):
        raise NeumoError("Binoculars needs at least one scored token")
    return float(-np.mean(nll) / max(float(np.mean(xent)), 1e-12))


def binoculars(
    observer: CausalLM, performer: CausalLM, texts: list[str], max_tokens: int | None = None, stride: int | None = None
) -> list[float]:
    """-B of each text (its first ``max_tokens`` tokens when given), scored from its first token."""
    check_pair(observer, performer)
    max_tokens = check_max_tokens(max_tokens)
    seqs = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise NeumoError(f"text {i} is empty or whitespace only; give at least one word to score")
        seqs.append(observer.encode(t)[0][:max_tokens])
    return [binoculars_score(n, x) for n, x in binoculars_tokens(observer, performer, seqs, stride)]
