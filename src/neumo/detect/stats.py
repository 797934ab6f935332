"""Per-token statistics from next-token logits: one pure function, shared by every detector.

For a target token x_t with model distribution q_t = softmax(logits_t):
log-prob ``log q_t(x_t)``; rank ``1 + #{v : q_t(v) > q_t(x_t)}`` (1 = argmax); entropy ``H_t = -sum q log q``;
the expected log-prob ``mu_t = sum q log q = -H_t`` and its variance ``var_t = sum q (log q)^2 - mu_t^2``
(the moments Fast-DetectGPT's analytic criterion needs, Bao et al. 2024 eq. 5); membership of x_t in the
top-k set (rank <= k) and in the top-p nucleus (the mass strictly above x_t is < p: the smallest set of
most-probable tokens whose mass reaches p contains x_t).
"""

from __future__ import annotations

import torch

TOP_K = 40
TOP_P = 0.9


def token_stats(logits: torch.Tensor, targets: torch.Tensor, top_k: int = TOP_K, top_p: float = TOP_P
                ) -> dict[str, torch.Tensor]:
    """logits (N, V), targets (N,) -> dict of (N,) tensors: logprob, rank, entropy, mean, var, in_top_k,
    in_top_p, mass_above."""
    lq = torch.log_softmax(logits, dim=-1)                        # (N, V)
    q = lq.exp()
    lp = lq.gather(-1, targets[:, None])                          # (N, 1)
    above = lq > lp                                               # (N, V) strictly more probable
    rank = above.sum(-1) + 1
    plogq = torch.where(q > 0, q * lq, torch.zeros_like(q))      # 0 log 0 = 0
    mean = plogq.sum(-1)                                          # E_q[log q] = -H
    centred = torch.where(q > 0, lq - mean[:, None], torch.zeros_like(q))
    var = (q * centred ** 2).sum(-1)                              # Var_q[log q], centred for stability
    mass_above = (q * above).sum(-1)
    return {"logprob": lp[:, 0], "rank": rank, "entropy": -mean, "mean": mean, "var": var,
            "in_top_k": rank <= top_k, "in_top_p": mass_above < top_p, "mass_above": mass_above}
