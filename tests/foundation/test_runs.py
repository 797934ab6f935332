import json

import pandas as pd
import pytest
import torch

from neumo.errors import RunError
from neumo.runs import Run, find_run, list_runs
from neumo.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def test_run_folder_layout_and_status(tmp_path):
    r = Run.create("demo", {"a": 1}, root=tmp_path)
    assert r.id.startswith("demo-")
    for sub in ("artifacts", "tables", "checkpoints", "config.yaml", "metrics.jsonl", "status.json"):
        assert (r.dir / sub).exists()
    assert r.config == {"a": 1}
    assert r.status()["state"] == "running"
    r.log(1, {"loss": 0.5, "t": torch.tensor(2.0), "nan": float("nan")})
    r.log(2, {"loss": 0.25})
    assert r.metrics() == [{"step": 1, "loss": 0.5, "t": 2.0, "nan": None}, {"step": 2, "loss": 0.25}]
    r.finish({"loss": 0.25})
    st = json.loads((r.dir / "status.json").read_text())
    assert st["state"] == "complete" and st["final"] == {"loss": 0.25}
    assert not list(r.dir.glob(".*.tmp")), "atomic writes leave no temp files"


def test_rewind_drops_later_rows_and_torn_lines(tmp_path):
    r = Run.create("rw", {}, root=tmp_path)
    for s in range(1, 6):
        r.log(s, {"x": s})
    r.close()
    with open(r.dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "x"')  # a torn line from a kill
    assert [m["step"] for m in r.metrics()] == [1, 2, 3, 4, 5]
    r.rewind(3)
    assert [m["step"] for m in r.metrics()] == [1, 2, 3]


def test_tables_are_parquet(tmp_path):
    r = Run.create("tab", {}, root=tmp_path)
    df = pd.DataFrame({"step": [1, 2], "module": ["a", "b"], "metric": ["m", "m"], "value": [0.1, 0.2]})
    path = r.write_table("results", df)
    assert path.suffix == ".parquet"
    pd.testing.assert_frame_equal(r.read_table("results"), df)


def test_find_run_refuses_traversal_and_unknown_ids(tmp_path):
    r = Run.create("x", {}, root=tmp_path)
    assert find_run(r.id, tmp_path).dir == r.dir
    assert find_run(r.id[:8], tmp_path).dir == r.dir  # unique prefix
    for bad in ("../etc", "..", "a/../../b", "/etc/passwd"):
        with pytest.raises(RunError):
            find_run(bad, tmp_path)
    with pytest.raises(RunError, match="no run"):
        find_run("missing", tmp_path)
    assert [x.id for x in list_runs(tmp_path)] == [r.id]


def test_checkpoint_round_trip_with_adam_state(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        m(torch.ones(4, 3)).pow(2).sum().backward()
        opt.step()
    path = save_checkpoint(tmp_path / "step-00000003.safetensors", m, opt, 3, extra={"note": "x"})
    m2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(m2.parameters(), lr=0.5)
    meta = load_checkpoint(path, m2, opt2)
    assert meta["step"] == 3 and meta["extra"] == {"note": "x"}
    for p, q in zip(m.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 0.1
    for k in s1["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(s1["state"][k][name]), torch.as_tensor(s2["state"][k][name]))
    assert latest_checkpoint(tmp_path) == (3, path)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
