"""A study tests one claim and returns a :class:`Verdict` with the numbers it measured.

To add a study, drop a module into ``neumo/studies/`` that defines a :class:`Study` subclass decorated
with ``@register_study``; it is discovered automatically. A study declares:

- ``id``, ``instrument`` (``spectral | detect | memory | foundation``), ``claim`` (one sentence) and
  ``citation``;
- ``Config``: a :class:`neumo.config.StrictModel` whose defaults are the ``full`` preset;
- ``presets["quick"]``: overrides (nested dict) that make the study run in about a minute on 2 cores;
- ``run(cfg, ctx) -> Verdict``: train/measure, save figures with ``ctx.save_figure``, and judge with
  :func:`judge` so the expected values are explicit.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from neumo.config import StrictModel

Status = Literal["holds", "fails", "inconclusive", "error"]

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


class Check(BaseModel):
    """One measured quantity against its expectation, e.g. ``test_acc >= 0.95``."""

    name: str
    value: float
    op: Literal[">=", ">", "<=", "<"]
    threshold: float
    passed: bool = False

    @property
    def expected(self) -> str:
        return f"{self.op} {self.threshold:g}"


def check(name: str, value: float, op: str, threshold: float) -> Check:
    v = float(value)
    return Check(name=name, value=v, op=op, threshold=float(threshold), passed=bool(_OPS[op](v, threshold)))


class Verdict(BaseModel):
    """The outcome of a study. ``measured`` holds every number the verdict rests on."""

    study: str
    claim: str = ""
    status: Status
    summary: str = ""
    measured: dict[str, Any] = Field(default_factory=dict)
    expected: dict[str, str] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    figures: list[str] = Field(default_factory=list)  # paths relative to the study's run folder
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # small tables for the report
    preset: str = "quick"
    seeds: list[int] = Field(default_factory=list)
    elapsed_s: float = 0.0
    run_dir: str = ""


def judge(study: str, checks: list[Check], summary: str = "", measured: dict[str, Any] | None = None,
          inconclusive_if: bool = False) -> Verdict:
    """``holds`` when every check passes, ``fails`` otherwise (``inconclusive`` when told so)."""
    status: Status = "inconclusive" if inconclusive_if else ("holds" if all(c.passed for c in checks) else "fails")
    m = {c.name: c.value for c in checks}
    m.update(measured or {})
    return Verdict(study=study, status=status, summary=summary, measured=m,
                   expected={c.name: c.expected for c in checks}, checks=checks)


@dataclass
class StudyContext:
    """What a running study gets: its run folder, seed, and helpers for figures and training."""

    run: Any                    # neumo.runs.Run
    seed: int = 0
    preset: str = "quick"
    resume: bool = False
    progress: bool = False
    checkpoint_every: int = 0
    figures: list[str] = field(default_factory=list)

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as PNG into the run's artifacts and close it."""
        import matplotlib.pyplot as plt

        path = self.run.artifact(f"{name}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        rel = str(path.relative_to(self.run.dir))
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
    # Rough seconds of the quick preset on one thread; the lab starts the longest studies first.
    quick_cost_s: ClassVar[float] = 20.0

    def run(self, cfg: StrictModel, ctx: StudyContext) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError
