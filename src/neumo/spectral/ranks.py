"""Effective ranks of a spectrum: re-exported from :mod:`neumo.ranks`.

The pure rank functions are shared machinery (DESIGN.md, layers): memory probes use them too, and one
instrument must not import another, so they live at foundation level in ``neumo/ranks.py``. This module
keeps ``neumo.spectral.ranks`` imports working.
"""

from neumo.ranks import (  # noqa: F401  (private helpers re-exported for old imports)
    RANK_NAMES,
    _as_spectrum,
    _check_eps,
    _normalised,
    as_matrix,
    eigen_ranks,
    energy_rank,
    entropy_rank,
    matrix_ranks,
    matrix_stable_rank,
    nuclear_rank,
    participation_ratio,
    spectrum_ranks,
    stable_rank,
)

__all__ = [
    "RANK_NAMES",
    "as_matrix",
    "eigen_ranks",
    "energy_rank",
    "entropy_rank",
    "matrix_ranks",
    "matrix_stable_rank",
    "nuclear_rank",
    "participation_ratio",
    "spectrum_ranks",
    "stable_rank",
]
