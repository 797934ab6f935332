"""Curvature: operators (Hessian, Gauss-Newton, empirical Fisher, NTK) and algorithms over ``matvec``
(Lanczos top-k, stochastic Lanczos quadrature, Hutchinson / Hutch++ traces)."""

from neumo.spectral.curvature.critical import CriticalPoint, find_critical_point_, levenberg_marquardt_
from neumo.spectral.curvature.dense import dense_matrix, gradient_fraction
from neumo.spectral.curvature.lanczos import EigenResult, lanczos
from neumo.spectral.curvature.operators import HVP_BACKENDS, HVP_PRECISIONS, HessianOperator, MatrixOperator, Operator
from neumo.spectral.curvature.output_operators import EmpiricalFisherOperator, GaussNewtonOperator, NTKOperator
from neumo.spectral.curvature.refine import lanczos_refined
from neumo.spectral.curvature.slq import SpectralDensity, slq
from neumo.spectral.curvature.trace import TraceEstimate, hutchinson, hutchpp

__all__ = [
    "Operator",
    "MatrixOperator",
    "HessianOperator",
    "GaussNewtonOperator",
    "EmpiricalFisherOperator",
    "NTKOperator",
    "HVP_BACKENDS",
    "HVP_PRECISIONS",
    "lanczos",
    "lanczos_refined",
    "EigenResult",
    "slq",
    "SpectralDensity",
    "hutchinson",
    "hutchpp",
    "TraceEstimate",
    "dense_matrix",
    "gradient_fraction",
    "CriticalPoint",
    "find_critical_point_",
    "levenberg_marquardt_",
]
