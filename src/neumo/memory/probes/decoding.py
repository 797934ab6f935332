"""Linear decoding of stored items from hidden states, as a function of how long ago they were written."""

from __future__ import annotations

import numpy as np

from neumo.errors import NeumoError
from neumo.seeding import numpy_rng


def decode_over_delay(
    hidden: np.ndarray, items: np.ndarray, delays: list[int], seed: int = 0, train_frac: float = 0.5
) -> dict[int, dict[str, float]]:
    """For each delay d: a logistic-regression probe reads item x_{t-d} from h_t (B, T, D).

    Sequences are split into probe-train and probe-test halves; returns held-out accuracy and the
    majority-class baseline per delay.
    """
    from sklearn.linear_model import LogisticRegression

    B, T, D = hidden.shape
    if items.shape != (B, T):
        raise NeumoError(f"items {items.shape} must match the hidden states' (B, T) = {(B, T)}")
    if B < 4:
        raise NeumoError("decoding needs at least 4 sequences (half for fitting the probe)")
    order = numpy_rng(seed, "decode").permutation(B)
    cut = max(2, int(B * train_frac))
    tr, te = order[:cut], order[cut:]
    out = {}
    for d in delays:
        if not 0 <= d < T:
            raise NeumoError(f"delay {d} must lie in [0, {T})")
        X = hidden[:, d:]  # h_t for t >= d
        y = items[:, : T - d]  # x_{t-d}
        Xtr, ytr = X[tr].reshape(-1, D), y[tr].reshape(-1)
        Xte, yte = X[te].reshape(-1, D), y[te].reshape(-1)
        if len(np.unique(ytr)) < 2:
            acc = float((yte == ytr[0]).mean())
        else:
            clf = LogisticRegression(max_iter=500).fit(Xtr, ytr)
            acc = float(clf.score(Xte, yte))
        base = float((yte == np.bincount(ytr).argmax()).mean())
        out[int(d)] = {"acc": acc, "baseline": base}
    return out
