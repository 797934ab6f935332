"""The softmax bottleneck (Yang et al. 2018, ICLR): logits W h with h in R^d span at most d dimensions, so the
log-probability matrix over any set of contexts has rank <= d + 1 (the +1 is the log-normaliser, a shift
per row that centring removes). A target set of distributions whose centred log-probs have higher rank
cannot be fitted exactly; a mixture of K softmaxes (MoS) is not rank-limited and can.

Also the inner-product consequence: if e_a + e_b = e_c + e_d, then h.e_a + h.e_b = h.e_c + h.e_d for every
h, so no hidden state ranks both a and b above both c and d.
"""

from __future__ import annotations

import numpy as np
import torch

from neumo.seeding import make_generator


def centred(logp: torch.Tensor) -> torch.Tensor:
    """Subtract each row's mean (removes the per-context softmax shift)."""
    return logp - logp.mean(dim=-1, keepdim=True)


def mos_targets(n_contexts: int, vocab: int, d: int, n_mix: int, scale: float, seed: int) -> torch.Tensor:
    """Log-probabilities (n, v) drawn from a random mixture of softmaxes with hidden size d: high rank
    (the log of a mixture is not linear in h) yet exactly representable by a MoS of the same d."""
    g = make_generator(seed, "bottleneck-mos-targets")
    h = torch.randn(n_contexts, d, generator=g, dtype=torch.float64)
    W = scale * torch.randn(vocab, d, generator=g, dtype=torch.float64)
    P = torch.randn(n_mix, d, d, generator=g, dtype=torch.float64) * 2 / np.sqrt(d)
    U = torch.randn(d, n_mix, generator=g, dtype=torch.float64)
    comp = torch.log_softmax(torch.tanh(torch.einsum("kde,ne->nkd", P, h)) @ W.T, -1)  # (n, K, v)
    return torch.logsumexp(torch.log_softmax(h @ U, -1)[..., None] + comp, dim=1)


def _kl(target_logp: torch.Tensor, model_logp: torch.Tensor) -> torch.Tensor:
    return (target_logp.exp() * (target_logp - model_logp)).sum(-1).mean()


def fit_softmax(
    target_logp: torch.Tensor, d: int, steps: int, lr: float, seed: int, n_mix: int = 1, mos: str = "free"
) -> float:
    """The final KL of :func:`fit_softmax_logp` (nats per context)."""
    return fit_softmax_logp(target_logp, d, steps, lr, seed, n_mix, mos)[0]


def fit_softmax_logp(
    target_logp: torch.Tensor, d: int, steps: int, lr: float, seed: int, n_mix: int = 1, mos: str = "free"
) -> tuple[float, torch.Tensor]:
    """Fit free context vectors h (n, d) and an output layer (v, d) + bias to ``target_logp`` by minimising
    mean KL(target || model); ``n_mix`` > 1 makes it a mixture of softmaxes with the same d.

    MoS: p(.|i) = sum_k pi_ik softmax(W h_ik + b) with free h_ik in R^d and mixture logits pi_i (Yang et al.
    compute h_ik = tanh(P_k g_i) from one state g_i; free vectors are the same family with free contexts).
    ``mos="projected"`` is Yang et al.'s form: one free g_i in R^d per context, h_ik = tanh(P_k g_i + c_k) and
    pi_i = softmax(U g_i), so both models have d free numbers per context (the MoS's extra ones are shared).
    Returns the final KL (nats per context) and the fitted log-probabilities (n, v), detached."""
    n, v = target_logp.shape
    g = make_generator(seed, "bottleneck-fit", n_mix)
    p = {
        "h": torch.randn(n, d, generator=g, dtype=torch.float64) * 0.5,
        "W": torch.randn(v, d, generator=g, dtype=torch.float64) * 0.5,
        "b": torch.zeros(v, dtype=torch.float64),
    }
    if mos not in ("free", "projected"):
        raise ValueError(f"mos must be 'free' or 'projected', got {mos!r}")
    if n_mix > 1 and mos == "free":  # each component gets its own d-dimensional context vector and weight
        p["h"] = torch.randn(n, n_mix, d, generator=g, dtype=torch.float64) * 0.5
        p["pi"] = torch.zeros(n, n_mix, dtype=torch.float64)
    elif n_mix > 1:  # h holds g_i; components and weights are shared maps of it
        p["P"] = torch.randn(n_mix, d, d, generator=g, dtype=torch.float64) / np.sqrt(d)
        p["c"] = torch.zeros(n_mix, d, dtype=torch.float64)
        p["U"] = torch.randn(n_mix, d, generator=g, dtype=torch.float64) * 0.5
    for t in p.values():
        t.requires_grad_(True)
    opt = torch.optim.Adam(p.values(), lr=lr)

    def model_logp():
        if n_mix == 1:
            return torch.log_softmax(p["h"] @ p["W"].T + p["b"], -1)  # (n, v)
        if mos == "free":
            comp = torch.log_softmax(p["h"] @ p["W"].T + p["b"], -1)  # (n, K, v)
            return torch.logsumexp(torch.log_softmax(p["pi"], -1)[..., None] + comp, dim=1)  # (n, v)
        hk = torch.tanh(torch.einsum("kde,ne->nkd", p["P"], p["h"]) + p["c"])  # (n, K, d)
        comp = torch.log_softmax(hk @ p["W"].T + p["b"], -1)  # (n, K, v)
        return torch.logsumexp(torch.log_softmax(p["h"] @ p["U"].T, -1)[..., None] + comp, dim=1)

    for _ in range(steps):
        opt.zero_grad()
        loss = _kl(target_logp, model_logp())
        loss.backward()
        opt.step()
    with torch.no_grad():
        lp = model_logp()
        return float(_kl(target_logp, lp)), lp.detach()


def parallelogram_violations(e: torch.Tensor, h: torch.Tensor) -> float:
    """e (4, d) rows a, b, c, d; h (N, d). Share of h ranking both a and b above both c and d."""
    s = h @ e.T  # (N, 4)
    return float((torch.minimum(s[:, 0], s[:, 1]) > torch.maximum(s[:, 2], s[:, 3])).double().mean())


def parallelogram_defect(e: torch.Tensor) -> float:
    """||e_a + e_b - e_c - e_d|| / mean ||e_i||: 0 for an exact parallelogram."""
    return float((e[0] + e[1] - e[2] - e[3]).norm() / e.norm(dim=1).mean())
