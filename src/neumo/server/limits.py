"""Server limits and the one error shape every exceeded limit returns.

Each limit has a name and a value; a request that exceeds one gets a 4xx JSON body
``{"error": <code>, "message": <one line>, "limit": <name>, "value": <value>}`` so a client can tell
which limit it hit and by how much it must shrink its request.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator


class Limits(BaseModel):
    """Bounds on what one request may ask of the server."""

    max_body_bytes: int = Field(200_000, description="largest accepted request body, in bytes")
    max_tokens: int = Field(2048, description="longest text /api/detect scores, in model tokens")
    timeout_s: float = Field(120.0, description="per-request budget of /api/detect (queue wait + scoring)")
    max_queue: int = Field(32, description="detect requests waiting for the scoring model at once")
    max_page_size: int = Field(1000, description="largest page of metric rows /api/runs/{id}/metrics returns")

    @field_validator("max_body_bytes", "max_tokens", "max_queue", "max_page_size")
    @classmethod
    def _positive_int(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"must be > 0, got {v}")
        return v

    @field_validator("timeout_s")
    @classmethod
    def _positive_float(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"must be > 0, got {v}")
        return v


class ErrorBody(BaseModel):
    """The JSON body of every 4xx/5xx the API returns."""

    error: str = Field(description="machine-readable code, e.g. 'limit_exceeded', 'not_found'")
    message: str = Field(description="one line that says what went wrong and how to fix it")
    limit: str | None = Field(None, description="name of the exceeded limit, when a limit was exceeded")
    value: Any = Field(None, description="the value of that limit")


class ApiError(Exception):
    """Raised by handlers; rendered as :class:`ErrorBody` with ``status``."""

    def __init__(self, status: int, error: str, message: str, limit: str | None = None, value: Any = None):
        super().__init__(message)
        self.status, self.body = status, ErrorBody(error=error, message=message, limit=limit, value=value)


def limit_error(status: int, limit: str, value: Any, message: str) -> ApiError:
    return ApiError(status, "limit_exceeded", message, limit=limit, value=value)
