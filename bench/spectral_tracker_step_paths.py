"""The tracker's every-step work (gradient energies + accumulation; update energies) on the bench Transformer's
tracked weights, per-tensor float64 norms vs the flat float32 row reductions the tracker uses, with cold caches.

Run: OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/spectral_tracker_step_paths.py [--rounds 15]

Before every timed call a 16 MB buffer is written (so the call starts with the caches the training step left:
cold), and the time of that eviction alone is subtracted. Variants, all in one process, interleaved:

- ``grad, per-tensor f64``: ``squared_norms`` (one fused float64 ``_foreach_norm``) + ``_foreach_add_`` into the
  gradient sums (the tracker before the flat buffers);
- ``grad, flat rows``: copy into the flat buffer, :meth:`FlatLayout.squared_norms`, one add (the tracker's
  step-by-step path, ``energy_buffer_mb=0``; by default it defers this work and does it for many steps at once);
- ``grad, per-tensor f32``: float32 ``_foreach_norm`` + ``_foreach_add_`` (not used: its accumulation order is
  the kernel's, so no bound independent of it);
- the same three for the update energies ||W_t - W_0||^2 (``_foreach_sub`` then the norms, or copy + sub_ into
  the flat buffer then its row reduction).
Printed: median microseconds per call over the rounds (20 calls each) and each ratio to the per-tensor f64 one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from neumo.data.text import CharTokenizer, char_lm_batches, human_documents
from neumo.nn import build_model
from neumo.spectral.tracker import SpectralTracker
from neumo.spectral.tracker_metrics import squared_norms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(1)
    text = " ".join(human_documents("lee_background"))
    tok = CharTokenizer.fit(text)
    b = char_lm_batches(tok.encode(text), 64, 32, 0)(0)
    m = build_model("transformer", seed=0, vocab_size=tok.vocab_size, d_model=64, n_layers=2, n_heads=4, d_ff=256,
                    max_len=64)
    F.cross_entropy(m(b[0]).reshape(-1, tok.vocab_size), b[1].reshape(-1)).backward()
    tr = SpectralTracker(energy_buffer_mb=0)  # one slot: the step-by-step path
    tr.start(m)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    fl, P, W0 = tr._flat, tr._plist, tr._w0_list
    gbuf, dbuf, gviews, dviews = tr._slots[0, 0], tr._slots[0, 1], tr._copy_views(0), tr._copy_views(1)
    grads, acc = [p.grad for p in P], [tr.accum[n] for n in tr._names]
    variants = {
        "grad, per-tensor f64": lambda: (squared_norms(grads), torch._foreach_add_(acc, grads)),
        "grad, flat rows": lambda: (torch._foreach_copy_(gviews, grads), fl.squared_norms(gbuf, gviews),
                                    tr._accum_flat.add_(gbuf)),
        "grad, per-tensor f32": lambda: (torch.stack(torch._foreach_norm(grads, 2)).double().square_().tolist(),
                                         torch._foreach_add_(acc, grads)),
        "update, per-tensor f64": lambda: squared_norms(torch._foreach_sub(P, W0)),
        "update, flat rows": lambda: (torch._foreach_copy_(dviews, P), dbuf.sub_(tr._w0_flat),
                                      fl.squared_norms(dbuf, dviews)),
        "update, per-tensor f32": lambda: torch.stack(torch._foreach_norm(torch._foreach_sub(P, W0), 2)).tolist(),
        "eviction only": lambda: None,
    }
    big = torch.zeros(4 << 20)
    res: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for _ in range(a.rounds):
            for k, f in variants.items():
                tot = 0.0
                for _ in range(20):
                    big.add_(1.0)
                    c = time.thread_time()
                    f()
                    tot += time.thread_time() - c
                res[k].append(tot / 20 * 1e6)
    base = statistics.median(res.pop("eviction only"))
    med = {k: statistics.median(v) - base for k, v in res.items()}
    print(f"{len(P)} tracked tensors, {sum(p.numel() for p in P)} elements, {a.rounds} rounds x 20 calls, cold caches")
    for k, v in med.items():
        ref = med[k.split(",")[0] + ", per-tensor f64"]
        print(f"{k:24s} {v:8.1f} us  ({v / ref:.2f} of per-tensor f64)")


if __name__ == "__main__":
    main()
