"""Studies: claims -> experiments -> verdicts. See :mod:`neumo.studies.base` for the contract."""

from neumo.studies.base import (
    CheckResult,
    CheckSpec,
    Estimate,
    GateResult,
    GateSpec,
    Measurement,
    Study,
    StudyContext,
    Thresholds,
    Verdict,
)
from neumo.studies.registry import all_studies, get_study, register_study

__all__ = [
    "CheckResult",
    "CheckSpec",
    "Estimate",
    "GateResult",
    "GateSpec",
    "Measurement",
    "Study",
    "StudyContext",
    "Thresholds",
    "Verdict",
    "all_studies",
    "get_study",
    "register_study",
]
