import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from neumo.catalog import validate_document
from neumo.errors import NeumoError
from neumo.memory.bench import SweepConfig, expand, mean_ci, run_sweep, summarize


def test_mean_ci_matches_scipy_t_interval():
    v = [0.5, 0.7, 0.9, 0.6]
    m, lo, hi = mean_ci(v)
    ref = stats.t.interval(0.95, 3, loc=np.mean(v), scale=stats.sem(v))
    assert m == pytest.approx(0.675) and (lo, hi) == pytest.approx(ref)
    assert mean_ci([0.3]) == (0.3, 0.3, 0.3)
    assert all(math.isnan(x) for x in mean_ci([]))


def test_summarize_groups():
    df = pd.DataFrame({"label": ["a"] * 4, "length": [4, 4, 8, 8], "metric": "acc", "value": [1.0, 0.0, 0.5, 0.5]})
    s = summarize(df, "length", ["label"])
    assert s["mean"].tolist() == [0.5, 0.5] and s["n"].tolist() == [2, 2]
    assert s.iloc[1]["lo"] == s.iloc[1]["hi"] == 0.5


def _cfg(**kw):
    doc = {"name": "t", "curve": "capacity", "base": {"task": "parity", "task_knobs": {"length": 6},
           "train": {"steps": 20, "batch_size": 16, "lr": 0.01, "eval_every": 10}, "eval_size": 32},
           "models": {"lstm": {"model": "lstm", "model_knobs": {"hidden_size": 4}}},
           "grid": {"model_knobs.hidden_size": [2, 4]}, "x": "model_knobs.hidden_size", "seeds": 2}
    doc.update(kw)
    return SweepConfig.model_validate(doc)


def test_expand_grid_seeds_and_overrides():
    jobs = expand(_cfg())
    assert len(jobs) == 4
    assert sorted((j["config"]["model_knobs"]["hidden_size"], j["seed"]) for j in jobs) == [(2, 0), (2, 1), (4, 0), (4, 1)]


def test_bad_axis_and_bad_grid_key():
    with pytest.raises(NeumoError, match="x axis"):
        _cfg(x="task_knobs.nope")
    with pytest.raises(NeumoError, match="unknown key"):
        expand(_cfg(grid={"trian.steps": [1]}, x="trian.steps"))


def test_run_sweep_writes_table_and_plot(tmp_path):
    from neumo.runs import Run

    run = Run.create("sweep", {}, root=tmp_path)
    df = run_sweep(_cfg(), run=run)
    assert set(df["model_knobs.hidden_size"]) == {2, 4} and set(df["metric"]) == {"acc", "final_acc", "seq_acc"}
    assert (df["state_size"] == 2 * df["model_knobs.hidden_size"]).all()      # LSTM: h and c
    assert run.read_table("results").shape == df.shape
    assert (run.dir / "artifacts" / "capacity.png").is_file()


def test_process_pool_gives_same_rows_as_serial():
    cfg = _cfg(seeds=1, grid={"model_knobs.hidden_size": [2, 3]})
    a = run_sweep(cfg, workers=1).sort_values(["model_knobs.hidden_size", "metric"]).reset_index(drop=True)
    b = run_sweep(cfg, workers=2).sort_values(["model_knobs.hidden_size", "metric"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_ray_missing_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(NeumoError, match="pip install"):
        run_sweep(_cfg(), ray_address="auto")


def test_shipped_memory_configs_validate():
    from pathlib import Path

    import yaml

    import neumo

    root = Path(neumo.__file__).parent / "configs" / "memory"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        kind, cfg = validate_document(yaml.safe_load(f.read_text()), str(f))
        assert kind == "memory-sweep"
        assert expand(cfg)
