"""GaLore: Adam with its moments kept in a low-rank projection of each matrix gradient.

Zhao et al. (2024), "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", ICML.
For a 2-D parameter with gradient G (m, n) and r = min(rank, m, n):

- every ``update_every`` steps (at steps 0, T, 2T, ... counted before the update, as the reference code
  does) the projector is refreshed from the SVD of the *current* gradient, G = U S V^T
  (``torch.linalg.svd``): P = U_r (m, r) when m <= n ("left"), else Q = V_r (n, r) ("right");
- the projected gradient R = P^T G (r, n) or G Q (m, r) drives Adam: M and V (same shape as R) are
  updated and bias-corrected exactly as in ``torch.optim.Adam`` (eps added after the bias-corrected
  square root); the moments are kept across projector refreshes (not rotated or reset), as in the paper;
- the Adam direction N = M_hat / (sqrt(V_hat) + eps) is projected back and scaled:
  W <- W - lr * scale * P N (or N Q^T); decoupled weight decay, if any, is W <- W (1 - lr wd) first.

``projection="random"`` replaces the SVD by a random orthonormal P (reduced QR of a Gaussian (m, r) or
(n, r), same side and same refresh schedule), drawn from ``make_generator(seed, "galore-random", i, k)``
for the i-th parameter (in parameter-group order) at its k-th refresh: a null with GaLore's rank, memory
and schedule but no information from the gradient's spectrum (stateless, so a resumed run draws the same).

Other parameters (1-D, >= 3-D, and every parameter of a group whose ``rank`` is None) get plain Adam.
With a fixed projector GaLore is exactly Adam on the coordinates Z of W = W_0 + P Z (learning rate
``lr * scale``). It is *not* Adam even at full rank r = min(m, n) unless P is a signed permutation,
because Adam's second moment is elementwise in whichever basis it lives in.

Three choices differ from the reference code (github.com/jiaweizzhao/GaLore, ``galore_torch/adamw.py``):
eps is added as in ``torch.optim.Adam`` (after the bias-corrected square root; the reference inherits the
Hugging Face AdamW form sqrt(V) + eps with the correction folded into the step size); weight decay comes
before the update, as in ``torch.optim.AdamW`` (the reference decays the updated weight); and a square
matrix is projected on the left (the reference projects on the right when m >= n; both keep r x n
moments for a square matrix).

``state_bytes()`` sums ``numel * element_size`` over every tensor in the optimizer's state (moments,
projectors, step counters): a measurement of what is held, not a formula. :func:`adam_state_bytes`
measures a ``torch.optim.Adam`` (or any optimizer) the same way.
"""

from __future__ import annotations

import math

import torch

from neumo.errors import NeumoError, check_choice, check_positive
from neumo.seeding import make_generator

PROJECTIONS = ("svd", "random")


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor held in ``optimizer.state`` (each tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for state in optimizer.state.values():
        for v in state.values():
            if torch.is_tensor(v) and id(v) not in seen:
                seen.add(id(v))
                total += v.numel() * v.element_size()
    return total


def adam_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Measured state bytes of a plain ``torch.optim.Adam`` (the same count as :meth:`GaLore.state_bytes`)."""
    return optimizer_state_bytes(optimizer)


def _random_projector(grad: torch.Tensor, r: int, left: bool, generator: torch.Generator) -> torch.Tensor:
    n = grad.shape[0] if left else grad.shape[1]
    Q, R = torch.linalg.qr(torch.randn(n, r, generator=generator, dtype=torch.float64))
    Q = Q * torch.sign(torch.diagonal(R))  # the unique QR (diag(R) > 0)
    return Q.to(grad.dtype).contiguous()


def _projector(grad: torch.Tensor, r: int, left: bool) -> torch.Tensor:
    g = grad.detach()
    work = g if g.dtype in (torch.float32, torch.float64) else g.float()
    U, _, Vh = torch.linalg.svd(work, full_matrices=False)
    P = U[:, :r] if left else Vh[:r].T  # (m, r) or (n, r)
    return P.to(g.dtype).contiguous()


class GaLore(torch.optim.Optimizer):
    """Adam with GaLore gradient projection for 2-D parameters (see the module docstring).

    Options (also per parameter group): ``lr``, ``rank`` (int >= 1, or None for plain Adam),
    ``update_every`` (T, steps between projector refreshes), ``scale`` (alpha), ``betas``, ``eps``,
    ``weight_decay`` (decoupled, AdamW-style), ``projection`` (``"svd"``, or ``"random"`` for the null
    described in the module docstring, drawn from ``seed``).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        rank: int | None = 128,
        update_every: int = 200,
        scale: float = 0.25,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        projection: str = "svd",
        seed: int = 0,
    ):
        defaults = dict(
            lr=lr,
            rank=rank,
            update_every=update_every,
            scale=scale,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            projection=projection,
        )
        self.seed = int(seed)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        rank = g["rank"]
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
            raise NeumoError(
                f"The 'rank' parameter must be an integer >= 1 or None (plain Adam). Got {rank!r} instead."
            )
        if isinstance(g["update_every"], bool) or not isinstance(g["update_every"], int):
            raise NeumoError(
                f"The 'update_every' parameter must be an integer >= 1. Got {g['update_every']!r} instead."
            )
        check_positive("update_every", g["update_every"])
        check_positive("scale", g["scale"])
        check_positive("lr", g["lr"], allow_zero=True)
        check_positive("eps", g["eps"], allow_zero=True)
        check_positive("weight_decay", g["weight_decay"], allow_zero=True)
        check_choice("projection", g["projection"], PROJECTIONS)
        b1, b2 = g["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise NeumoError(f"The 'betas' parameter must be two numbers in [0, 1). Got {g['betas']!r} instead.")

    def state_bytes(self) -> int:
        """Measured bytes of every tensor in this optimizer's state, projectors included."""
        return optimizer_state_bytes(self)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        i = -1
        for group in self.param_groups:
            for p in group["params"]:
                i += 1
                if p.grad is not None:
                    if p.grad.is_sparse:
                        raise NeumoError("GaLore does not support sparse gradients; use dense ones")
                    self._update(p, group, i)
        return loss

    def _update(self, p: torch.Tensor, group: dict, index: int = 0) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[p]
        g = p.grad
        assert g is not None  # step() updates only the parameters that have a gradient
        projected = group["rank"] is not None and p.dim() == 2
        if not state:
            state["step"] = torch.tensor(0.0)
        t = int(state["step"].item())
        if projected:
            m, n = p.shape
            left = m <= n
            if t % group["update_every"] == 0 or "projector" not in state:
                r = min(group["rank"], m, n)
                if group["projection"] == "random":
                    gen = make_generator(self.seed, "galore-random", index, t // group["update_every"])
                    state["projector"] = _random_projector(g, r, left, gen)
                else:
                    state["projector"] = _projector(g, r, left)
            P = state["projector"]
            g = P.T @ g if left else g @ P  # (r, n) or (m, r)
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(g, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(g, memory_format=torch.preserve_format)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t += 1
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**t)).add_(group["eps"])
        direction = exp_avg / denom / (1 - beta1**t)  # Adam's bias-corrected direction
        if projected:
            direction = group["scale"] * (P @ direction if left else direction @ P.T)  # back to (m, n)
        if group["weight_decay"]:
            p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(direction, alpha=-group["lr"])


__all__ = ["GaLore", "PROJECTIONS", "adam_state_bytes", "optimizer_state_bytes"]
