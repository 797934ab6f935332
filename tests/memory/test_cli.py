import json

import pytest
from typer.testing import CliRunner

from neumo.cli.main import app, main

runner = CliRunner()


def test_tasks_lists_every_task_with_knobs():
    from neumo.memory.tasks import task_names

    r = runner.invoke(app, ["memory", "tasks", "--json"])
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert [x["task"] for x in rows] == task_names()
    assert next(x for x in rows if x["task"] == "mqar")["knobs"]["n_pairs"] == 8


def test_run_then_extract(tmp_path):
    r = runner.invoke(app, ["memory", "run", "parity", "--model", "gru", "--set", "task_knobs.length=6", "--set", "model_knobs.hidden_size=8",
                            "--set", "train.lr=0.02", "--set", "train.steps=150", "--set", "target_acc=1.0",
                            "--set", "eval_lengths=[6,24]", "--runs-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["state_size"] == 8 and set(out["eval"]) == {"6", "24"}
    assert out["stopped_early"] and out["eval"]["24"]["acc"] == 1.0     # seeded: this GRU learns parity
    ex = runner.invoke(app, ["memory", "extract", out["run"], "--runs-dir", str(tmp_path), "--json"])
    assert ex.exit_code == 0, ex.output
    got = json.loads(ex.stdout)
    assert got["equivalent"] and got["n_states"] == 2      # a perfect model yields the 2-state parity machine
    assert (tmp_path / out["run"].split("/")[-1] / "artifacts" / "automaton_kmeans.png").is_file()


@pytest.mark.parametrize("argv,msg", [
    (["memory", "run", "parrot"], "unknown task 'parrot'"),
    (["memory", "run", "parity", "--set", "train.lr=-1"], "train.lr"),
    (["memory", "extract", "nope"], "nope"),
    (["memory", "extract", "x", "--method", "dbscan"], "'method' parameter"),
])
def test_user_errors_are_one_line_exit_2(argv, msg, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--runs-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and msg in err and "Traceback" not in err


def test_sweep_command(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("""kind: memory-sweep
name: tiny
curve: retention
base: {task: dms, task_knobs: {n_stimuli: 4}, train: {steps: 10, batch_size: 8, eval_every: 5}, eval_size: 16}
models: {gru: {model: gru, model_knobs: {hidden_size: 4}}}
grid: {task_knobs.delay: [1, 3]}
x: task_knobs.delay
seeds: 2
""")
    r = runner.invoke(app, ["memory", "sweep", str(cfg), "--runs-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["jobs"] == 4 and [s["task_knobs.delay"] for s in out["summary"]] == [1, 3]
    assert all(s["n"] == 2 for s in out["summary"])


def test_sweep_rejects_wrong_kind(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("kind: memory-run\ntask: parity\n")
    with pytest.raises(SystemExit):
        main(["memory", "sweep", str(cfg), "--runs-dir", str(tmp_path)])
    assert "needs 'kind: memory-sweep'" in capsys.readouterr().err


def test_dotted_set_keys_and_train_defaults_kept():
    from neumo.memory.train import MemoryRunConfig
    from neumo.memory.workflow import resolve_run_config

    cfg = resolve_run_config("mqar", "lstm", ["task_knobs.n_pairs=3", "model_knobs.hidden_size=16",
                                              "target_acc=0.9", "train.lr=0.05"])
    assert cfg.task_knobs == {"n_pairs": 3} and cfg.model_knobs == {"hidden_size": 16}
    assert cfg.target_acc == 0.9 and cfg.train.lr == 0.05
    assert cfg.train.steps == MemoryRunConfig().train.steps          # not reset to TrainConfig's default
