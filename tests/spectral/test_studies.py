"""The five spectral studies: quick presets run and give ``holds`` with seed 0 (pinned setups)."""

import pytest

from neumo.studies.registry import get_study
from neumo.studies.runner import run_study

STUDIES = ["S-updates-low-rank", "S-hessian-outliers", "S-gradient-subspace", "S-edge-of-stability",
           "S-inequality-rises"]


@pytest.mark.parametrize("study_id", STUDIES)
def test_quick_preset_holds(study_id, tmp_path):
    v = run_study(study_id, preset="quick", seeds=1, seed=0, root=tmp_path)
    assert v.status == "holds", (v.summary, [c for c in v.checks if not c.passed])
    assert v.figures and all(c.passed for c in v.checks)


@pytest.mark.parametrize("study_id", STUDIES)
def test_study_declares_claim_citation_and_presets(study_id):
    cls = get_study(study_id)
    assert cls.instrument == "spectral" and cls.claim and cls.citation
    assert {"quick", "full"} <= set(cls.presets)
    cls.Config(**cls.presets["quick"])  # quick preset validates
