"""Studies: claims -> experiments -> verdicts. See :mod:`neumo.studies.base` for how to add one."""

from neumo.studies.base import Check, Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import all_studies, get_study, register_study

__all__ = ["Check", "Study", "StudyContext", "Verdict", "check", "judge", "all_studies", "get_study",
           "register_study"]
