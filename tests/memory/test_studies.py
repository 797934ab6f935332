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


# The quick training sections as they were when presets had to repeat every field (before presets merged
# onto the study's own defaults): the shorter presets must resolve to exactly these.
QUICK_TRAIN = {
    "S-parity-extrapolation": {"rnn_train": dict(steps=400, batch_size=64, lr=1e-2, eval_every=50),
                               "transformer_train": dict(steps=200, batch_size=64, lr=3e-3, eval_every=100)},
    "S-fsm-extraction": {"train": dict(steps=600, batch_size=64, lr=1e-2, eval_every=50)},
    "S-recall-capacity": {"rnn_train": dict(steps=300, batch_size=64, lr=1e-2, eval_every=50),
                          "transformer_train": dict(steps=300, batch_size=64, lr=3e-3, eval_every=50)},
    "S-memory-helps": {"train": dict(steps=300, batch_size=64, lr=3e-3, eval_every=50)},
    "S-attention-dilution": {"train": dict(steps=250, batch_size=64, lr=3e-3, eval_every=50)},
}


@pytest.mark.parametrize("sid", STUDIES)
def test_quick_preset_resolves_to_whole_training_sections(sid):
    from neumo.studies.registry import get_study
    from neumo.studies.runner import resolve_config
    from neumo.train import TrainConfig

    study = get_study(sid)
    quick = resolve_config(study, "quick")
    for name, fields in QUICK_TRAIN[sid].items():
        assert getattr(quick, name) == TrainConfig(**fields), name
    full = resolve_config(study, "full")
    assert full == study.Config()
    for key in study.presets["quick"]:        # every quick field is set and differs from the full preset
        assert getattr(quick, key) != getattr(full, key), key
