"""Regression: a run whose own files are symlinks to outside files never serves their content, and a
corrupt run is listed as `corrupt` without breaking GET /api/runs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from neumo.runs import Run
from neumo.server import create_app

SECRET = "outside-secret-91c2"


@pytest.mark.parametrize("name", ["config.yaml", "metrics.jsonl", "status.json"])
def test_symlinked_run_file_is_not_served(runs_root, tmp_path, name):
    outside = tmp_path / f"outside-{name}"
    outside.write_text({"config.yaml": f"secret: {SECRET}\n",
                        "metrics.jsonl": '{"step": 1, "%s": 1.0}\n' % SECRET,
                        "status.json": '{"state": "complete", "note": "%s"}' % SECRET}[name])
    run = Run.create("leaky", {"a": 1}, root=runs_root)
    run.log(1, {"loss": 1.0})
    run.finish({"loss": 1.0})
    (run.dir / name).unlink()
    (run.dir / name).symlink_to(outside)
    client = TestClient(create_app(runs_dir=runs_root, model="tiny"))
    for url in ("/api/runs", f"/api/runs/{run.id}", f"/api/runs/{run.id}/metrics"):
        r = client.get(url)
        assert SECRET not in r.text, url
        assert r.headers["content-type"].startswith("application/json"), url
    listing = client.get("/api/runs")
    assert listing.status_code == 200
    row = next(x for x in listing.json()["runs"] if x["id"] == run.id) if isinstance(listing.json(), dict) \
        else next(x for x in listing.json() if x["id"] == run.id)
    assert row["state"] == "corrupt" and row["error"]


def test_one_corrupt_run_does_not_break_the_listing(runs_root):
    bad = runs_root / "corrupt-run"
    bad.mkdir()
    (bad / "status.json").write_text("[1, 2]")
    (bad / "config.yaml").write_text("a: 1\n")
    client = TestClient(create_app(runs_dir=runs_root, model="tiny"))
    r = client.get("/api/runs")
    assert r.status_code == 200
    rows = r.json()["runs"] if isinstance(r.json(), dict) else r.json()
    assert any(x["id"] == "corrupt-run" and x["state"] == "corrupt" for x in rows)
    assert len(rows) > 1  # the healthy runs are still listed
    d = client.get("/api/runs/corrupt-run")
    assert 400 <= d.status_code < 500 and d.headers["content-type"].startswith("application/json")
