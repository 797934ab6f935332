"""Training-step time of the small character Transformer with the SpectralTracker (default schedule) vs without.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_tracker_overhead.py [--steps 300] [--repeats 5] [--batch 32]
                                                                           [--mode steps|fits]
Both sides train the same model from the same seed on the same batches.

- ``--mode steps`` (default): the two models train side by side, one step of each in turn (the order
  alternating every step), so that machine load hits both alike even on a busy machine. The tracked side
  calls the tracker's framework-free core exactly where ``neumo.train.Trainer`` calls it (``start``;
  ``observe_gradients`` after backward; ``observe_step`` after the optimizer step); its time includes
  ``start`` (the step-0 baselines). Also printed: the time spent inside the tracker over the plain time.
- ``--mode fits``: whole ``Trainer.fit`` runs, plain and tracked back to back (order alternating between
  repeats); noisy under load.

Per-repeat overheads (tracked / plain - 1) in wall-clock and in this thread's CPU time (which other
processes on a loaded machine do not inflate), their medians, and the load average are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


cpu_inside = {"start": 0.0, "step": 0.0, "record": 0.0}  # CPU seconds inside the tracker, summed over repeats


def interleaved(tok, batch_fn, steps, seq_len):
    """(plain seconds, tracked seconds, seconds inside the tracker, rows, plain CPU s, tracked CPU s) of one
    side-by-side run (CPU: this thread's time, which other processes on a loaded machine do not inflate)."""
    def side():
        m = make(tok, seq_len)
        return m, torch.optim.Adam(m.parameters(), lr=3e-3)

    def one_step(m, opt, b):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(b[0]).reshape(-1, tok.vocab_size), b[1].reshape(-1)).backward()

    (mp, op), (mt, ot), tr = side(), side(), SpectralTracker()
    t0, c0 = time.perf_counter(), time.thread_time()
    tr.start(mt)
    t_tracked = t_inside = time.perf_counter() - t0
    c_tracked, c_plain = time.thread_time() - c0, 0.0
    cpu_inside["start"] += c_tracked
    t_plain = 0.0
    for step in range(1, steps + 1):
        b, last = batch_fn(step - 1), step == steps
        for which in ((0, 1) if step % 2 else (1, 0)):
            t0, c0 = time.perf_counter(), time.thread_time()
            if which == 0:
                one_step(mp, op, b)
                op.step()
                t_plain += time.perf_counter() - t0
                c_plain += time.thread_time() - c0
            else:
                one_step(mt, ot, b)
                t1, u1 = time.perf_counter(), time.thread_time()
                tr.observe_gradients(mt, step, b, last=last)
                t2, u2 = time.perf_counter(), time.thread_time()
                ot.step()
                t3, u3 = time.perf_counter(), time.thread_time()
                tr.observe_step(mt, step, last=last)
                t4, u4 = time.perf_counter(), time.thread_time()
                record = any(tr.schedule.due(g, step, last) for g in ("ranks", "inequality")) or (
                    tr.schedule.rich_lag and step % tr.schedule.rich_lag == 0)
                cpu_inside["record" if record else "step"] += (u2 - u1) + (u4 - u3)
                t_tracked += t4 - t0
                c_tracked += time.thread_time() - c0
                t_inside += (t2 - t1) + (t4 - t3)
    return t_plain, t_tracked, t_inside, len(tr.rows), c_plain, c_tracked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--mode", choices=("steps", "fits"), default="steps")
    a = ap.parse_args()
    torch.set_num_threads(1)
    text = " ".join(human_documents("lee_background"))
    tok = CharTokenizer.fit(text)
    batch_fn = char_lm_batches(tok.encode(text), a.seq_len, a.batch, 0)
    plain, tracked, ratios, inside, rows, table_s, cpu_ratios, cpu_plain = [], [], [], [], 0, 0.0, [], []
    load0 = os.getloadavg()
    timed_fit(tok, batch_fn, 5, a.seq_len, None)  # warm-up
    for r in range(a.repeats if a.mode == "steps" else 0):
        p, t, i, rows, cp, ct = interleaved(tok, batch_fn, a.steps, a.seq_len)
        cpu_ratios.append(ct / cp)
        cpu_plain.append(cp)
        plain.append(p)
        tracked.append(t)
        ratios.append(t / p)
        inside.append(i / p)
    for r in range(a.repeats if a.mode == "fits" else 0):
        tr = SpectralTracker()
        if r % 2 == 0:
            p, t = timed_fit(tok, batch_fn, a.steps, a.seq_len, None), timed_fit(tok, batch_fn, a.steps, a.seq_len, tr)
        else:
            t, p = timed_fit(tok, batch_fn, a.steps, a.seq_len, tr), timed_fit(tok, batch_fn, a.steps, a.seq_len, None)
        plain.append(p)
        tracked.append(t)
        ratios.append(t / p)
        rows = len(tr.rows)
        t0 = time.perf_counter()
        tr.table()
        table_s = time.perf_counter() - t0
    load1 = os.getloadavg()
    ms = 1e3 / a.steps
    print(f"mode {a.mode}: Transformer d64 L2, batch {a.batch}x{a.seq_len}, {a.steps} steps x {a.repeats} repeats, "
          f"default schedule {SpectralTracker().schedule.model_dump()}, {rows} rows per run")
    print("per-repeat overhead %: " + " ".join(f"{100 * (x - 1):+.1f}" for x in ratios))
    if cpu_ratios:
        print("per-repeat CPU-time overhead %: " + " ".join(f"{100 * (x - 1):+.1f}" for x in cpu_ratios)
              + f" (median {100 * (statistics.median(cpu_ratios) - 1):.1f}; median plain CPU "
              f"{statistics.median(cpu_plain) * ms:.1f} ms/step)")
    if cpu_ratios:
        tot = sum(cpu_plain)
        print("CPU time inside the tracker / plain CPU time %: "
              + ", ".join(f"{k} {100 * v / tot:.2f}" for k, v in cpu_inside.items()))
    if inside:
        print("per-repeat time inside the tracker / plain time %: " + " ".join(f"{100 * x:.1f}" for x in inside)
              + f" (median {100 * statistics.median(inside):.1f})")
    print(f"median plain {statistics.median(plain) * ms:.1f} ms/step, median tracked {statistics.median(tracked) * ms:.1f}"
          f" ms/step, median overhead {100 * (statistics.median(ratios) - 1):.1f}%"
          + (f"; table() after the fit {table_s * 1e3:.0f} ms (not in the fit time)" if a.mode == "fits" else ""))
    print(f"load average (1, 5, 15 min) before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
