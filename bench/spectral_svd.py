"""Top-32 singular values of n x n matrices: ``auto`` (and ``randomized``) vs the exact full SVD.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_svd.py [--sizes 1024 2048 4096]
Two kinds of matrix: Gaussian (flat spectrum, the hard case) and a trained-weight-like matrix with a
decaying spectrum (sigma_i = i^-1 plus Gaussian noise at 1% scale). Errors are max relative errors of
the top-32 against the exact values.
"""

from __future__ import annotations

import argparse
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
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    print(f"{'n':>5s} {'matrix':9s} {'method':10s} {'seconds':>8s} {'speed-up':>9s} {'max rel err':>12s}")
    for n in a.sizes:
        for kind, A in matrices(n, g):
            t = time.perf_counter()
            exact = torch.linalg.svdvals(A)[: a.k]
            t_exact = time.perf_counter() - t
            print(f"{n:5d} {kind:9s} {'exact':10s} {t_exact:8.2f} {1.0:9.2f} {0.0:12.1e}")
            for method in ("auto", "randomized"):
                t = time.perf_counter()
                res = singular_values(A, k=a.k, method=method, seed=0)
                el = time.perf_counter() - t
                err = float(((res.values - exact).abs() / exact).max())
                print(f"{n:5d} {kind:9s} {method + ('=' + res.method if method == 'auto' else ''):10s} {el:8.2f} "
                      f"{t_exact / el:9.2f} {err:12.1e}")


if __name__ == "__main__":
    main()
