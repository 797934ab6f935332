"""Top-32 singular values of n x n matrices: ``auto`` (and ``randomized``) vs the exact full SVD.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_svd.py [--sizes 1024 2048 4096] [--repeats 3]
Two kinds of matrix: Gaussian (flat spectrum, the hard case) and a trained-weight-like matrix with a
decaying spectrum (sigma_i = i^-1 plus Gaussian noise at 1% scale). Errors are max relative errors of
the top-32 against the exact values. Each repeat times exact, ``auto`` and ``randomized`` back to back
(the order rotating between repeats, so that machine load hits all alike); medians of the times and of
the per-repeat speed-ups (exact / method) are printed, with the load average. Every method runs once on a
small matrix first, so that one-time imports (scipy's tridiagonal solver) are not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from neumo.spectral.linalg import singular_values


def matrices(n, g):
    yield "gaussian", torch.randn(n, n, generator=g) / n ** 0.5
    U, _ = torch.linalg.qr(torch.randn(n, 64, generator=g))
    V, _ = torch.linalg.qr(torch.randn(n, 64, generator=g))
    s = 1.0 / torch.arange(1, 65, dtype=torch.float32)
    yield "decaying", U @ torch.diag(s) @ V.T + 0.01 * torch.randn(n, n, generator=g) / n ** 0.5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    for method in ("lanczos", "randomized", "exact"):   # warm-up: imports, first-call allocations
        singular_values(torch.randn(600, 600, generator=g), k=4, method=method)
    load0 = os.getloadavg()
    print(f"{'n':>5s} {'matrix':9s} {'method':18s} {'median s':>9s} {'speed-up':>9s} {'per repeat':>22s} {'max rel err':>12s}")
    for n in a.sizes:
        for kind, A in matrices(n, g):
            times = {"exact": [], "auto": [], "randomized": []}
            ran, errs = {}, {}
            for r in range(a.repeats):
                order = list(times)[r % 3:] + list(times)[: r % 3]
                for method in order:
                    t = time.perf_counter()
                    if method == "exact":
                        exact = torch.linalg.svdvals(A)[: a.k]
                    else:
                        res = singular_values(A, k=a.k, method=method, seed=0)
                    times[method].append(time.perf_counter() - t)
                    if method != "exact":
                        ran[method], errs[method] = res.method, res.values
            for method, ts in times.items():
                speed = [e / t for e, t in zip(times["exact"], ts)]
                err = 0.0 if method == "exact" else float(((errs[method] - exact).abs() / exact).max())
                label = method + ("=" + ran[method] if method == "auto" else "")
                print(f"{n:5d} {kind:9s} {label:18s} {statistics.median(ts):9.3f} {statistics.median(speed):9.2f} "
                      f"{' '.join(f'{x:.2f}' for x in speed):>22s} {err:12.1e}")
    load1 = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, after "
          f"{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
