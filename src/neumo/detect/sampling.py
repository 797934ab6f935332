"""Generate from a CausalLM with the usual decoding transforms, from an explicit seed.

Per step, logits l are transformed as: temperature T (l / T); token-level power sampling with exponent
alpha (q^alpha renormalised = softmax(alpha * l), i.e. temperature 1/alpha: :func:`transform_logits`
applies both, so alpha = 1/T is the same distribution - tested); top-k (keep the k most probable);
top-p (keep the smallest most-probable set with mass >= p). Sequence-level power sampling (p(x)^alpha over
whole sequences, which needs MCMC) is not what this module does.
"""

from __future__ import annotations

import torch

from neumo.detect.lm.base import CausalLM
from neumo.errors import NeumoError
from neumo.seeding import make_generator


def transform_logits(
    logits: torch.Tensor, temperature: float = 1.0, alpha: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """logits (..., V) -> log-probabilities (..., V) of the decoding distribution (-inf outside support)."""
    if temperature <= 0 or alpha <= 0:
        raise NeumoError("temperature and alpha must be > 0")
    lq = torch.log_softmax(logits.double() * (alpha / temperature), dim=-1)
    if top_k and top_k < lq.shape[-1]:
        kth = lq.topk(top_k, dim=-1).values[..., -1:]
        lq = lq.masked_fill(lq < kth, float("-inf"))
    if top_p < 1.0:
        sorted_lq, order = lq.sort(dim=-1, descending=True)
        before = sorted_lq.exp().cumsum(-1) - sorted_lq.exp()  # mass ranked above
        drop = torch.zeros_like(lq, dtype=torch.bool).scatter(-1, order, before >= top_p)
        lq = lq.masked_fill(drop, float("-inf"))
    return torch.log_softmax(lq, dim=-1)


@torch.no_grad()
def generate(lm: CausalLM, prompts: list[list[int]], n_new: int, seed: int, **decoding) -> list[list[int]]:
    """Continue each prompt by ``n_new`` tokens (prompts must have equal length; start token prepended)."""
    if len({len(p) for p in prompts}) > 1:
        raise NeumoError("prompts must have equal length (cut them to a common prefix length)")
    g = make_generator(seed, "generate")
    bos = [] if lm.bos_id is None else [lm.bos_id]
    x = torch.tensor([bos + list(p) for p in prompts], dtype=torch.long)  # (B, P)
    if x.shape[1] == 0:
        raise NeumoError(f"{lm.name} has no start token: give a non-empty prompt")
    for _ in range(n_new):
        ctx = x[:, -getattr(lm, "context_len", lm.max_len) :]  # what the next token sees
        logits = lm.forward(ctx, torch.ones_like(ctx))[:, -1]  # (B, V)
        probs = transform_logits(logits, **decoding).exp()
        nxt = torch.multinomial(probs.float(), 1, generator=g)  # (B, 1)
        x = torch.cat([x, nxt], dim=1)
    return [row[len(bos) :].tolist() for row in x]
