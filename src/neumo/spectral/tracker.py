"""SpectralTracker: where does learning concentrate, measured during training.

A :class:`neumo.train.Callback` (adapters for Lightning and the Hugging Face Trainer live in
:mod:`neumo.spectral.adapters`). The framework-free core is four calls: ``start(model)``,
``observe_gradients(model, step, batch, loss_fn)`` (parameter ``.grad`` holds the step's gradient),
``observe_step(model, step)`` (parameters updated) and ``table()``.

Per tracked weight (every >=2-D parameter, or those matching ``modules`` globs) it records, on the
groups' schedules (:class:`TrackerSchedule`), rows ``(run, step, module, quantity, metric, value)``:

- quantity ``W``, ``update`` (W_t - W_0), ``grad`` (step gradient), ``grad_accum`` (sum of step
  gradients): the four effective ranks; gradients also each rank over its bound min(batch, m, n);
- quantity ``energy``: ``update_share`` and ``grad_share`` per module; module ``*``:
  ``effective_modules_update`` and ``effective_modules_grad`` (1 / Herfindahl);
- quantities ``neurons_out`` / ``neurons_in`` / ``entries``: Gini, top-1% and top-10% shares, and
  ``rich_get_richer`` (Spearman of strength at t vs growth to t + rich_lag) for neurons;
- module ``*`` quantity ``hessian``: top-k eigenvalues ``eigenvalue_i``, ``grad_fraction_topk`` and its
  chance level ``chance_fraction`` = k / P;
- null baselines: at step 0 the same ranks and inequality of W_0, ranks of a Gaussian matrix of the same
  shape (quantity ``W_random``); with ``shuffled_labels=True`` the ranks of the gradient under permuted
  labels (quantity ``grad_shuffled``).

State is fixed-size (W_0, the accumulated gradient, one strength snapshot per module, and 2K flat
buffers the size of the tracked weights for the gradients and updates of the last K steps, K chosen so that
they fit in ``energy_buffer_mb``, at least 1); the table grows with the number of recorded steps only.
Between records the per-step energy work is deferred and done for K steps at once: the values are those
of step-by-step work, but each kernel runs once per K steps (on the CPU a kernel's first run after a
training step costs tens of microseconds, more than its arithmetic on a small model's weights). The rows of
deferred steps are added when the buffers are full, at each record step and the last step, and whenever
``rows``, ``table()`` or a checkpoint reads them (``energy_buffer_mb=0``: step by step). Energy rows of
float32 weights are within relative 3.9e-6 of the float64 squares
(:class:`~neumo.spectral.tracker_metrics.FlatLayout`); the other rows are float64 computations.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence, cast

import torch

from neumo.errors import NeumoError
from neumo.seeding import make_generator
from neumo.spectral.curvature import HessianOperator, gradient_fraction, lanczos
from neumo.spectral.curvature.params import loss_value
from neumo.spectral.inequality import neuron_strengths
from neumo.spectral.schedule import TrackerSchedule
from neumo.spectral.tracker_batch import batch_inequality, batch_rank_metrics, batch_rich
from neumo.spectral.tracker_metrics import (
    energy_shares,
    gradient_rank_bound,
    FlatLayout,
    n_samples_of,
    rank_metrics,
    squared_norms,
)
from neumo.train.callbacks import Callback

COLUMNS = ["run", "step", "module", "quantity", "metric", "value"]
_MAX_DEFERRED = 64  # steps whose energy work waits for one flush (records every 50 steps by default)


@dataclass
class _Deferred:
    """One step whose gradient and/or update wait in a buffer slot for :meth:`_flush` (the i-th deferred step
    uses slot i)."""

    step: int
    grad: bool = False  # the slot holds this step's gradient (not yet added to the sums)
    grad_energy: bool = False  # its energies are due
    update: bool = False  # the slot holds W_step - W_0
    update_energy: bool = False


class SpectralTracker(Callback):
    def __init__(
        self,
        modules: str | Sequence[str] | None = None,
        schedule: TrackerSchedule | dict | None = None,
        *,
        eps: float = 0.01,
        hessian_k: int = 10,
        hessian_batch: Any = None,
        hessian_params: str | Sequence[str] | None = None,
        loss_fn: Callable | None = None,
        shuffled_labels: bool = False,
        batch_size: int | None = None,
        seed: int = 0,
        run_name: str = "",
        table: str = "spectral",
        energy_buffer_mb: float = 16.0,
    ):
        if isinstance(energy_buffer_mb, bool) or not (
            isinstance(energy_buffer_mb, (int, float)) and 0 <= energy_buffer_mb < float("inf")
        ):
            raise NeumoError(
                f"energy_buffer_mb must be a finite number >= 0 (0: no deferral); got {energy_buffer_mb!r}"
            )
        self.energy_buffer_mb = float(energy_buffer_mb)
        self.patterns = [modules] if isinstance(modules, str) else (list(modules) if modules else None)
        self.schedule = schedule if isinstance(schedule, TrackerSchedule) else TrackerSchedule(**(schedule or {}))
        self.eps, self.hessian_k, self.hessian_batch = eps, hessian_k, hessian_batch
        self.hessian_params, self.loss_fn, self.shuffled_labels = hessian_params, loss_fn, shuffled_labels
        self.batch_size, self.seed, self.run_name, self.table_name = batch_size, seed, run_name, table
        self._rows: list[tuple] = []
        self._deferred: list[_Deferred] = []
        self.w0: dict[str, torch.Tensor] = {}
        self.accum: dict[str, torch.Tensor] = {}
        self.last_step: int | None = None

    # ------------------------------------------------------------------ core
    def _select(self, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
        named = {n: p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2}
        if self.patterns is not None:
            named = {n: p for n, p in named.items() if any(fnmatch.fnmatchcase(n, pat) for pat in self.patterns)}
        if not named:
            raise NeumoError(
                f"the spectral tracker found no >=2-D trainable weight matching {self.patterns!r}; "
                f"available: {', '.join(n for n, p in model.named_parameters() if p.dim() >= 2)}"
            )
        return named

    @property
    def rows(self) -> list[tuple]:
        """The table's rows so far (deferred energy rows included)."""
        self._flush()
        return self._rows

    @rows.setter
    def rows(self, value: list[tuple]) -> None:
        self._deferred, self._rows = [], value

    def _add(self, step: int, module: str, quantity: str, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self._rows.append((self.run_name, int(step), module, quantity, k, float(v)))

    def _energy_rows(self, step: int, name: str, energies: dict[str, float]) -> None:
        shares, eff = energy_shares(energies)
        run, step, q, metric = self.run_name, int(step), "energy", f"{name}_share"
        self._rows.extend([(run, step, n, q, metric, s) for n, s in shares.items()])
        self._rows.append((run, step, "*", q, f"effective_modules_{name}", float(eff)))

    def _bind(self) -> None:
        """Per-step lists over the tracked parameters (built once, so that each step is one pass).

        When the tracked weights share one floating dtype and device, W_0 and the gradient sums move into
        flat buffers (the dicts keep views of them), and each step copies its gradient and W_t - W_0 into a
        slot of K pairs of buffers (:class:`_Deferred`); :meth:`_flush` then adds the gradients to the sums
        (one add per step, in step order, so the sums are the step-by-step ones bit for bit) and gets every
        squared norm of the K steps from one row reduction (:class:`FlatLayout`)."""
        self._names = list(self.params)
        self._plist: list[torch.Tensor] = list(self.params.values())
        self._flat = FlatLayout(self._plist) if FlatLayout.fits(self._plist) else None
        if self._flat is not None:
            flat = self._flat
            self._w0_flat, self._accum_flat = flat.buffer(), flat.buffer()
            w0, accum = flat.views(self._w0_flat), flat.views(self._accum_flat)
            with torch.no_grad():
                torch._foreach_copy_(w0, [self.w0[n] for n in self._names])
                torch._foreach_copy_(accum, [self.accum[n] for n in self._names])
            self.w0, self.accum = dict(zip(self._names, w0)), dict(zip(self._names, accum))
            per_slot = 2 * flat.size * self._plist[0].element_size()
            self._k = max(1, min(_MAX_DEFERRED, int(self.energy_buffer_mb * 2**20 // per_slot)))
            self._slots = flat.buffer(copies=2 * self._k, zero=False).view(self._k, 2, flat.size)  # [slot, grad/update]
            # the tensors of copy c = 2 * slot + (0: gradient, 1: update), copy after copy as squared_norms reads them
            self._views = [v for i in range(self._k) for j in (0, 1) for v in flat.views(self._slots[i, j])]
        self._deferred = []
        self._w0_list = [self.w0[n] for n in self._names]

    def _copy_views(self, c: int) -> list[torch.Tensor]:
        """The tracked tensors' views into copy ``c`` of the slot buffers."""
        nt = len(self._names)
        return self._views[c * nt : (c + 1) * nt]

    def start(self, model: torch.nn.Module) -> None:
        self.params = self._select(model)
        self.w0 = {n: p.detach().clone() for n, p in self.params.items()}
        self.accum = {n: torch.zeros_like(p, memory_format=torch.contiguous_format) for n, p in self.params.items()}
        self.snapshot = {n: neuron_strengths(p) for n, p in self.params.items()}
        self._grad_energy: dict[str, float] = {}
        self._bind()
        rand = [
            torch.randn(p.shape, generator=make_generator(self.seed, "tracker-random", i), dtype=torch.float64)
            for i, p in enumerate(self._plist)
        ]
        ranks = batch_rank_metrics([*self._plist, *rand], self.eps)
        ineq = batch_inequality(self._plist, [self.snapshot[n] for n in self._names])
        for i, n in enumerate(self._names):
            self._add(0, n, "W", ranks[i])
            self._add(0, n, "W_random", ranks[len(self._names) + i])
            for (q, m), v in ineq[i].items():
                self._add(0, n, q, {m: v})

    def observe_gradients(
        self, model: torch.nn.Module, step: int, batch: Any = None, loss_fn: Callable | None = None, last: bool = False
    ) -> None:
        """Call with the step's gradient in ``.grad`` (before the optimizer step)."""
        sch, loss_fn = self.schedule, loss_fn or self.loss_fn
        want_ranks, want_energy = sch.due("ranks", step, last), sch.due("energy", step, last)
        grads = [p.grad for p in self._plist]
        flat = self._flat
        if flat is not None and all(g is not None and g.dtype == flat.dtype for g in grads):
            if len(self._deferred) == self._k:
                self._flush()
            gviews = self._copy_views(2 * len(self._deferred))
            self._deferred.append(_Deferred(step, grad=True, grad_energy=want_energy))
            with torch.no_grad():  # one copy into a free slot; the rest waits for _flush
                torch._foreach_copy_(gviews, cast(list[torch.Tensor], grads))
            if want_ranks:  # the ranks read the gradient sums
                self._flush()
            live = list(zip(self._names, self._plist, gviews))
        else:  # some weight has no gradient (or another dtype): per tensor, over those that have one
            self._flush()
            live = [(n, p, g) for n, p, g in zip(self._names, self._plist, grads) if g is not None]
            if live:
                names, _, gs = zip(*live)
                if want_energy:  # params without a gradient keep their last energy (as they always did)
                    self._grad_energy.update(zip(names, squared_norms(gs)))
                with torch.no_grad():  # after the norms: the gradients they read are still in cache
                    torch._foreach_add_([self.accum[n] for n in names], list(gs))
        if want_ranks and live:
            n_samples = self.batch_size or (n_samples_of(batch) if batch is not None else None)
            bounds = [gradient_rank_bound(p.shape, n_samples) for _, p, _ in live]
            mats = [g for _, _, g in live] + [self.accum[n] for n, _, _ in live]
            r = batch_rank_metrics(mats, self.eps, bounds + bounds)
            for i, (n, _, _) in enumerate(live):
                self._add(step, n, "grad", r[i])
                self._add(step, n, "grad_accum", r[len(live) + i])
        if want_ranks and self.shuffled_labels:
            n_samples = self.batch_size or (n_samples_of(batch) if batch is not None else None)
            self._shuffled(model, step, batch, loss_fn, n_samples)
        if sch.due("hessian", step, last):
            self._hessian(model, step, batch, loss_fn)

    def observe_step(self, model: torch.nn.Module, step: int, last: bool = False) -> None:
        """Call after the optimizer step (parameters hold W_step)."""
        sch = self.schedule
        want_energy, want_ranks = sch.due("energy", step, last), sch.due("ranks", step, last)
        want_ineq = sch.due("inequality", step, last)
        want_rich = bool(sch.rich_lag) and step % sch.rich_lag == 0
        flat = self._flat
        if flat is not None:
            if want_energy or want_ranks:
                last_e = self._deferred[-1] if self._deferred else None
                if last_e is None or last_e.step != step or last_e.update:  # no slot holds this step's gradient
                    if len(self._deferred) == self._k:
                        self._flush()
                    self._deferred.append(_Deferred(step))
                e, slot = self._deferred[-1], len(self._deferred) - 1
                e.update, e.update_energy = True, want_energy
                diffs = self._copy_views(2 * slot + 1)
                with torch.no_grad():  # W_t - W_0 elementwise, as before, from the fresh W_t
                    for d, p, w in zip(diffs, self._plist, self._w0_list):
                        torch.sub(p, w, out=d)
            if want_ranks or want_ineq or want_rich or last or len(self._deferred) == self._k:
                self._flush()
        elif want_energy or want_ranks:
            with torch.no_grad():
                diffs = list(torch._foreach_sub(self._plist, self._w0_list))
            if want_energy:
                self._energy_rows(step, "update", dict(zip(self._names, squared_norms(diffs))))
                if self._grad_energy:
                    self._energy_rows(step, "grad", self._grad_energy)
        if not (want_ranks or want_ineq or want_rich):
            self.last_step = step
            return
        k = len(self._names)
        if want_ranks:
            ranks = batch_rank_metrics([*self._plist, *diffs], self.eps)
        now = [neuron_strengths(p) for p in self._plist] if (want_ineq or want_rich) else []
        ineq = batch_inequality(self._plist, now) if want_ineq else []
        rich = batch_rich([self.snapshot[n] for n in self._names], now) if want_rich else []
        for i, n in enumerate(self._names):
            if want_ranks:
                self._add(step, n, "W", ranks[i])
                self._add(step, n, "update", ranks[k + i])
            if want_ineq:
                for (q, m), v in ineq[i].items():
                    self._add(step, n, q, {m: v})
            if want_rich:
                for side in ("out", "in"):
                    self._add(step, n, f"neurons_{side}", {"rich_get_richer": rich[i][side]})
                self.snapshot[n] = now[i]
        self.last_step = step

    def _flush(self) -> None:
        """Finish the deferred steps in step order: the gradient sums, the energies and their rows."""
        pend, flat = self._deferred, self._flat
        if not pend or flat is None:
            return
        self._deferred = []
        n, nt = len(pend), len(self._names)
        with torch.no_grad():
            for i, e in enumerate(pend):
                if e.grad:
                    self._accum_flat.add_(self._slots[i, 0])
        used = [2 * i for i, e in enumerate(pend) if e.grad and e.grad_energy]
        used += [2 * i + 1 for i, e in enumerate(pend) if e.update and e.update_energy]
        if not used:
            return
        vals = flat.squared_norms(self._slots[:n].reshape(-1), self._views[: 2 * n * nt], check=used)
        for i, e in enumerate(pend):
            if e.grad and e.grad_energy:
                self._grad_energy.update(zip(self._names, vals[2 * i * nt : (2 * i + 1) * nt]))
            if e.update and e.update_energy:
                upd = vals[(2 * i + 1) * nt : (2 * i + 2) * nt]
                self._energy_rows(e.step, "update", dict(zip(self._names, upd)))
                if self._grad_energy:
                    self._energy_rows(e.step, "grad", self._grad_energy)

    # ------------------------------------------------------------------ optional measurements
    def _hessian(self, model, step, batch, loss_fn) -> None:
        hb = self.hessian_batch if self.hessian_batch is not None else batch
        if loss_fn is None or hb is None:
            raise NeumoError(
                "the Hessian schedule needs a loss_fn and a batch: pass loss_fn= (and hessian_batch=) "
                "to SpectralTracker, or set schedule hessian=0"
            )
        op = HessianOperator(model, loss_fn, hb, params=self.hessian_params)
        res = lanczos(op, k=min(self.hessian_k, op.size), which="LA", tol=1e-4, seed=self.seed)
        assert res.eigenvectors is not None  # return_vectors=True
        grads = [p.grad for p in op.params]
        g = (
            torch.cat([(torch.zeros_like(p) if gr is None else gr).reshape(-1) for gr, p in zip(grads, op.params)])
            if self.hessian_batch is None
            else op.gradient()
        )
        vals = {f"eigenvalue_{i + 1}": float(v) for i, v in enumerate(res.eigenvalues)}
        vals.update(
            grad_fraction_topk=gradient_fraction(g, res.eigenvectors),
            chance_fraction=len(vals) / op.size,
            hessian_matvecs=res.matvecs,
            hessian_converged=float(res.converged),
        )
        self._add(step, "*", "hessian", vals)

    def _shuffled(self, model, step, batch, loss_fn, n_samples) -> None:
        if loss_fn is None or not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise NeumoError("shuffled_labels=True needs a loss_fn and batches of the form (inputs, labels)")
        x, y = batch
        perm = torch.randperm(y.shape[0], generator=make_generator(self.seed, "shuffled-labels", step))
        with torch.enable_grad():
            loss = loss_value(loss_fn(model, (x, y[perm])))
            grads = torch.autograd.grad(loss, list(self.params.values()), allow_unused=True)
        for (n, p), g in zip(self.params.items(), grads):
            if g is not None:
                self._add(step, n, "grad_shuffled", rank_metrics(g, self.eps, gradient_rank_bound(p.shape, n_samples)))

    # ------------------------------------------------------------------ output
    def table(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=COLUMNS)  # rows: deferred steps included

    def write(self, run) -> None:
        if run is not None:
            run.write_table(self.table_name, self.table())

    # ------------------------------------------------------------------ checkpoints (neumo.train)
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """What a resumed fit needs: W0, the gradient sums, the neuron snapshots and the rows so far."""
        if not getattr(self, "params", None):
            return {}
        self._flush()
        out: dict[str, torch.Tensor] = {}
        for n in self.params:
            out[f"w0.{n}"], out[f"accum.{n}"] = self.w0[n].clone(), self.accum[n].clone()  # views of one buffer
            for side, v in self.snapshot[n].items():
                out[f"snapshot.{side}.{n}"] = v
        state = {"rows": self._rows, "last_step": self.last_step, "grad_energy": self._grad_energy}
        out["state_json"] = torch.frombuffer(bytearray(json.dumps(state).encode()), dtype=torch.uint8)
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Kept until ``on_fit_start`` binds the model's parameters (the checkpoint is loaded first)."""
        self._pending = dict(tensors) if tensors else None

    def _restore(self, model: torch.nn.Module, t: dict[str, torch.Tensor]) -> None:
        self.params = self._select(model)
        missing = [n for n in self.params if f"w0.{n}" not in t]
        if missing:
            raise NeumoError(
                f"the checkpoint's tracker state has no {missing[0]!r}: it was saved with other "
                "tracked modules; resume with the same tracker settings"
            )
        self.w0 = {n: t[f"w0.{n}"].clone() for n in self.params}
        self.accum = {n: t[f"accum.{n}"].clone() for n in self.params}
        self.snapshot = {n: {side: t[f"snapshot.{side}.{n}"].clone() for side in ("out", "in")} for n in self.params}
        state = json.loads(bytes(t["state_json"].tolist()).decode())
        self.rows = [tuple(r) for r in state["rows"]]
        self.last_step, self._grad_energy = state["last_step"], state["grad_energy"]
        self._bind()

    # ------------------------------------------------------------------ neumo.train hooks
    def on_fit_start(self, trainer, state) -> None:
        self.run_name = self.run_name or (getattr(trainer.run, "id", "") if trainer.run is not None else "")
        pending = getattr(self, "_pending", None)
        if pending:
            self._restore(trainer.model, pending)
            self._pending = None
        elif not getattr(self, "params", None):
            self.start(trainer.model)

    def on_after_backward(self, trainer, state) -> None:
        self.observe_gradients(
            trainer.model, state.step, state.batch, self.loss_fn or trainer.loss_fn, last=state.step == trainer.steps
        )

    def on_after_optimizer_step(self, trainer, state) -> None:
        self.observe_step(trainer.model, state.step, last=state.step == trainer.steps)

    def on_fit_end(self, trainer, state) -> None:
        self.write(trainer.run)


__all__ = ["SpectralTracker", "TrackerSchedule", "COLUMNS"]
