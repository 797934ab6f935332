"""Per-metric schedules of the spectral tracker (every N optimizer steps; 0 switches a group off)."""

from __future__ import annotations

from pydantic import Field

from neumo.config import StrictModel


class TrackerSchedule(StrictModel):
    """Cheap metrics every step, spectra every N, curvature every M (off by default: it is expensive).

    - ``energy``: shares of update energy ||W_t - W_0||_F^2 and gradient energy per module, 1/HHI.
    - ``ranks``: four effective ranks of W, W_t - W_0, the step gradient and the accumulated gradient.
    - ``inequality``: Gini and top-1% / top-10% shares of neuron strengths and of |w_ij|.
    - ``rich_lag``: k of the rich-get-richer correlation between strength at t and growth to t + k.
    - ``hessian``: top-k Hessian eigenvalues and the gradient's fraction in their span.
    """

    energy: int = Field(1, ge=0)
    ranks: int = Field(50, ge=0)
    inequality: int = Field(50, ge=0)
    rich_lag: int = Field(50, ge=0)
    hessian: int = Field(0, ge=0)

    def due(self, group: str, step: int, last: bool = False) -> bool:
        every = getattr(self, group)
        return every > 0 and (step % every == 0 or last)
