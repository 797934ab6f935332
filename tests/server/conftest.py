"""Fixtures for the server tests: a runs dir with known runs, an app factory, a live loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neumo.runs import Run

from serve_fixtures import FIXTURE_ROWS
from serve_live import LiveServer


@pytest.fixture
def runs_root(tmp_path) -> Path:
    """A runs dir with a finished training run, a failed run and a lab run with a report and a verdict."""
    root = tmp_path / "runs"
    run = Run.create("train-mlp", {"model": {"hidden": 32}, "lr": 0.1}, root=root)
    for step, row in enumerate(FIXTURE_ROWS):
        run.log(step, row)
    run.log(10, {"eval_acc": 0.9, "note": "text values are not plotted"})
    run.finish({"test_acc": 0.9})
    (run.dir / "artifacts" / "curve.txt").write_text("artifact body")
    bad = Run.create("broken", {"x": 1}, root=root)
    bad.fail("boom: diverged")
    lab = Run.create("lab", {"kind": "lab"}, root=root, kind="lab")
    study_dir = lab.dir / "studies" / "study-F-mlp-digits-1"
    study_dir.mkdir(parents=True)
    (study_dir / "verdict.json").write_text(json.dumps({
        "study": "F-mlp-digits", "status": "holds", "reason": "every check's interval clears its threshold",
        "summary": "fixture verdict", "measured": {"test_acc": 0.97}, "seeds": [0, 1, 2],
        "checks": [{"name": "test_acc", "op": ">=", "threshold": 0.95, "per_seed": [0.96, 0.97, 0.98], "mean": 0.97,
                    "ci_low": 0.9452, "ci_high": 0.9948, "null_mean": None, "passed": None}],
        "preconditions": [{"name": "train_acc", "value": 0.99, "op": ">=", "threshold": 0.95, "passed": True}],
        "preset": "quick", "elapsed_s": 1.5, "run_dir": str(study_dir)}))
    (lab.dir / "report.html").write_text("<html><body>fixture lab report</body></html>")
    lab.finish({"holds": 1})
    return root


@pytest.fixture
def ids(runs_root) -> dict[str, str]:
    out = {}
    for d in runs_root.iterdir():
        out[d.name.split("-")[0]] = d.name
    return out


@pytest.fixture
def live_server():
    """Factory: ``with live_server(app) as srv: ... srv.url``; shut down on exit."""
    return LiveServer


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (starting it is the slow part); pages are per test."""
    from serve_browser import chromium

    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    from serve_browser import new_page

    p = new_page(browser)
    yield p
    p.close()
