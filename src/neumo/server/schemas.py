"""Request and response models of the JSON API (the detection result itself is the library's model)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelled field is an error, not silently ignored

    text: str = Field(min_length=1, description="the text to score (limited in bytes and in model tokens)")
    detectors: Optional[list[str]] = Field(None, description="detector names; all registered ones when omitted")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    model: str
    model_loaded: bool
    queued: int = Field(description="detect requests waiting for or being scored right now")
    runs_dir: str
    limits: dict[str, Any]


class RunSummary(BaseModel):
    id: str
    name: Optional[str] = None
    kind: Optional[str] = None
    state: str
    step: Optional[int] = None
    created: Optional[str] = None
    updated: Optional[str] = None
    has_report: bool = Field(description="the run folder holds a report.html (lab runs)")
    error: Optional[str] = Field(None, description="one-line reason when state is 'corrupt'")


class RunDetail(RunSummary):
    config: dict[str, Any]
    status: dict[str, Any]
    final: dict[str, Any]
    error: Optional[str] = None
    n_metric_rows: int
    metric_keys: list[str] = Field(description="numeric metric names found in metrics.jsonl")
    artifacts: list[str] = Field(description="file names under artifacts/ (served at /runs/{id}/artifacts/...)")
    report_url: Optional[str] = None


class MetricsPage(BaseModel):
    run_id: str
    offset: int
    limit: int
    total: int = Field(description="rows in metrics.jsonl")
    rows: list[dict[str, Any]]
    next_offset: Optional[int] = Field(None, description="offset of the next page, null on the last page")


class StudyRow(BaseModel):
    id: str
    instrument: str
    claim: str
    citation: str = ""
    verdict: Optional[str] = Field(None, description="holds | fails | inconclusive | error; null if never run")
    reason: str = Field("", description="the verdict's reason in words")
    summary: str = ""
    checks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="name, op, threshold, per_seed, mean, ci_low, ci_high, "
        "null_mean, passed (see neumo.studies.base.CheckResult)",
    )
    preconditions: list[dict[str, Any]] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    measured: dict[str, Any] = Field(default_factory=dict)
    preset: Optional[str] = None
    elapsed_s: Optional[float] = None
    run_id: Optional[str] = Field(None, description="top-level run under the runs dir that holds the verdict")
    report_url: Optional[str] = None
