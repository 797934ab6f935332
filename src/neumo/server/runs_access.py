"""Read-only access to run folders for the API, confined to one runs dir.

Run ids from URLs are validated before they touch the file system: the id must match the run-id
pattern, contain no ``..``, name a direct child of the runs dir, and that child must resolve (after
symlinks) to a folder inside the runs dir. ``neumo.runs.find_run`` also accepts paths and prefixes, which
is right for the CLI and wrong for a server, so it is not used here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from neumo.errors import RunError
from neumo.runs import Run, list_runs
from neumo.runs.run import RUN_ID_RE
from neumo.server.limits import ApiError, limit_error
from neumo.server.schemas import MetricsPage, RunDetail, RunSummary

_FILE_RE = RUN_ID_RE  # names of files served from a run follow the run-id rule


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


_RUN_FILES = ("status.json", "config.yaml", "metrics.jsonl", "artifacts", "report.html")


def _symlinked(cand: Path) -> str | None:
    """Name of the first symlink among the run folder and its own files; Run follows links, so refuse them."""
    if cand.is_symlink():
        return cand.name
    for name in _RUN_FILES:
        if (cand / name).is_symlink():
            return name
    return None


def resolve_run(run_id: str, root: Path) -> Run:
    """The run ``run_id`` directly under ``root``; 400 for a malformed id, 404 when absent."""
    if not RUN_ID_RE.match(run_id) or ".." in run_id:
        raise ApiError(
            400,
            "invalid_run_id",
            f"{run_id!r} is not a valid run id (letters, digits, '-', '_', '.'; no '..'); list ids with GET /api/runs",
        )
    cand = Path(root) / run_id
    if _symlinked(cand) is not None:  # a link could point outside the root: never follow it
        raise ApiError(404, "not_found", f"no run {run_id!r} in the runs dir (symlinks are not served)")
    if not (cand.is_dir() and cand.resolve().parent == Path(root).resolve() and (cand / "status.json").is_file()):
        raise ApiError(404, "not_found", f"no run {run_id!r} in the runs dir; list ids with GET /api/runs")
    try:
        return Run.open(cand)
    except (RunError, OSError, ValueError) as e:
        raise ApiError(409, "corrupt_run", f"run {run_id!r} is corrupt: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _status(run: Run) -> dict[str, Any]:
    try:  # Run.status raises RunError for a status.json that is unreadable or not a mapping
        return run.status()
    except Exception as e:  # noqa: BLE001 - any unreadable status.json makes the run corrupt, not a 500
        return {"state": "corrupt", "error": _one_line(e)}


def _corrupt(run: Run, why: str) -> RunSummary:
    return RunSummary(id=run.id, state="corrupt", error=why, has_report=False)


def summarize(run: Run, st: dict[str, Any] | None = None) -> RunSummary:
    st = _status(run) if st is None else st
    try:
        return _summary(run, st)
    except Exception as e:  # noqa: BLE001 - wrong-typed fields (pid "x", step "5") mark the run corrupt
        return _corrupt(run, _one_line(e))


def _summary(run: Run, st: dict[str, Any]) -> RunSummary:
    return RunSummary(
        id=run.id,
        name=st.get("name"),
        kind=st.get("kind"),
        state=st.get("state", "?"),
        step=st.get("step"),
        created=st.get("created"),
        updated=st.get("updated"),
        has_report=(run.dir / "report.html").is_file(),
    )


def all_summaries(root: Path) -> list[RunSummary]:
    """Every run directly under ``root``, newest first; runs that resolve outside ``root`` are skipped."""
    out = []
    for r in reversed(list_runs(root)):
        if not _inside(r.dir, root):
            continue
        link = _symlinked(r.dir)
        out.append(_corrupt(r, f"{link} is a symlink; not served") if link else summarize(r))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Numeric metric names in first-seen order (``step`` excluded)."""
    keys: dict[str, None] = {}
    for r in rows:
        for k, v in r.items():
            if k != "step" and _is_number(v):
                keys.setdefault(k)
    return list(keys)


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of one metric over the rows that log it."""
    pts = [(float(r.get("step", i)), float(r[key])) for i, r in enumerate(rows) if _is_number(r.get(key))]
    return [p[0] for p in pts], [p[1] for p in pts]


def detail(run: Run) -> RunDetail:
    """The run's detail; a corrupt run answers 409 ``corrupt_run`` with a one-line reason."""
    try:
        return _detail(run)
    except ApiError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ApiError(409, "corrupt_run", f"run {run.id!r} is corrupt: {_one_line(e)}") from None


def _detail(run: Run) -> RunDetail:
    st = _status(run)
    if st.get("state") == "corrupt":
        raise ApiError(409, "corrupt_run", f"run {run.id!r} is corrupt: {st.get('error')}")
    rows = run.metrics()
    if not all(isinstance(r, dict) for r in rows):
        raise ApiError(409, "corrupt_run", f"run {run.id!r} is corrupt: a metrics line is not a JSON object")
    art_dir = run.dir / "artifacts"
    arts = (
        sorted(p.name for p in art_dir.iterdir() if p.is_file() and _FILE_RE.match(p.name)) if art_dir.is_dir() else []
    )
    base = summarize(run, st)
    return RunDetail(
        **base.model_dump(exclude={"error"}),
        config=run.config,
        status=st,
        final=st.get("final") or {},
        error=st.get("error"),
        n_metric_rows=len(rows),
        metric_keys=metric_keys(rows),
        artifacts=arts,
        report_url=f"/runs/{run.id}/report.html" if base.has_report else None,
    )


def metrics_page(run: Run, offset: int, limit: int, max_page: int) -> MetricsPage:
    if limit > max_page:
        raise limit_error(
            422,
            "max_page_size",
            max_page,
            f"limit={limit} is above the page-size limit of {max_page} rows; page with offset",
        )
    try:
        rows = run.metrics()
    except Exception as e:  # noqa: BLE001
        raise ApiError(409, "corrupt_run", f"run {run.id!r} is corrupt: {_one_line(e)}") from None
    page = rows[offset : offset + limit]
    nxt = offset + limit if offset + limit < len(rows) else None
    return MetricsPage(run_id=run.id, offset=offset, limit=limit, total=len(rows), rows=page, next_offset=nxt)


def run_file(run: Run, *parts: str) -> Path:
    """A plain file inside the run folder (one validated name per segment); 404 if absent or outside."""
    for part in parts:
        if not _FILE_RE.match(part) or ".." in part:
            raise ApiError(400, "invalid_file_name", f"{part!r} is not a valid file name")
    p = run.dir.joinpath(*parts)
    links = [run.dir.joinpath(*parts[: i + 1]) for i in range(len(parts))]
    if any(q.is_symlink() for q in links) or not (p.is_file() and _inside(p, run.dir)):
        raise ApiError(404, "not_found", f"run {run.id!r} has no file {'/'.join(parts)!r}")
    return p
