"""Binoculars (Hans et al. 2024): a two-model score for models that share a tokenizer.

B(s) = log PPL_performer(s) / log X-PPL(s), with log PPL = -mean_t log q_perf(x_t) and the cross-perplexity
log X-PPL = mean_t sum_v q_obs(v | x_<t) * (-log q_perf(v | x_<t)) (as in the authors' code: observer
probabilities against performer log-probabilities). Machine text has low B; the score returned is -B so
that, like every neumo detector, higher = more machine-like. With one model as both, -B = mean log q / H.
"""

from __future__ import annotations

import torch

from neumo.detect.lm.base import CausalLM
from neumo.detect.score import plan_windows
from neumo.errors import NeumoError


def binoculars(observer: CausalLM, performer: CausalLM, texts: list[str], max_tokens: int | None = None,
               stride: int | None = None) -> list[float]:
    if observer.tokenizer_id != performer.tokenizer_id or observer.vocab_size != performer.vocab_size:
        raise NeumoError(f"Binoculars needs two models with one tokenizer; {observer.name} and {performer.name} "
                         "tokenize differently")
    W = min(observer.max_len, performer.max_len)
    S = stride or max(1, W // 2)
    out = []
    for i, t in enumerate(texts):
        if not t.strip():
            raise NeumoError(f"text {i} is empty or whitespace only; give at least one word to score")
        ids, _ = observer.encode(t)
        seq = ([] if observer.bos_id is None else [observer.bos_id]) + ids[:max_tokens]
        if len(seq) < 2:
            raise NeumoError(f"text {i} is too short to score")
        nll, xent, n = 0.0, 0.0, 0
        for s, e, first in plan_windows(len(seq), W, S):
            x = torch.tensor([seq[s:e]])
            m = torch.ones_like(x)
            with torch.no_grad():
                lo = torch.log_softmax(observer.forward(x, m)[0].double(), -1)     # (T, V)
                lp = torch.log_softmax(performer.forward(x, m)[0].double(), -1)
            pos = torch.arange(first - 1 - s, e - 1 - s)
            nll -= float(lp[pos].gather(-1, x[0, pos + 1, None]).sum())
            xent -= float((lo[pos].exp() * lp[pos]).sum())
            n += len(pos)
        out.append(-(nll / n) / (xent / n))
    return out
