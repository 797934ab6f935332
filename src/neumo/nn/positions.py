"""Position encodings, all computed on the fly (no buffers), so any length works.

- ``learned``: an embedding table of ``max_len`` rows (positions beyond it are an error);
- ``sinusoidal``: Vaswani et al. 2017, added to the token embedding;
- ``rope``: rotary embedding of queries and keys (Su et al. 2021), base 10000;
- ``alibi``: linear attention biases -slope_h * (i - j) (Press et al. 2022), geometric slopes;
- ``none``: no positional signal except causal masking (NoPE, Kazemnejad et al. 2023).
"""

from __future__ import annotations

import math

import torch

POSITION_KINDS = ("learned", "sinusoidal", "rope", "alibi", "none")


def sinusoidal(T: int, d: int, device=None, dtype=torch.float32) -> torch.Tensor:  # (T, d)
    pos = torch.arange(T, device=device, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, device=device, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, i / d)
    pe = torch.zeros(T, d, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d // 2])
    return pe.to(dtype)


def rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels of ``x`` (B, H, T, hs) by position-dependent angles."""
    T, hs = x.shape[-2], x.shape[-1]
    half = hs // 2
    inv = 1.0 / (base ** (torch.arange(half, device=x.device, dtype=torch.float32) / half))
    ang = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv[None, :]  # (T, half)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return torch.cat([out, x[..., 2 * half :]], dim=-1) if hs % 2 else out


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Geometric slopes 2^(-8/n), 2^(-16/n), ... (for non powers of two: interleaved as in the paper)."""

    def pow2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        s = pow2(n_heads)
    else:
        c = 2 ** math.floor(math.log2(n_heads))
        s = pow2(c) + pow2(2 * c)[0::2][: n_heads - c]
    return torch.tensor(s, dtype=torch.float32)


def alibi_bias(n_heads: int, T: int, device=None) -> torch.Tensor:  # (H, T, T), 0 on the diagonal
    pos = torch.arange(T, device=device)
    dist = (pos[:, None] - pos[None, :]).clamp(min=0).float()
    return -alibi_slopes(n_heads).to(device)[:, None, None] * dist
