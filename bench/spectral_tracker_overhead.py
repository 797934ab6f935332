"""Training-step time of the small character Transformer with the SpectralTracker (default schedule) vs without.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_tracker_overhead.py [--steps 200]
Both runs train the same model from the same seed on the same batches, interleaved in blocks so that
machine load affects both alike; the ratio of total times is printed.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from neumo.data.text import CharTokenizer, char_lm_batches, human_documents
from neumo.nn import build_model
from neumo.spectral.tracker import SpectralTracker
from neumo.train import Trainer


def make(tok, seq_len):
    return build_model("transformer", seed=0, vocab_size=tok.vocab_size, d_model=64, n_layers=2, n_heads=4,
                       d_ff=256, max_len=seq_len)


def timed_fit(tok, batch_fn, steps, seq_len, tracker):
    model = make(tok, seq_len)

    def loss_fn(m, b):
        return F.cross_entropy(m(b[0]).reshape(-1, tok.vocab_size), b[1].reshape(-1))

    t = time.perf_counter()
    Trainer(model, torch.optim.Adam(model.parameters(), lr=3e-3), loss_fn, batch_fn, steps,
            callbacks=[tracker] if tracker else []).fit()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(1)
    text = " ".join(human_documents("lee_background"))
    tok = CharTokenizer.fit(text)
    batch_fn = char_lm_batches(tok.encode(text), a.seq_len, a.batch, 0)
    plain, tracked, rows = 0.0, 0.0, 0
    timed_fit(tok, batch_fn, 5, a.seq_len, None)  # warm-up
    for _ in range(a.repeats):
        plain += timed_fit(tok, batch_fn, a.steps, a.seq_len, None)
        tr = SpectralTracker()
        tracked += timed_fit(tok, batch_fn, a.steps, a.seq_len, tr)
        rows = len(tr.rows)
    print(f"Transformer d64 L2, batch {a.batch}x{a.seq_len}, {a.steps} steps x {a.repeats}: "
          f"plain {plain / (a.steps * a.repeats) * 1e3:.1f} ms/step, tracked {tracked / (a.steps * a.repeats) * 1e3:.1f} "
          f"ms/step, overhead {100 * (tracked / plain - 1):.1f}% ({rows} rows per run, default schedule "
          f"{SpectralTracker().schedule.model_dump()})")


if __name__ == "__main__":
    main()
