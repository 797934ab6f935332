"""Explicit randomness. Library code never seeds or reads the global RNG.

Every stochastic entry point takes a ``seed`` (int) or a ``torch.Generator``. Streams that must not
overlap (train vs eval, one study seed vs another) get seeds derived by hashing a name, so that
``derive_seed(s, "train") != derive_seed(s, "eval")`` and both are stable across Python processes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from ``seed`` and a path of names (stable across runs and platforms)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(int(seed)).encode())
    for n in names:
        h.update(b"/")
        h.update(str(n).encode())
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def make_generator(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded from ``derive_seed(seed, *names)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *names) if names else int(seed))
    return g


def numpy_rng(seed: int, *names: object) -> np.random.Generator:
    """A numpy ``Generator`` on the same derivation as :func:`make_generator`."""
    return np.random.default_rng(derive_seed(seed, *names) if names else int(seed))


def as_generator(seed_or_gen: int | torch.Generator | None, *names: object) -> torch.Generator:
    """Accept a seed or a generator; ``None`` is refused so randomness is never implicit."""
    if isinstance(seed_or_gen, torch.Generator):
        return seed_or_gen
    if seed_or_gen is None:
        raise ValueError("pass an explicit seed or torch.Generator; neumo never uses the global RNG")
    return make_generator(int(seed_or_gen), *names)
