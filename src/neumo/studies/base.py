"""The study contract: a study tests one claim and the framework turns its measurements into a verdict.

A study (a :class:`Study` subclass decorated with ``@register_study``) declares:

- ``id``, ``instrument`` (``spectral | detect | memory | foundation``), ``claim`` and ``citation``;
- ``Config``: a strict config whose defaults are the ``full`` preset, with a ``thresholds`` section
  (a :class:`Thresholds` subclass: every threshold a float with a one-line justification in its
  ``Field(description=...)``); ``presets["quick"]`` overrides it;
- ``nulls``: the null controls, ``{arm: what it is}``. The framework measures every null with the same
  seeds as the treatment (``ctx.arm`` names the arm). A measurement may also return a null's values
  inline (``Measurement.nulls``) when the null is computed from the treatment itself (a random-walk
  update of the same norm, a random subspace); such a null is not run again;
- ``checks(cfg)``: :class:`CheckSpec` s, each an empirical quantity, its side of a threshold, and
  optionally the null it is judged relative to (a ratio or a difference, per seed) and the nulls that
  must *not* pass it (controls);
- ``preconditions(cfg)``: :class:`GateSpec` s, the competence gates (a model learned its task, an
  iteration converged);
- ``measure(cfg, ctx) -> Measurement``: one seed of one arm; saves figures with ``ctx.save_figure``;
- optionally ``pool(cfg, units) -> {quantity: Estimate}`` for statistics over all seeds at once (a
  permutation test over pooled units) with an interval the study computes itself.

Judgement (:mod:`neumo.studies.judge`): each check's per-seed values get a 95% t-interval; a check
passes when the whole interval lies on the claimed side, fails when it lies wholly on the other side,
and is undecided otherwise. ``holds`` when all pass, ``fails`` when one fails, ``inconclusive``
otherwise, when a precondition failed or when a null control passes a check (a defect of the study).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from neumo.config import StrictModel

Status = Literal["holds", "fails", "inconclusive", "error"]
Op = Literal[">=", ">", "<=", "<"]
TREATMENT = "treatment"


class Thresholds(StrictModel):
    """Base of a study's ``thresholds`` section. Each field is a finite float whose
    ``Field(description=...)`` is its one-line, pre-registered justification."""

    @model_validator(mode="after")
    def _finite(self):
        for name in type(self).model_fields:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise ValueError(f"threshold {name!r} must be a finite number, got {v!r}")
        return self

    @classmethod
    def justifications(cls) -> dict[str, str]:
        return {k: (f.description or "") for k, f in cls.model_fields.items()}


@dataclass(frozen=True)
class CheckSpec:
    """A judged, empirical quantity: ``quantity op thresholds.<threshold>``.

    ``null``: judge the per-seed ``relation`` (``ratio`` = treatment / null, ``difference`` = treatment -
    null) instead of the raw value. ``controls``: null arms that are judged by the same rule in the
    treatment's place; if one of them passes, the study is defective and the verdict inconclusive.
    """

    name: str
    quantity: str
    op: Op
    threshold: str
    null: str | None = None
    relation: Literal["ratio", "difference"] = "ratio"
    controls: tuple[str, ...] = ()
    label: str = ""  # a short human reading of the check for the report


@dataclass(frozen=True)
class GateSpec:
    """A precondition ``quantity op thresholds.<threshold>`` that must hold at every seed of ``arm``."""

    name: str
    quantity: str
    op: Op
    threshold: str
    arm: str = TREATMENT
    why: str = ""


@dataclass
class Measurement:
    """What one (seed, arm) unit measured. ``values`` are the quantities checks and gates read (and
    anything else worth reporting); ``nulls`` are inline null arms ``{arm: {quantity: value}}``."""

    values: dict[str, float]
    nulls: dict[str, dict[str, float]] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "nulls": self.nulls, "tables": self.tables, "summary": self.summary}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Measurement":
        return cls(
            values=dict(d.get("values", {})),
            nulls={k: dict(v) for k, v in d.get("nulls", {}).items()},
            tables=dict(d.get("tables", {})),
            summary=d.get("summary", ""),
        )


@dataclass(frozen=True)
class Estimate:
    """A pooled statistic with the interval the study computed (bootstrap, permutation...)."""

    mean: float
    ci_low: float | None
    ci_high: float | None
    per_seed: tuple[float, ...] = ()
    null_mean: float | None = None
    note: str = ""


# ---------------------------------------------------------------- results (machine-readable names fixed)


class ControlResult(BaseModel):
    arm: str
    per_seed: list[float | None] = Field(default_factory=list)
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    passed: bool | None


class CheckResult(BaseModel):
    name: str
    quantity: str = ""
    op: Op
    threshold: float
    justification: str = ""
    relative_to: str | None = None  # the null arm, when judged relative to one
    relation: str | None = None
    per_seed: list[float | None] = Field(default_factory=list)
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    null_mean: float | None = None
    null_per_seed: list[float | None] = Field(default_factory=list)
    passed: bool | None = None
    controls: list[ControlResult] = Field(default_factory=list)
    label: str = ""
    note: str = ""


class GateResult(BaseModel):
    name: str
    value: float | None
    op: Op
    threshold: float
    passed: bool
    arm: str = TREATMENT
    why: str = ""
    per_seed: list[float | None] = Field(default_factory=list)


class Verdict(BaseModel):
    """The outcome of a study. ``measured`` holds the seed-mean of every reported number."""

    study: str
    claim: str = ""
    status: Status
    reason: str = ""
    summary: str = ""
    measured: dict[str, Any] = Field(default_factory=dict)
    checks: list[CheckResult] = Field(default_factory=list)
    preconditions: list[GateResult] = Field(default_factory=list)
    nulls: dict[str, str] = Field(default_factory=dict)
    defects: list[str] = Field(default_factory=list)
    figures: list[str] = Field(default_factory=list)  # paths relative to the study's run folder
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # small tables for the report
    preset: str = "quick"
    seeds: list[int] = Field(default_factory=list)
    replication: str = ""  # what a seed changes in this study
    elapsed_s: float = 0.0
    run_dir: str = ""


# ---------------------------------------------------------------- what a running study gets


@dataclass
class StudyContext:
    """One (seed, arm) unit: its own run folder (metrics, checkpoints, tables), its seed and arm."""

    run: Any  # neumo.runs.Run of this unit
    seed: int = 0
    arm: str = TREATMENT
    preset: str = "quick"
    resume: bool = False
    progress: bool = False
    checkpoint_every: int = 0
    study_dir: Path | None = None  # the study's run folder (figures go to its artifacts)
    keep_figures: bool = True  # only the first seed's treatment keeps figures
    figures: list[str] = field(default_factory=list)

    @property
    def is_null(self) -> bool:
        return self.arm != TREATMENT

    def save_figure(self, name: str, fig) -> Path | None:
        """Save a matplotlib figure as PNG into the study's artifacts (first seed, treatment) and close it."""
        import matplotlib.pyplot as plt

        if not self.keep_figures:
            plt.close(fig)
            return None
        root = Path(self.study_dir) if self.study_dir is not None else Path(self.run.dir)
        path = root / "artifacts" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        rel = str(path.relative_to(root))
        if rel not in self.figures:
            self.figures.append(rel)
        return path


class Study:
    id: ClassVar[str]
    instrument: ClassVar[str]
    claim: ClassVar[str]
    citation: ClassVar[str] = ""
    Config: ClassVar[type[StrictModel]]
    presets: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "full": {}}
    nulls: ClassVar[dict[str, str]] = {}
    # What a seed changes (initialisation, data order, which items are sampled); say so when the
    # measurement itself is deterministic and the seed resamples items instead.
    replication: ClassVar[str] = "the seed sets initialisation, data split and data order"
    # Only studies that pass ctx.checkpoint_every / ctx.resume to a Trainer may be checkpointed.
    supports_checkpoints: ClassVar[bool] = False
    # Rough seconds of the quick preset (all seeds and nulls) on one thread; the lab starts longest first.
    quick_cost_s: ClassVar[float] = 20.0
    # Thresholds or settings changed after a first look, and why (empty: none were); shown in the report
    # and by `neumo study show`.
    threshold_history: ClassVar[str] = ""

    def checks(self, cfg) -> list[CheckSpec]:  # pragma: no cover - abstract
        raise NotImplementedError

    def preconditions(self, cfg) -> list[GateSpec]:
        return []

    def measure(self, cfg, ctx: StudyContext) -> Measurement:  # pragma: no cover - abstract
        raise NotImplementedError

    def pool(self, cfg, units: list[dict[str, Measurement]]) -> dict[str, Estimate]:
        """Statistics over all seeds at once (``units[i][arm]``); judged with their own interval. A key
        ``"<arm>:<quantity>"`` is that null's pooled value: a check listing the arm in ``controls`` judges it."""
        return {}

    def summarize(self, cfg, measured: dict[str, Any]) -> str:
        """One or two sentences from the seed-means of ``measured`` (default: none)."""
        return ""


DEFAULT_SEEDS = {"quick": 3, "full": 5}


__all__ = [
    "CheckResult",
    "CheckSpec",
    "ControlResult",
    "DEFAULT_SEEDS",
    "Estimate",
    "GateResult",
    "GateSpec",
    "Measurement",
    "Op",
    "Status",
    "Study",
    "StudyContext",
    "TREATMENT",
    "Thresholds",
    "Verdict",
]
