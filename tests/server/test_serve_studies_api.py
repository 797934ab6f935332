"""GET /api/studies: every registered study with its newest verdict from the runs dir."""

from __future__ import annotations

from fastapi.testclient import TestClient

from neumo.server import create_app
from neumo.studies.registry import all_studies


def test_studies_lists_the_registry_with_the_fixture_verdict(runs_root, ids):
    with TestClient(create_app(runs_dir=runs_root)) as c:
        rows = c.get("/api/studies").json()
    assert [r["id"] for r in rows] == list(all_studies())
    row = next(r for r in rows if r["id"] == "F-mlp-digits")
    assert row["verdict"] == "holds" and row["measured"] == {"test_acc": 0.97} and row["seeds"] == [0, 1, 2]
    (check,) = row["checks"]
    assert check["ci_low"] == 0.9452 and check["threshold"] == 0.95 and row["preset"] == "quick"
    assert row["preconditions"][0]["passed"] is True and row["reason"].startswith("every check")
    assert row["run_id"] == ids["lab"] and row["report_url"] == f"/runs/{ids['lab']}/report.html"
    assert row["claim"] == all_studies()["F-mlp-digits"].claim
    others = [r for r in rows if r["id"] != "F-mlp-digits"]
    assert all(r["verdict"] is None and r["run_id"] is None for r in others)


def test_studies_without_runs_have_no_verdict(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path / "empty")) as c:
        rows = c.get("/api/studies").json()
    assert rows and all(r["verdict"] is None for r in rows)
