"""GET /api/runs, /api/runs/{id}, /api/runs/{id}/metrics, plots, reports and artifacts, against the run files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from neumo.runs import Run
from neumo.server import Limits, create_app

from serve_fixtures import FIXTURE_ROWS


@pytest.fixture
def client(runs_root):
    with TestClient(create_app(runs_dir=runs_root, limits=Limits(max_page_size=4))) as c:
        yield c


def test_list_runs_matches_the_run_folders(client, runs_root):
    body = client.get("/api/runs").json()
    assert sorted(r["id"] for r in body) == sorted(d.name for d in runs_root.iterdir())
    states = {r["id"].split("-")[0]: r["state"] for r in body}
    assert states == {"train": "complete", "broken": "failed", "lab": "complete"}
    assert {r["id"].split("-")[0]: r["has_report"] for r in body} == {"train": False, "broken": False, "lab": True}


def test_run_detail_has_config_status_and_final_metrics(client, ids, runs_root):
    d = client.get(f"/api/runs/{ids['train']}").json()
    run = Run.open(runs_root / ids["train"])
    assert d["config"] == run.config == {"model": {"hidden": 32}, "lr": 0.1}
    assert d["final"] == {"test_acc": 0.9}
    assert d["status"]["state"] == "complete"
    assert d["n_metric_rows"] == len(FIXTURE_ROWS) + 1
    assert d["metric_keys"] == ["loss", "acc", "eval_acc"]  # the text-valued 'note' is not a metric
    assert d["artifacts"] == ["curve.txt"] and d["report_url"] is None
    failed = client.get(f"/api/runs/{ids['broken']}").json()
    assert failed["state"] == "failed" and failed["error"] == "boom: diverged"


def test_metrics_pages_reassemble_the_jsonl(client, ids, runs_root):
    rows, offset, pages = [], 0, 0
    while offset is not None:
        page = client.get(f"/api/runs/{ids['train']}/metrics", params={"offset": offset, "limit": 4}).json()
        assert page["total"] == 11 and len(page["rows"]) <= 4
        rows += page["rows"]
        offset, pages = page["next_offset"], pages + 1
    assert pages == 3
    assert rows == Run.open(runs_root / ids["train"]).metrics()
    assert [r["loss"] for r in rows[:10]] == [row["loss"] for row in FIXTURE_ROWS]


def test_page_size_limit_is_a_4xx_naming_the_limit(client, ids):
    r = client.get(f"/api/runs/{ids['train']}/metrics", params={"limit": 5})
    assert r.status_code == 422
    assert r.json()["limit"] == "max_page_size" and r.json()["value"] == 4
    assert "page-size limit of 4" in r.json()["message"]


def test_plot_is_an_svg_of_the_metric(client, ids):
    r = client.get(f"/api/runs/{ids['train']}/plot.svg", params={"metric": "loss"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<?xml") and "<svg" in r.text and "step" in r.text
    bad = client.get(f"/api/runs/{ids['train']}/plot.svg", params={"metric": "note"})
    assert bad.status_code == 404 and "known: loss, acc, eval_acc" in bad.json()["message"]


def test_report_and_artifacts_are_served_from_the_run(client, ids):
    lab = client.get(f"/api/runs/{ids['lab']}").json()
    assert lab["report_url"] == f"/runs/{ids['lab']}/report.html"
    r = client.get(lab["report_url"])
    assert r.status_code == 200 and "fixture lab report" in r.text
    assert client.get(f"/runs/{ids['train']}/report.html").status_code == 404
    assert client.get(f"/runs/{ids['train']}/artifacts/curve.txt").text == "artifact body"


def test_runs_dir_that_does_not_exist_lists_nothing(tmp_path):
    with TestClient(create_app(runs_dir=tmp_path / "absent")) as c:
        assert c.get("/api/runs").json() == []


def test_healthz_reports_the_lazy_model_and_limits(client, runs_root):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["model"] == "smollm2" and h["model_loaded"] is False
    assert h["runs_dir"] == str(runs_root) and h["limits"]["max_page_size"] == 4


def test_pages_are_served(client, ids):
    for path, marker in [("/", 'id="detect"'), ("/runs", 'id="runs"'), (f"/runs/{ids['train']}", 'id="plots"'),
                         ("/studies", 'id="studies"'), ("/static/detect.js", "rank bucket")]:
        r = client.get(path)
        assert r.status_code == 200 and marker in r.text, path
    assert client.get("/runs/no-such-run").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
