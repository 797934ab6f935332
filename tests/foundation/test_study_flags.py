"""Every registered study honours or refuses --checkpoint-every / --resume / the progress bar, and a
refusal happens before any run folder exists. Nothing trains here."""
import dataclasses

import pytest

from neumo.errors import NeumoError
from neumo.studies.base import StudyContext
from neumo.studies.registry import all_studies
from neumo.studies.runner import run_study

STUDIES = sorted(all_studies())


def test_registry_is_not_empty():
    assert STUDIES


@pytest.mark.parametrize("sid", STUDIES)
def test_checkpoint_every_is_declared_or_refused_before_a_folder(sid, tmp_path):
    cls = all_studies()[sid]
    if cls.supports_checkpoints:
        return  # declared: the runner passes checkpoint_every and resume=True to its context
    with pytest.raises(NeumoError, match=f"study {sid!r} does not checkpoint; drop --checkpoint-every"):
        run_study(sid, checkpoint_every=3, seeds=1, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", [{"overrides": ["x=1"]}, {"seeds": 2}, {"checkpoint_every": 2}])
def test_resume_refuses_changed_settings_before_touching_a_run(flag, tmp_path):
    with pytest.raises(NeumoError, match="--resume continues a run with its saved config"):
        run_study(STUDIES[0], resume="no-such-run", root=tmp_path, **flag)
    assert list(tmp_path.iterdir()) == []


def test_context_carries_progress_resume_and_checkpoint_every():
    names = {f.name for f in dataclasses.fields(StudyContext)} if dataclasses.is_dataclass(StudyContext) \
        else set(StudyContext.model_fields)
    assert {"progress", "resume", "checkpoint_every"} <= names
