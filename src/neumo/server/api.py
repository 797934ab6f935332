"""JSON API routes: health, detection, runs, studies. Thin: validate, call the library, return models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from neumo import __version__
from neumo.server import runs_access
from neumo.server.limits import ApiError, ErrorBody
from neumo.server.schemas import DetectRequest, Health, MetricsPage, RunDetail, RunSummary, StudyRow

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {c: {"model": ErrorBody} for c in (400, 404, 408, 413, 422, 429)}


def _state(request: Request):
    return request.app.state.neumo


@router.get("/healthz", response_model=Health, tags=["meta"])
def healthz(request: Request) -> Health:
    s = _state(request)
    return Health(
        version=__version__,
        model=s.scorer.model,
        model_loaded=s.scorer.loaded,
        queued=s.scorer.pending,
        runs_dir=str(s.runs_dir),
        limits=s.limits.model_dump(),
    )


def _detection_model():
    """The library's result model, so the OpenAPI schema documents exactly what analyze_text returns."""
    try:
        from neumo.detect.schema import DetectionResult
    except ImportError:  # the detect instrument is not installed in this build
        return dict[str, Any]
    return DetectionResult


def _check_detectors(names: Optional[list[str]], performer: Optional[str] = None) -> None:
    if names is None:
        return
    from neumo.detect.registry import TWO_MODEL, all_detector_names

    known = list(all_detector_names())
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise ApiError(
            422,
            "unknown_detector",
            f"unknown detector(s) {', '.join(map(repr, bad)) or '(empty list)'}; known: {', '.join(known)}",
        )
    two = [n for n in names if n in TWO_MODEL]
    if two and performer is None:
        raise ApiError(
            422,
            "needs_performer",
            f"{two[0]} needs a second model with the scoring model's tokenizer; "
            "start the server with neumo serve --performer MODEL",
        )


@router.post("/api/detect", response_model=_detection_model(), responses=_ERRORS, tags=["detect"])
async def detect(body: DetectRequest, request: Request):
    """Score a text: per-detector scores, verdict with the threshold's provenance, per-token and
    per-sentence evidence. Limited by ``max_body_bytes``, ``max_tokens``, ``timeout_s`` and ``max_queue``."""
    if not body.text.strip():
        raise ApiError(422, "empty_text", "text is empty or only whitespace; paste some text to score")
    _check_detectors(body.detectors, getattr(_state(request).scorer, "performer", None))
    return await _state(request).scorer.detect(body.text, body.detectors)


@router.get("/api/runs", response_model=list[RunSummary], tags=["runs"])
def runs(request: Request) -> list[RunSummary]:
    """Every run in the runs dir, newest first."""
    return runs_access.all_summaries(_state(request).runs_dir)


@router.get("/api/runs/{run_id}", response_model=RunDetail, responses=_ERRORS, tags=["runs"])
def run_detail(run_id: str, request: Request) -> RunDetail:
    """Config, status and final metrics of one run."""
    return runs_access.detail(runs_access.resolve_run(run_id, _state(request).runs_dir))


@router.get("/api/runs/{run_id}/metrics", response_model=MetricsPage, responses=_ERRORS, tags=["runs"])
def run_metrics(
    run_id: str, request: Request, offset: int = Query(0, ge=0), limit: int = Query(500, ge=1)
) -> MetricsPage:
    """Rows of ``metrics.jsonl``, one page at a time (``limit`` at most ``max_page_size``)."""
    s = _state(request)
    run = runs_access.resolve_run(run_id, s.runs_dir)
    return runs_access.metrics_page(run, offset, limit, s.limits.max_page_size)


@router.get(
    "/api/runs/{run_id}/plot.svg",
    responses={200: {"content": {"image/svg+xml": {}}}, **_ERRORS},
    response_class=Response,
    tags=["runs"],
)
def run_plot(run_id: str, request: Request, metric: list[str] = Query(...)) -> Response:
    """SVG line plot of one or more metrics against the step (rendered with neumo.report.figures)."""
    from neumo.server.plots import metric_svg

    run = runs_access.resolve_run(run_id, _state(request).runs_dir)
    svg = metric_svg(run.metrics(), metric, title=", ".join(metric))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def _study_run(run_dir: str, root: Path) -> Optional[str]:
    """The top-level run under ``root`` that holds a verdict's folder (a study run or a lab run)."""
    if not run_dir:
        return None
    try:
        rel = Path(run_dir).resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return rel.parts[0] if rel.parts else None


def _str(x: Any) -> str:
    return x if isinstance(x, str) else ""


def _dicts(x: Any) -> list[dict[str, Any]]:
    return [d for d in x if isinstance(d, dict)] if isinstance(x, list) else []


@router.get("/api/studies", response_model=list[StudyRow], tags=["studies"])
def studies(request: Request) -> list[StudyRow]:
    """Every registered study with its newest verdict in the runs dir (null when never run)."""
    from neumo.studies.registry import all_studies
    from neumo.studies.runner import last_verdicts

    root = _state(request).runs_dir
    last = last_verdicts(root)
    rows = []
    for sid, cls in all_studies().items():
        v = last.get(sid, {})
        rid = _study_run(v.get("run_dir", ""), root)
        report = f"/runs/{rid}/report.html" if rid and (root / rid / "report.html").is_file() else None
        rows.append(
            StudyRow(
                id=sid,
                instrument=cls.instrument,
                claim=cls.claim,
                citation=getattr(cls, "citation", "") or "",
                verdict=v.get("status"),
                reason=_str(v.get("reason")),
                summary=_str(v.get("summary")),
                checks=_dicts(v.get("checks")),
                preconditions=_dicts(v.get("preconditions")),
                seeds=[s for s in v.get("seeds", []) if isinstance(s, int)] if isinstance(v.get("seeds"), list) else [],
                measured=v.get("measured", {}) if isinstance(v.get("measured"), dict) else {},
                preset=v.get("preset"),
                elapsed_s=v.get("elapsed_s"),
                run_id=rid,
                report_url=report,
            )
        )
    return rows
