"""The cost of Lanczos itself (basis, recurrence, reorthogonalisation, Ritz checks) without the products.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/lanczos_bookkeeping.py [--size 301066] [--steps 12] [--repeats 7]
The operator is a diagonal matrix (a product costs one elementwise multiply), so what is timed is the
bookkeeping a top-k run pays on top of its matrix-vector products: at the size of the Hessian benchmark's
MLP it is the difference between neumo's run and its products (bench/README.md). Prints the median CPU time
of ``lanczos(k=5, tol=0, max_iter=steps)`` over the repeats (this thread's time) and each repeat's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neumo.spectral.curvature import lanczos
from neumo.spectral.curvature.operators import Operator


class Diagonal(Operator):
    def __init__(self, d: torch.Tensor):
        super().__init__()
        self.d, self.size, self.dtype, self.device = d, d.numel(), d.dtype, d.device

    def _matvec(self, v):
        return self.d * v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=301_066)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    op = Diagonal(torch.linspace(0, 1, a.size) ** 8)  # a decaying spectrum, distinct eigenvalues
    lanczos(op, k=5, tol=0.0, max_iter=a.steps, return_vectors=False)  # warm-up
    cpu = []
    for _ in range(a.repeats):
        t = time.thread_time()
        r = lanczos(op, k=5, tol=0.0, max_iter=a.steps, return_vectors=False)
        cpu.append(time.thread_time() - t)
    print(f"size {a.size:,}, {r.iterations} steps, float32: median {1e3 * statistics.median(cpu):.1f} ms CPU "
          f"({1e3 * statistics.median(cpu) / r.iterations:.2f} ms per step); per repeat "
          + " ".join(f"{1e3 * c:.1f}" for c in cpu))


if __name__ == "__main__":
    main()
