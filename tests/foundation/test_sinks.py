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


needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed: pip install 'neumo[mlflow]'")


def _history(run_dir, key):
    import json as _json

    from mlflow.tracking import MlflowClient

    state = _json.loads((run_dir / "artifacts" / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    return client, state["run_id"], [(m.step, m.value) for m in client.get_metric_history(state["run_id"], key)]


@needs_mlflow
def test_mlflow_sink_logs_offline_and_survives_resume(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("NEUMO_MLFLOW_URI", raising=False)
    r = Run.create("ml", {}, root=tmp_path, sinks=("mlflow",))
    for step in (1, 2, 3):
        r.log(step, {"loss": 1.0 / step, "note": "text is skipped", "flag": True})
    # killed here (no close); a resume re-opens the run's sinks from its status.json
    again = Run.open(r.dir)
    assert again.sinks == ["mlflow"]
    again.mark_running(3)
    again.log(4, {"loss": 0.25})
    again.finish({})
    client, run_id, hist = _history(r.dir, "loss")
    assert sorted(hist) == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]     # one MLflow run across the resume
    assert client.get_run(run_id).info.status == "FINISHED"
    assert (tmp_path / "mlruns").is_dir()                                # file store under the runs root
    assert not client.get_metric_history(run_id, "flag") and not client.get_metric_history(run_id, "note")


@needs_mlflow
def test_study_units_log_to_mlflow_from_the_cli(tmp_path, capsys, monkeypatch):
    import json as _json

    from neumo.cli.main import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("NEUMO_MLFLOW_URI", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["study", "run", "F-mlp-digits", "--seeds", "1", "--set", "train.steps=20", "--set",
              "train.eval_every=10", "--set", "hidden=[16]", "--sink", "mlflow", "--runs-dir", str(tmp_path),
              "--json"])
    out, err = capsys.readouterr()
    assert e.value.code == 0, err
    run_dir = tmp_path / _json.loads(out)["run_dir"].rsplit("/", 1)[-1]
    unit = run_dir / "units" / "seed0-treatment"
    _, _, hist = _history(unit, "loss")
    assert [s for s, _ in hist] == [r["step"] for r in Run.open(unit).metrics() if "loss" in r]
    import yaml

    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["sinks"] == ["mlflow"]                                  # the saved config re-runs with it


def test_sinks_are_checked_before_any_folder(tmp_path, monkeypatch):
    from neumo.errors import NeumoError

    with pytest.raises(NeumoError, match="unknown metric sink 'wandb'"):
        Run.create("x", {}, root=tmp_path, sinks=("wandb",))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingDependencyError, match=r"neumo\[mlflow\]"):
        Run.create("x", {}, root=tmp_path, sinks=("mlflow",))
    assert not list(tmp_path.iterdir())


@needs_mlflow
@pytest.mark.parametrize("state,status", [("failed", "FAILED"), ("interrupted", "KILLED")])
def test_mlflow_run_carries_the_runs_end_state(tmp_path, monkeypatch, state, status):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("NEUMO_MLFLOW_URI", raising=False)
    r = Run.create("ml", {}, root=tmp_path, sinks=("mlflow",))
    r.log(1, {"loss": 1.0})
    r.fail("boom", state=state)
    client, run_id, _ = _history(r.dir, "loss")
    assert client.get_run(run_id).info.status == status
