"""HTML pages: plain files in ``static/`` that fetch the JSON API with a little vanilla JS (no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from neumo.server import runs_access

STATIC = Path(__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/")
def detect_page() -> FileResponse:
    return _page("detect.html")


@router.get("/runs")
def runs_page() -> FileResponse:
    return _page("runs.html")


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request) -> FileResponse:
    runs_access.resolve_run(run_id, request.app.state.neumo.runs_dir)  # 400/404 before serving the page
    return _page("run.html")


@router.get("/runs/{run_id}/report.html")
def run_report(run_id: str, request: Request) -> FileResponse:
    run = runs_access.resolve_run(run_id, request.app.state.neumo.runs_dir)
    return FileResponse(runs_access.run_file(run, "report.html"), media_type="text/html")


@router.get("/runs/{run_id}/artifacts/{name}")
def run_artifact(run_id: str, name: str, request: Request) -> FileResponse:
    run = runs_access.resolve_run(run_id, request.app.state.neumo.runs_dir)
    return FileResponse(runs_access.run_file(run, "artifacts", name))


@router.get("/studies")
def studies_page() -> FileResponse:
    return _page("studies.html")
