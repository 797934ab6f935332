import importlib.util

import pytest

from neumo.errors import MissingDependencyError
from neumo.runs import Run
from neumo.runs.sinks import make_sink


def test_tensorboard_sink_is_lazy_and_off_by_default(tmp_path):
    r = Run.create("plain", {}, root=tmp_path)
    assert r._sinks == [] and not (r.dir / "artifacts" / "tensorboard").exists()
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(MissingDependencyError, match=r"pip install 'neumo\[tensorboard\]'"):
            Run.create("tb", {}, root=tmp_path, sinks=("tensorboard",))
    else:
        tb = Run.create("tb", {}, root=tmp_path, sinks=("tensorboard",))
        tb.log(1, {"loss": 1.0})
        tb.close()
        assert list((tb.dir / "artifacts" / "tensorboard").glob("events.*"))


def test_unknown_sink_is_named(tmp_path):
    with pytest.raises(MissingDependencyError, match="unknown metric sink 'wandb'"):
        make_sink("wandb", tmp_path)
