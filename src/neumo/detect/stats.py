"""Per-token statistics from next-token logits: one pure function, shared by every detector.

For a target token x_t with model distribution q_t = softmax(logits_t):
log-prob ``log q_t(x_t)``; rank ``1 + #{v : q_t(v) > q_t(x_t)}`` (1 = argmax); entropy ``H_t = -sum q log q``;
the expected log-prob ``mu_t = sum q log q = -H_t`` and its variance ``var_t = sum q (log q)^2 - mu_t^2``
(the moments Fast-DetectGPT's analytic criterion needs, Bao et al. 2024 eq. 5); membership of x_t in the
top-k set (rank <= k) and in the top-p nucleus (the mass strictly above x_t is < p: the smallest set of
most-probable tokens whose mass reaches p contains x_t).

With ``n_samples > 0`` it also draws, at every position independently, ``n_samples`` tokens from q_t and
returns their log-probs (``sample_logprob``, (N, S)): the sampled sequences of Fast-DetectGPT's sampling
criterion (Bao et al. 2024, the scoring model as sampling model), which detectors without a closed form
over those samples (Lastde++, :mod:`neumo.detect.detectors`) need.
"""

from __future__ import annotations

import torch

TOP_K = 40
TOP_P = 0.9


def token_stats(
    logits: torch.Tensor,
    targets: torch.Tensor,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    n_samples: int = 0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """logits (N, V), targets (N,) -> dict of (N,) tensors: logprob, rank, entropy, mean, var, in_top_k,
    in_top_p, mass_above; with ``n_samples`` > 0 also sample_logprob (N, n_samples), drawn with
    ``generator`` (required then: randomness is explicit)."""
    lq = torch.log_softmax(logits, dim=-1)  # (N, V)
    q = lq.exp()
    lp = lq.gather(-1, targets[:, None])  # (N, 1)
    above = lq > lp  # (N, V) strictly more probable
    rank = above.sum(-1) + 1
    plogq = torch.where(q > 0, q * lq, torch.zeros_like(q))  # 0 log 0 = 0
    mean = plogq.sum(-1)  # E_q[log q] = -H
    centred = torch.where(q > 0, lq - mean[:, None], torch.zeros_like(q))
    var = (q * centred**2).sum(-1)  # Var_q[log q], centred for stability
    mass_above = (q * above).sum(-1)
    out = {
        "logprob": lp[:, 0],
        "rank": rank,
        "entropy": -mean,
        "mean": mean,
        "var": var,
        "in_top_k": rank <= top_k,
        "in_top_p": mass_above < top_p,
        "mass_above": mass_above,
    }
    if n_samples > 0:
        if generator is None:
            raise ValueError("sampling needs an explicit torch.Generator")
        draws = torch.multinomial(q, int(n_samples), replacement=True, generator=generator)  # (N, S)
        out["sample_logprob"] = lq.gather(-1, draws)
    return out
