"""Top-k Hessian eigenvalues of a ~0.3M-parameter MLP: neumo vs PyHessian vs hessian-eigenthings vs curvlinops.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/spectral_hessian.py [--k 5] [--width 512] [--repeats 3]
Each method's eigenvalues are compared with a tight neumo Lanczos reference (tol 1e-10 on the residual);
the equal-accuracy criterion is a max relative error of the top-k <= 1e-3 (``--target``). neumo runs once
with its eigenvalue-error stopping rule at tol = target (no tuning against the reference). The other
methods are *tuned against the reference*, which favours them: hessian-eigenthings (a fixed number of
Lanczos steps) gets the smallest step count reaching the target (scanned in steps of 1), scipy ``eigsh``
(on neumo's and on curvlinops' HVP) the loosest ``tol`` in 1e-1, 1e-2, ... reaching it. curvlinops has
no top-k eigensolver of its own (its Lanczos routines estimate spectral densities), so its
``HessianLinearOperator`` is driven by scipy ``eigsh`` through its ``to_scipy()``.
The chosen setting of each method is then timed ``--repeats`` times, the methods interleaved in each
round, and the median wall time and CPU time (this thread's: what other processes on a loaded machine
do not inflate) are reported with the HVP count.
PyHessian draws its start vectors from the global torch RNG (we seed it; neumo never does).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from neumo.data.digits import load_digits_split
from neumo.nn import build_model
from neumo.spectral.curvature import HessianOperator, lanczos
from neumo.spectral.curvature.refine import lanczos_refined


def loss_fn(m, b):
    return F.cross_entropy(m(b[0]), b[1])


def rel_err(vals, ref):
    vals = np.sort(np.asarray(vals, dtype=float))[::-1][: len(ref)]
    return float(np.max(np.abs(vals - ref) / np.abs(ref)))


def neumo_method(model, batch, k, tol):
    def run():
        op = HessianOperator(model, loss_fn, batch)
        res = lanczos(op, k=k, tol=tol, criterion="eigenvalue", seed=0, return_vectors=False)
        return res.eigenvalues.numpy(), res.matvecs

    return run


def surrogate_method(model, batch, k, tol):
    """Lanczos on the bf16 surrogate alone: its own eigenvalue error and its cost per product."""

    def run():
        r = lanczos(HessianOperator(model, loss_fn, batch, precision="bf16"), k=k, tol=tol, criterion="eigenvalue",
                    seed=0, return_vectors=False)
        return r.eigenvalues.numpy(), r.matvecs

    return run


def refined_method(model, batch, k, tol, extra):
    """neumo's ``lanczos_refined``: Lanczos on the bf16 surrogate, then Rayleigh-Ritz with the exact Hessian on
    its top k + ``extra`` Ritz vectors, refined until the exact residual bounds meet ``tol``. HVPs counted:
    surrogate + exact."""

    def run():
        sur = HessianOperator(model, loss_fn, batch, precision="bf16")
        r = lanczos_refined(HessianOperator(model, loss_fn, batch), sur, k=k, tol=tol, extra=extra, seed=0,
                            return_vectors=False)
        assert r.converged
        return r.eigenvalues.numpy(), r.matvecs + sur.matvecs

    return run


def eigsh_method(make_op, k, tol):
    from scipy.sparse.linalg import eigsh

    def run():
        lin, count = make_op()
        vals = eigsh(lin, k=k, which="LA", tol=tol, return_eigenvectors=False, v0=np.random.default_rng(0).standard_normal(lin.shape[0]))
        return vals, count()

    return run


def neumo_scipy_op(model, batch):
    def make():
        op = HessianOperator(model, loss_fn, batch)
        return op.to_scipy(), lambda: op.matvecs

    return make


def curvlinops_op(model, batch):
    from curvlinops import HessianLinearOperator

    def make():
        params = [p for p in model.parameters() if p.requires_grad]
        H = HessianLinearOperator(model, torch.nn.CrossEntropyLoss(), params, [batch], check_deterministic=False)
        lin = H.to_scipy()
        n = {"n": 0}
        mv = lin.matvec

        class Counted(type(lin)):
            pass

        def counted(v):
            n["n"] += 1
            return mv(v)

        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(lin.shape, matvec=counted, dtype=lin.dtype), lambda: n["n"]

    return make


def eigenthings_method(model, batch, k, steps):
    import hessian_eigenthings as he

    def run():
        hop = he.HessianOperator(model, [batch], he.supervised_loss(F.cross_entropy))
        n0 = {"n": 0}
        mv = hop.matvec

        def counted_mv(v):
            n0["n"] += 1
            return mv(v)

        hop.matvec = counted_mv
        r = he.lanczos(hop, k=k, which="LA", max_iter=steps, seed=0, reorthogonalize=True)
        return r.eigenvalues.numpy(), n0["n"]

    return run


def pyhessian_method(model, batch, k):
    import sys

    from pyhessian import hessian as PyHessian

    ph = sys.modules["pyhessian.hessian"]  # the module (the package re-exports the class name)
    count = {"n": 0}
    orig = ph.hessian_vector_product

    def counted(*args, **kw):
        count["n"] += 1
        return orig(*args, **kw)

    ph.hessian_vector_product = counted

    def run():
        count["n"] = 0
        torch.manual_seed(0)
        h = PyHessian(model, torch.nn.CrossEntropyLoss(), data=batch, cuda=False)
        vals, _ = h.eigenvalues(top_n=k, tol=1e-4, maxIter=300)
        model.train()  # PyHessian switched the model to eval mode behind our back
        for p in model.parameters():  # and left graph-carrying .grad tensors (backward(create_graph=True))
            p.grad = None
        return vals, count["n"]

    return run


def tune_steps(make_run, ref, target, lo, hi):
    """Smallest step count in [lo, hi] whose run reaches ``target`` (coarse steps of 5, then down by 1)."""
    passing = None
    for s in range(lo, hi + 1, 5):
        if rel_err(make_run(s)()[0], ref) <= target:
            passing = s
            break
    if passing is None:
        return None
    best = passing
    for s in range(passing - 1, max(lo, passing - 4) - 1, -1):
        if rel_err(make_run(s)()[0], ref) <= target:
            best = s
        else:
            break
    return best


def tune_tol(make_run, ref, target):
    for tol in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        if rel_err(make_run(tol)()[0], ref) <= target:
            return tol
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--target", type=float, default=1e-3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mixed", action="store_true",
                    help="also time lanczos_refined (bf16 surrogate, exact Rayleigh-Ritz) and the surrogate alone")
    a = ap.parse_args()
    torch.set_num_threads(1)
    d = load_digits_split(0)
    x, y = d.x_train[: a.n], d.y_train[: a.n]
    batch = (x, y)
    model = build_model("mlp", seed=0, in_dim=64, out_dim=10, hidden=[a.width, a.width])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for s in range(100):  # a little training so the spectrum has outliers
        opt.zero_grad()
        loss_fn(model, batch).backward()
        opt.step()
    P = sum(p.numel() for p in model.parameters())
    load0 = os.getloadavg()
    ref = lanczos(HessianOperator(model, loss_fn, batch), k=a.k, tol=1e-10, max_iter=300).eigenvalues.numpy()
    print(f"MLP 64-{a.width}-{a.width}-10, P = {P:,}, batch {a.n}; reference top-{a.k}: {np.round(ref, 4)}")
    methods = {f"neumo lanczos (eigenvalue bound, tol {a.target:g})": neumo_method(model, batch, a.k, a.target)}
    from neumo.detect.lm import native_bf16

    if a.mixed and native_bf16():  # emulated bf16 is 50-100x slower (bench/bf16_matmul.py): no point there
        methods["neumo lanczos, bf16 surrogate alone (inexact)"] = surrogate_method(model, batch, a.k, a.target)
        for extra in (0, 2):
            methods[f"neumo lanczos_refined (bf16 surrogate, tol {a.target:g}, +{extra})"] = refined_method(
                model, batch, a.k, a.target, extra)
    elif a.mixed:
        print("--mixed skipped: this CPU has no native bf16 kernels")
    tol = tune_tol(lambda t: eigsh_method(neumo_scipy_op(model, batch), a.k, t), ref, a.target)
    if tol is not None:
        methods[f"scipy eigsh on neumo's HVP (tol {tol:g})"] = eigsh_method(neumo_scipy_op(model, batch), a.k, tol)
    try:
        tol = tune_tol(lambda t: eigsh_method(curvlinops_op(model, batch), a.k, t), ref, a.target)
        if tol is not None:
            methods[f"scipy eigsh on curvlinops' HVP (tol {tol:g})"] = eigsh_method(curvlinops_op(model, batch), a.k, tol)
    except ImportError as e:
        print(f"curvlinops not available: {e}")
    try:
        steps = tune_steps(lambda st: eigenthings_method(model, batch, a.k, st), ref, a.target, a.k + 1, 300)
        if steps is not None:
            methods[f"hessian-eigenthings lanczos ({steps} steps)"] = eigenthings_method(model, batch, a.k, steps)
    except ImportError as e:
        print(f"hessian-eigenthings not available: {e}")
    try:
        methods["PyHessian power iteration (tol 1e-4)"] = pyhessian_method(model, batch, a.k)
    except ImportError as e:
        print(f"PyHessian not available: {e}")

    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    out: dict[str, tuple] = {}
    for r in range(a.repeats):
        names = list(methods) if r % 2 == 0 else list(methods)[::-1]
        for name in names:
            gc.collect()
            t, c = time.perf_counter(), time.thread_time()
            vals, hvps = methods[name]()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.thread_time() - c)
            out[name] = (hvps, rel_err(vals, ref))
    load1 = os.getloadavg()
    med = {m: statistics.median(v) for m, v in times.items()}
    cmed = {m: statistics.median(v) for m, v in cpu.items()}
    base, cbase = med[next(iter(methods))], cmed[next(iter(methods))]
    others = [m for m in methods if not m.startswith("neumo") and out[m][1] <= a.target]
    print(f"{'method':50s} {'wall s':>7s} {'CPU s':>7s} {'HVPs':>5s} {'max rel err':>11s} {'wall / neumo':>12s} "
          f"{'CPU / neumo':>11s}")
    for name in methods:
        hvps, err = out[name]
        print(f"{name:50s} {med[name]:7.2f} {cmed[name]:7.2f} {hvps:5d} {err:11.2e} {med[name] / base:12.2f} "
              f"{cmed[name] / cbase:11.2f}")
    print("per-repeat CPU s: " + "; ".join(f"{m.split(' (')[0]}: " + " ".join(f"{v:.2f}" for v in cpu[m]) for m in methods))
    if others:
        fastest = min(others, key=cmed.__getitem__)
        print(f"fastest other library at equal accuracy (CPU time): {fastest}, {cmed[fastest] / cbase:.2f}x neumo's CPU "
              f"time ({med[fastest] / base:.2f}x wall)")
        for name in methods:
            if name.startswith("neumo") and out[name][1] <= a.target:
                print(f"  {name}: the fastest other library takes {cmed[fastest] / cmed[name]:.2f}x its CPU time")
    print(f"median of {a.repeats} interleaved repeats; load average (1, 5, 15 min) before {load0[0]:.2f} "
          f"{load0[1]:.2f} {load0[2]:.2f}, after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
