"""Task and model knobs are typed at config time: `config validate` refuses what a run would refuse,
a sweep validates every job up front and a job that still fails becomes a row of its table."""

import math

import pytest
import yaml

from neumo.config import validate
from neumo.errors import NeumoError
from neumo.memory.bench import SweepConfig, run_sweep
from neumo.memory.bench.sweep import failed_jobs
from neumo.memory.train import MemoryRunConfig
from neumo.nn import build_model
from neumo.nn.registry import check_model


@pytest.mark.parametrize("name,kwargs,msg", [
    ("mlp", {"in_dim": 4, "out_dim": 2, "hidden": [0]}, r"hidden\[0\] must be >= 1"),
    ("mlp", {"in_dim": 4, "out_dim": 2, "hidden": [8, -5]}, r"hidden\[1\] must be >= 1"),
    ("mlp", {"in_dim": 4, "out_dim": 2, "hidden": "wide"}, "hidden"),
    ("mlp", {"in_dim": 4, "out_dim": 2, "activation": "swish"}, "activation"),
    ("transformer", {"vocab_size": 10, "d_model": 30, "n_heads": 7}, "divisible by n_heads"),
    ("transformer", {"vocab_size": 10, "pos": "spiral"}, "pos"),
    ("lstm", {"vocab_size": 10, "hidden_size": 0}, "hidden_size must be >= 1"),
    ("lstm", {"vocab_size": 10, "hiden_size": 8}, "no option"),
])
def test_model_options_are_refused_with_their_name(name, kwargs, msg):
    with pytest.raises(NeumoError, match=msg):
        build_model(name, seed=0, **kwargs)


def test_parameter_limit_names_its_variable(monkeypatch):
    monkeypatch.setenv("NEUMO_MAX_MODEL_PARAMS", "1000")
    with pytest.raises(NeumoError, match="NEUMO_MAX_MODEL_PARAMS"):
        check_model("mlp", in_dim=64, out_dim=10, hidden=[64])
    assert sum(p.numel() for p in check_model("mlp", in_dim=4, out_dim=2, hidden=[8]).parameters()) == 58


def test_check_model_allocates_nothing():
    m = check_model("mlp", in_dim=100_000, out_dim=10, hidden=[1000])   # 100M parameters, on meta
    assert all(p.is_meta for p in m.parameters())


@pytest.mark.parametrize("doc,msg", [
    ({"task": "parity", "model": "transformer", "model_knobs": {"d_model": 30, "n_heads": 7}}, "n_heads"),
    ({"task": "parity", "model": "lstm", "model_knobs": {"hidden_size": 0}}, "hidden_size"),
    ({"task": "parity", "model": "lstm", "task_knobs": {"lenght": 4}}, "lenght"),
    ({"task": "parity", "model": "lstm", "train": {"lr": 1e300}}, "lr"),
    ({"task": "parity", "model": "lstm", "train": {"batch_size": 10**12}}, "batch_size"),
    ({"task": "parity", "model": "lstm", "eval_lengths": [10**9]}, "eval_lengths"),
])
def test_memory_run_config_types_its_knobs(doc, msg):
    with pytest.raises(NeumoError, match=msg):
        validate(MemoryRunConfig, doc)


def _refused(cli, argv) -> str:
    code, _, err = cli(argv)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err, err
    return err


def test_config_validate_catches_a_bad_model_knob(tmp_path, cli):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({"kind": "memory-run", "task": "parity", "model": "transformer",
                                 "model_knobs": {"d_model": 30, "n_heads": 7}}))
    assert "n_heads" in _refused(cli, ["config", "validate", str(p)])


def _sweep(**kw):
    doc = {"name": "t", "curve": "capacity", "base": {"task": "parity", "task_knobs": {"length": 4},
           "train": {"steps": 5, "batch_size": 8, "lr": 0.01, "eval_every": 5}, "eval_size": 16},
           "models": {"lstm": {"model": "lstm", "model_knobs": {"hidden_size": 4}}},
           "grid": {"model_knobs.hidden_size": [2, 4]}, "x": "model_knobs.hidden_size", "seeds": 1}
    doc.update(kw)
    return validate(SweepConfig, doc)


def test_sweep_validates_every_job_up_front():
    with pytest.raises(NeumoError, match="hidden_size"):
        _sweep(grid={"model_knobs.hidden_size": [2, 0]})
    with pytest.raises(NeumoError, match="jobs, above the limit"):
        _sweep(grid={"seed": list(range(200)), "eval_size": list(range(1, 101))}, x="seed")


def test_a_failing_job_is_a_row_not_the_end_of_the_sweep(monkeypatch):
    import neumo.memory.bench.sweep as sweep

    real = sweep.train_on_task

    def flaky(cfg, *a, **k):
        if cfg.model_knobs["hidden_size"] == 2:
            raise FloatingPointError("loss is nan at step 3")
        return real(cfg, *a, **k)

    monkeypatch.setattr(sweep, "train_on_task", flaky)
    df = run_sweep(_sweep())
    bad = failed_jobs(df)
    assert len(bad) == 1 and bad["error"].iloc[0] == "FloatingPointError: loss is nan at step 3"
    assert bad["model_knobs.hidden_size"].iloc[0] == 2 and math.isnan(bad["value"].iloc[0])
    ok = df[df["metric"] == "acc"]
    assert set(ok["model_knobs.hidden_size"]) == {4} and ok["error"].isna().all()


def test_a_sweep_whose_jobs_all_fail_is_an_error(monkeypatch):
    import neumo.memory.bench.sweep as sweep

    monkeypatch.setattr(sweep, "train_on_task", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(NeumoError, match="all 2 jobs .* failed; the first: RuntimeError: boom"):
        run_sweep(_sweep())


def test_memory_run_set_is_dotted_only(tmp_path, cli):
    err = _refused(cli, ["memory", "run", "parity", "--set", "hidden_size=8", "--runs-dir", str(tmp_path)])
    assert "model_knobs.hidden_size" in err and not list(tmp_path.iterdir())


def test_sweep_workers_with_ray_is_refused_before_any_folder(tmp_path, cli):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"kind": "memory-sweep", "base": {"task": "parity"}, "seeds": 1}))
    runs = tmp_path / "runs"
    err = _refused(cli, ["memory", "sweep", str(p), "--workers", "2", "--ray", "auto", "--runs-dir", str(runs)])
    assert "--workers" in err and not runs.exists()
