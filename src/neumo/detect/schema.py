"""The result of analysing one text: the contract between the library, the CLI and the server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ThresholdInfo(BaseModel):
    """A decision threshold and where it came from (never a hard-coded constant)."""

    detector: str
    value: float
    reference: str  # name of the reference set it was fitted on
    n: int  # texts in that reference set
    fitted_at: str  # ISO 8601 time of fitting
    target_fpr: float | None = None
    calibration: str | None = None  # the file that decided: its path, or "<name>.json (shipped)"
    band: tuple[float, float] | None = None  # scores in [lo, hi) are undecided (evaluate.threshold_band)


class TokenEvidence(BaseModel):
    token: str  # exact text of the token; joined, the tokens reproduce the scored text
    logprob: float
    rank: int  # 1 = the model's argmax
    entropy: float
    in_top_p: bool
    in_top_k: bool
    evidence: float  # > 0 pushes toward "machine" (see neumo.detect.explain)


class SentenceScore(BaseModel):
    text: str
    start_token: int  # token span [start_token, end_token)
    end_token: int
    score: float  # Fast-DetectGPT criterion of the sentence's tokens


class DetectionResult(BaseModel):
    model: str
    precision: str = "fp32"  # of the scoring model's forward pass (neumo.detect.lm.hf.PRECISIONS)
    n_tokens: int
    scores: dict[str, float]  # detector -> score, higher = more machine-like
    verdict: Literal["machine", "human", "undecided"]
    threshold: ThresholdInfo | None = None
    tokens: list[TokenEvidence] = Field(default_factory=list)
    sentences: list[SentenceScore] = Field(default_factory=list)
    mechanisms: dict[str, float] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)  # plain-language reading of the mechanisms
