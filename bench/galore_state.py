"""GaLore vs Adam on neumo's small Transformer: measured optimizer-state bytes and step times.

Two copies of the same model (same seed) train on the same random next-token batches, one with
``torch.optim.Adam``, one with ``neumo.spectral.galore.GaLore`` (GaLore on every nn.Linear weight, plain
Adam on embeddings, norms and biases). Steps alternate between the two so that load on a shared machine
hits both alike. Prints the measured state bytes (``state_bytes()`` / ``adam_state_bytes``), the median
``optimizer.step()`` time, the mean including GaLore's SVD refreshes (every ``--update-every`` steps), and
the median time of a whole training step (forward, backward, step), in wall-clock and in this thread's
CPU time (which other processes on a loaded machine do not inflate).

    OMP_NUM_THREADS=1 .venv/bin/python bench/galore_state.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from neumo.nn import build_model
from neumo.seeding import make_generator
from neumo.spectral.galore import GaLore, adam_state_bytes


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--update-every", type=int, default=50)
    return ap.parse_args()


def main():
    a = parse()
    torch.set_num_threads(1)
    kw = dict(vocab_size=a.vocab, d_model=a.d_model, n_layers=a.n_layers, n_heads=4, max_len=a.seq)
    m_adam, m_gal = build_model("transformer", seed=0, **kw), build_model("transformer", seed=0, **kw)
    adam = torch.optim.Adam(m_adam.parameters(), lr=1e-3)
    mats = [m.weight for m in m_gal.modules() if isinstance(m, torch.nn.Linear)]
    rest = [p for p in m_gal.parameters() if not any(p is q for q in mats)]
    galore = GaLore([{"params": mats}, {"params": rest, "rank": None}], lr=1e-3, rank=a.rank,
                    update_every=a.update_every, scale=0.25)
    times = {k: {"opt": [], "total": [], "opt_cpu": [], "total_cpu": [], "loss": 0.0} for k in ("adam", "galore")}
    for step in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=make_generator(0, "bench", step))
        for name, model, opt in (("adam", m_adam, adam), ("galore", m_gal, galore)):
            t0, c0 = time.perf_counter(), time.thread_time()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
            loss.backward()
            t1, c1 = time.perf_counter(), time.thread_time()
            opt.step()
            t2, c2 = time.perf_counter(), time.thread_time()
            times[name]["opt"].append(t2 - t1)
            times[name]["total"].append(t2 - t0)
            times[name]["opt_cpu"].append(c2 - c1)
            times[name]["total_cpu"].append(c2 - c0)
            times[name]["loss"] = float(loss.detach())
    n_params = sum(p.numel() for p in m_adam.parameters())
    n_proj = sum(p.numel() for p in mats)
    sb_adam, sb_gal = adam_state_bytes(adam), galore.state_bytes()
    print(f"model: transformer d_model={a.d_model} n_layers={a.n_layers} vocab={a.vocab} seq={a.seq} "
          f"batch={a.batch}; {n_params} parameters, {n_proj} in GaLore-projected nn.Linear weights")
    print(f"GaLore rank={a.rank} update_every={a.update_every}; {a.steps} steps each, alternating")
    print(f"state bytes: adam {sb_adam}  galore {sb_gal}  ratio galore/adam {sb_gal / sb_adam:.3f}")
    med = {k: statistics.median(v["opt"]) for k, v in times.items()}
    mean = {k: statistics.fmean(v["opt"]) for k, v in times.items()}
    tot = {k: statistics.median(v["total"]) for k, v in times.items()}
    refresh = statistics.median(times["galore"]["opt"][:: a.update_every])
    print(f"optimizer.step() median: adam {med['adam'] * 1e3:.3f} ms  galore {med['galore'] * 1e3:.3f} ms  "
          f"ratio {med['galore'] / med['adam']:.2f}")
    print(f"optimizer.step() mean (incl. SVD refreshes): adam {mean['adam'] * 1e3:.3f} ms  "
          f"galore {mean['galore'] * 1e3:.3f} ms  ratio {mean['galore'] / mean['adam']:.2f}")
    print(f"galore refresh step (median of {len(times['galore']['opt'][:: a.update_every])}): {refresh * 1e3:.3f} ms")
    print(f"whole training step median: adam {tot['adam'] * 1e3:.2f} ms  galore {tot['galore'] * 1e3:.2f} ms  "
          f"ratio {tot['galore'] / tot['adam']:.2f}")
    cmed = {k: statistics.median(v["opt_cpu"]) for k, v in times.items()}
    cmean = {k: statistics.fmean(v["opt_cpu"]) for k, v in times.items()}
    ctot = {k: statistics.median(v["total_cpu"]) for k, v in times.items()}
    crefresh = statistics.median(times["galore"]["opt_cpu"][:: a.update_every])
    print(f"CPU time (this thread): step() median adam {cmed['adam'] * 1e3:.3f} / galore {cmed['galore'] * 1e3:.3f} ms "
          f"(ratio {cmed['galore'] / cmed['adam']:.2f}); mean {cmean['adam'] * 1e3:.3f} / {cmean['galore'] * 1e3:.3f} ms "
          f"(ratio {cmean['galore'] / cmean['adam']:.2f}); refresh {crefresh * 1e3:.3f} ms; whole step "
          f"{ctot['adam'] * 1e3:.2f} / {ctot['galore'] * 1e3:.2f} ms (ratio {ctot['galore'] / ctot['adam']:.2f})")
    print(f"load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"final loss: adam {times['adam']['loss']:.4f}  galore {times['galore']['loss']:.4f} "
          f"(random tokens: ln {a.vocab} = {torch.log(torch.tensor(float(a.vocab))):.4f})")


if __name__ == "__main__":
    main()
