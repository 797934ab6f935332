"""Top-k Hessian eigenvalues of a ~0.3M-parameter MLP: neumo vs PyHessian vs hessian-eigenthings vs scipy eigsh.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_hessian.py [--k 5] [--width 512]
Each method's eigenvalues are compared with a tight neumo Lanczos reference (tol 1e-10, cross-checked by
scipy eigsh); wall time and HVP counts are measured in this process. For hessian-eigenthings (fixed
number of Lanczos steps) the smallest step count reaching 1e-3 relative accuracy is reported.
PyHessian draws its start vectors from the global torch RNG (we seed it; neumo never does).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from neumo.data.digits import load_digits_split
from neumo.nn import build_model
from neumo.spectral.curvature import HessianOperator, lanczos


def loss_fn(m, b):
    return F.cross_entropy(m(b[0]), b[1])


def rel_err(vals, ref):
    vals = np.sort(np.asarray(vals, dtype=float))[::-1][: len(ref)]
    return float(np.max(np.abs(vals - ref) / np.abs(ref)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--n", type=int, default=1024)
    a = ap.parse_args()
    torch.set_num_threads(1)
    d = load_digits_split(0)
    x, y = d.x_train[: a.n], d.y_train[: a.n]
    model = build_model("mlp", seed=0, in_dim=64, out_dim=10, hidden=[a.width, a.width])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(100):  # a little training so the spectrum has outliers
        opt.zero_grad()
        loss_fn(model, (x, y)).backward()
        opt.step()
    P = sum(p.numel() for p in model.parameters())
    ref = lanczos(HessianOperator(model, loss_fn, (x, y)), k=a.k, tol=1e-10, max_iter=300).eigenvalues.numpy()
    print(f"MLP 64-{a.width}-{a.width}-10, P = {P:,}, batch {a.n}; reference top-{a.k}: {np.round(ref, 4)}")
    rows = []

    t = time.perf_counter()
    op = HessianOperator(model, loss_fn, (x, y))
    res = lanczos(op, k=a.k, tol=1e-3, seed=0, return_vectors=False)
    rows.append(("neumo lanczos", time.perf_counter() - t, res.matvecs, rel_err(res.eigenvalues, ref)))

    from scipy.sparse.linalg import eigsh

    t = time.perf_counter()
    op = HessianOperator(model, loss_fn, (x, y))
    vals = eigsh(op.to_scipy(), k=a.k, which="LA", tol=1e-4, return_eigenvectors=False)
    rows.append(("scipy eigsh (neumo HVP)", time.perf_counter() - t, op.matvecs, rel_err(vals, ref)))

    try:
        from pyhessian import hessian as PyHessian

        import sys

        ph = sys.modules["pyhessian.hessian"]  # the module (the package re-exports the class name)
        count = {"n": 0}
        orig = ph.hessian_vector_product

        def counted(*args, **kw):
            count["n"] += 1
            return orig(*args, **kw)

        ph.hessian_vector_product = counted
        torch.manual_seed(0)
        t = time.perf_counter()
        h = PyHessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
        vals, _ = h.eigenvalues(top_n=a.k, tol=1e-4, maxIter=300)
        rows.append(("PyHessian power iteration", time.perf_counter() - t, count["n"], rel_err(vals, ref)))
        model.train()  # PyHessian switched the model to eval mode behind our back
    except ImportError as e:
        print(f"PyHessian not available: {e}")

    try:
        import hessian_eigenthings as he

        for steps in range(2 * a.k, 301, 10):
            t = time.perf_counter()
            hop = he.HessianOperator(model, [(x, y)], he.supervised_loss(F.cross_entropy))
            n0 = {"n": 0}
            mv = hop.matvec

            def counted_mv(v, mv=mv, n0=n0):
                n0["n"] += 1
                return mv(v)

            hop.matvec = counted_mv
            r = he.lanczos(hop, k=a.k, which="LA", max_iter=steps, seed=0, reorthogonalize=True)
            el = time.perf_counter() - t
            err = rel_err(r.eigenvalues.numpy(), ref)
            if err <= 1e-3:
                rows.append((f"hessian-eigenthings lanczos ({steps} steps)", el, n0["n"], err))
                break
    except ImportError as e:
        print(f"hessian-eigenthings not available: {e}")

    base = rows[0][1]
    print(f"{'method':45s} {'seconds':>8s} {'HVPs':>6s} {'max rel err':>12s} {'time / neumo':>13s}")
    for name, sec, hvps, err in rows:
        print(f"{name:45s} {sec:8.2f} {hvps:6d} {err:12.2e} {sec / base:13.2f}")


if __name__ == "__main__":
    main()
