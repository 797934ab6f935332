"""The FastAPI app behind ``neumo serve``: JSON API (OpenAPI at ``/docs``) and HTML pages."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from neumo import __version__
from neumo.errors import NeumoError
from neumo.server.body_limit import BodyLimitMiddleware
from neumo.server.limits import ApiError, ErrorBody, Limits
from neumo.server.scorer import Scorer

if TYPE_CHECKING:
    from neumo.detect.evaluate import Calibration


@dataclass
class ServerState:
    runs_dir: Path
    limits: Limits
    scorer: Scorer


def _json_error(status: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError):
        return _json_error(exc.status, exc.body)

    @app.exception_handler(NeumoError)
    async def _neumo_error(_req: Request, exc: NeumoError):  # a user mistake the library caught
        return _json_error(422, ErrorBody(error="invalid_input", message=str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError):
        return _json_error(422, ErrorBody(error="invalid_request", message=_validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json_error(exc.status_code, ErrorBody(error=code, message=str(exc.detail)))

    @app.exception_handler(Exception)
    async def _crash(_req: Request, _exc: Exception):  # JSON, and no traceback leaks to the client
        return _json_error(500, ErrorBody(error="internal_error", message="internal server error"))


def create_app(
    runs_dir: Optional[Path] = None,
    model: str = "smollm2",
    limits: Optional[Limits] = None,
    calibration: Optional[Path | Calibration] = None,
    scorer: Optional[Scorer] = None,
    precision: Optional[str] = None,
    performer: Optional[str] = None,
) -> FastAPI:
    """Build the app. Nothing heavy happens here: the scoring model loads on the first detect request.
    ``calibration`` is a file (read now, so a bad one fails here) or an already loaded calibration."""
    from neumo.runs import default_root

    limits = limits or Limits()
    scorer = scorer or Scorer(model, limits, calibration=calibration, precision=precision, performer=performer)
    state = ServerState(
        runs_dir=Path(runs_dir) if runs_dir is not None else default_root(), limits=limits, scorer=scorer
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        scorer.close()

    app = FastAPI(
        title="neumo",
        version=__version__,
        lifespan=lifespan,
        description="Detection of machine-made text, and a browser for runs and study verdicts.",
    )
    app.state.neumo = state
    _install_error_handlers(app)

    from neumo.server import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    return app
