"""Each memory study's quick preset runs and its claim holds (the verdicts were measured, not assumed)."""

import pytest

from neumo.studies.runner import run_study

STUDIES = ["S-parity-extrapolation", "S-fsm-extraction", "S-recall-capacity", "S-memory-helps",
           "S-attention-dilution"]


@pytest.mark.parametrize("sid", STUDIES)
def test_quick_preset_verdict(sid, tmp_path):
    v = run_study(sid, preset="quick", root=tmp_path)
    assert v.status == "holds", v.summary
    assert v.figures and all((tmp_path / v.run_dir / f).is_file() for f in v.figures)
    assert v.checks and all(c.passed for c in v.checks)


def test_full_presets_validate():
    from neumo.studies.registry import get_study
    from neumo.studies.runner import resolve_config

    for sid in STUDIES:
        full = resolve_config(get_study(sid), "full")
        quick = resolve_config(get_study(sid), "quick")
        assert full != quick
