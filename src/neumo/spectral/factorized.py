"""A factorised linear layer W = A B (or A S B) with an orthogonality penalty and Stiefel retractions.

``A``: (out, r), ``B``: (r, in) and, with ``core=True``, a trainable ``S``: (r, r). The Stiefel manifold
here is {A : A^T A = I_r} for A and {B : B B^T = I_r} for B (the rows of B, i.e. the columns of B^T).

:meth:`FactorizedLinear.retract` puts both factors back on the manifold after an optimizer step:

- ``method="qr"``: A = Q_A R_A and B^T = Q_B R_B (reduced QR, signs fixed so diag(R) > 0); A <- Q_A,
  B <- Q_B^T. With a core the triangular factors are absorbed, S <- R_A S R_B^T, so the product
  A S B (and the layer's function) is unchanged up to float rounding. Without a core nothing can absorb
  them: W = A B changes (its singular values all become 1). Two orthonormal factors alone cannot keep a
  general product; use ``core=True`` when the function must survive the retraction.
- ``method="cayley"``: the Cayley retraction (Wen & Yin 2013; Li, Fuxin & Todorovic 2020) of the step
  V = A - X taken since the last retraction from the point X it left: Y = (I - W/2)^{-1} (I + W/2) X with
  the skew W = M - M^T, M = V X^T - X (X^T V X^T) / 2, so Y = X + P_X(V) + O(|V|^2) with P_X the
  tangent projection. Y is orthonormal because (I - W/2)^{-1}(I + W/2) is orthogonal. The core, if any,
  is left as it is, so the product changes. Costs an (n, n) solve per factor (n = out or in).

The anchor X of the Cayley retraction is the pair of factors after the last retraction or
``reset_parameters_`` (non-persistent buffers); loading a state dict does not move it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neumo.errors import NeumoError, check_choice
from neumo.seeding import as_generator

RETRACTIONS = ("qr", "cayley")


def check_rank(rank, out_features: int, in_features: int, where: str = "") -> None:
    """``rank`` must be an integer in [1, min(out, in)]."""
    top = min(out_features, in_features)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= top:
        at = f" for {where}" if where else ""
        raise NeumoError(
            f"The 'rank' parameter must be an integer in [1, {top}] (min(out, in) of the "
            f"{out_features}x{in_features} weight{at}). Got {rank!r} instead."
        )


def qr_positive(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reduced QR with diag(R) >= 0 (the unique QR of a full-rank X): X = Q R, Q^T Q = I."""
    Q, R = torch.linalg.qr(X)
    d = torch.sign(torch.diagonal(R))
    d = torch.where(d == 0, torch.ones_like(d), d)
    return Q * d, d[:, None] * R


def cayley_retraction(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """The Cayley retraction of the step ``V`` at the Stiefel point ``X`` (n, p), X^T X = I."""
    n = X.shape[0]
    M = V @ X.T - 0.5 * X @ (X.T @ V @ X.T)  # (n, n)
    W = M - M.T  # skew
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    return torch.linalg.solve(eye - 0.5 * W, (eye + 0.5 * W) @ X)


class FactorizedLinear(nn.Module):
    """y = x (A S B)^T + b; A: (out, r), B: (r, in), S: (r, r) only when ``core=True``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        core: bool = False,
        seed: int | torch.Generator = 0,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__()
        check_rank(rank, out_features, in_features)
        kw = {"dtype": dtype, "device": device}
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.A = nn.Parameter(torch.empty(out_features, rank, **kw))
        self.B = nn.Parameter(torch.empty(rank, in_features, **kw))
        self.S = nn.Parameter(torch.empty(rank, rank, **kw)) if core else None
        self.bias = nn.Parameter(torch.empty(out_features, **kw)) if bias else None
        self.register_buffer("anchor_A", None, persistent=False)
        self.register_buffer("anchor_Bt", None, persistent=False)
        if not self.A.is_meta:
            self.reset_parameters_(as_generator(seed, "factorized"))

    @torch.no_grad()
    def reset_parameters_(self, generator: torch.Generator) -> None:
        """A and B^T orthonormal (QR of Gaussians), S = I, bias ~ U(-1/sqrt(in), 1/sqrt(in))."""

        def stiefel(n):
            return qr_positive(torch.randn(n, self.rank, generator=generator, dtype=torch.float64))[0]

        self.A.copy_(stiefel(self.out_features))
        self.B.copy_(stiefel(self.in_features).T)
        if self.S is not None:
            self.S.copy_(torch.eye(self.rank))
        if self.bias is not None:
            b = self.in_features**-0.5
            self.bias.copy_(torch.rand(self.out_features, generator=generator, dtype=torch.float64) * 2 * b - b)
        self._set_anchor()

    @classmethod
    def from_linear(cls, linear: nn.Linear, rank: int, core: bool = False) -> "FactorizedLinear":
        """Truncated SVD of ``linear.weight``: A = U_r S_r^{1/2}, B = S_r^{1/2} V_r^T (or A = U_r, S = S_r,
        B = V_r^T with a core, already on the manifold)."""
        W = linear.weight.detach()
        m = cls(
            linear.in_features,
            linear.out_features,
            rank,
            bias=linear.bias is not None,
            core=core,
            dtype=W.dtype,
            device=W.device,
        )
        U, s, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        U, s, Vh = U[:, :rank], s[:rank], Vh[:rank]
        with torch.no_grad():
            if core:
                assert m.S is not None  # built with a core
                m.A.copy_(U)
                m.S.copy_(torch.diag(s))
                m.B.copy_(Vh)
            else:
                m.A.copy_(U * s.sqrt())
                m.B.copy_(s.sqrt()[:, None] * Vh)
            if linear.bias is not None:
                assert m.bias is not None  # built with a bias
                m.bias.copy_(linear.bias)
        m._set_anchor()
        return m

    def _set_anchor(self) -> None:
        self.anchor_A, self.anchor_Bt = self.A.detach().clone(), self.B.detach().T.clone()

    @property
    def weight(self) -> torch.Tensor:
        """The product A (S) B, (out, in)."""
        return self.A @ self.S @ self.B if self.S is not None else self.A @ self.B

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        h = F.linear(x, self.B)  # (..., r)
        if self.S is not None:
            h = F.linear(h, self.S)
        return F.linear(h, self.A, self.bias)

    def orthogonality_penalty(self) -> torch.Tensor:
        """||A^T A - I||_F^2 + ||B B^T - I||_F^2 (differentiable)."""
        eye = torch.eye(self.rank, dtype=self.A.dtype, device=self.A.device)
        return (self.A.T @ self.A - eye).pow(2).sum() + (self.B @ self.B.T - eye).pow(2).sum()

    @torch.no_grad()
    def retract(self, method: str = "qr") -> float:
        """Put A and B^T back on the Stiefel manifold (see the module docstring for what happens to the
        product). Returns the relative change ||W_new - W_old||_F / ||W_old||_F of the product."""
        check_choice("method", method, RETRACTIONS)
        old = self.weight.detach().clone()
        if method == "qr":
            QA, RA = qr_positive(self.A)
            QB, RB = qr_positive(self.B.T)
            if self.S is not None:
                self.S.copy_(RA @ self.S @ RB.T)
            self.A.copy_(QA)
            self.B.copy_(QB.T)
        else:
            if self.anchor_A is None or self.anchor_A.shape != self.A.shape:
                raise NeumoError(
                    "the Cayley retraction needs the last point on the manifold; call "
                    "retract(method='qr') or reset_parameters_ once first"
                )
            XA, XB = self.anchor_A.to(self.A), self.anchor_Bt.to(self.B)
            self.A.copy_(cayley_retraction(XA, self.A - XA))
            self.B.copy_(cayley_retraction(XB, self.B.T - XB).T)
        self._set_anchor()
        norm = old.norm()
        return float((self.weight - old).norm() / norm) if norm > 0 else 0.0

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
            f"core={self.S is not None}, bias={self.bias is not None}"
        )


__all__ = ["FactorizedLinear", "RETRACTIONS", "check_rank", "qr_positive", "cayley_retraction"]
