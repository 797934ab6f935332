"""The shared scoring model behind ``/api/detect``: loaded once, lazily, and fed by one worker queue.

One worker thread owns the model. Requests queue for it (at most ``max_queue`` at once), so concurrent
clients take turns instead of running several forward passes that fight over the same CPU cores. Each
request has a deadline: a request still waiting when its deadline passes is answered with a timeout and
is dropped from the queue without being scored (a forward pass already running cannot be interrupted;
it finishes and its result is discarded). Loading the model is not counted against the timeout: the first
request waits for the load (tens of seconds the first time SmolLM2 is converted), then for its scoring.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from neumo.errors import NeumoError
from neumo.server.limits import ApiError, Limits, limit_error

if TYPE_CHECKING:
    from neumo.detect.evaluate import Calibration


class _Expired(Exception):
    """The request's deadline passed while it waited in the queue."""


def _default_loader(model: str, precision: Optional[str] = None) -> Callable[[], Any]:
    def load():
        from neumo.detect.lm import face_precision, load_lm

        return load_lm(model, precision=face_precision(model, precision))

    return load


def _default_analyzer(calibration: Optional[Path | Calibration]) -> Callable[..., Any]:
    """``analyze_text`` with a fixed calibration; a calibration file is read once, here, not per request."""
    if isinstance(calibration, (str, Path)):
        from neumo.detect.evaluate import load_calibration

        calibration = load_calibration(calibration)

    def analyze(text: str, lm: Any, detectors: Optional[list[str]], performer: Any = None):
        from neumo.detect.analyze import analyze_text

        return analyze_text(text, lm, detectors=detectors, calibration=calibration, performer=performer)

    return analyze


def count_tokens(lm: Any, text: str) -> int:
    """Tokens the model scores for ``text`` (the LM's own tokenizer; ``encode`` gives ids and pieces)."""
    ids, _pieces = lm.encode(text)
    return len(ids)


class Scorer:
    """Lazily loaded model + single-worker queue. ``loader``/``analyzer``/``counter`` are injectable.

    ``performer``: a second model (loaded with the first; it must share its tokenizer, else the load fails
    with 503 ``model_unavailable``) for the two-model detector ``binoculars``; ``precision``: of both."""

    def __init__(
        self,
        model: str,
        limits: Limits,
        calibration: Optional[Path | Calibration] = None,
        loader: Optional[Callable[[], Any]] = None,
        analyzer: Optional[Callable[..., Any]] = None,
        counter: Callable[[Any, str], int] = count_tokens,
        precision: Optional[str] = None,
        performer: Optional[str] = None,
        performer_loader: Optional[Callable[[], Any]] = None,
    ):
        self.model, self.limits, self.performer = model, limits, performer
        self._load = loader or _default_loader(model, precision)
        self._load_performer = performer_loader or (_default_loader(performer, precision) if performer else None)
        self._perf: Any = None
        self._analyze = analyzer or _default_analyzer(calibration)
        self._count = counter
        self._lm: Any = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neumo-scorer")
        self._pending = 0
        self._plock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._lm is not None

    @property
    def pending(self) -> int:
        return self._pending

    def _job(self, text: str, detectors: Optional[list[str]], deadline: float):
        # runs on the single worker thread: the model is loaded here, once, and only used here
        if time.monotonic() > deadline:
            raise _Expired()
        self._ensure_loaded()
        n = self._count(self._lm, text)
        if n > self.limits.max_tokens:
            raise limit_error(
                413,
                "max_tokens",
                self.limits.max_tokens,
                f"text is {n} tokens long, above the limit of {self.limits.max_tokens} tokens; split it or shorten it",
            )
        if self._perf is not None:
            return self._analyze(text, self._lm, detectors, performer=self._perf)
        return self._analyze(text, self._lm, detectors)

    def _ensure_loaded(self) -> None:
        # worker thread only; a model that cannot load is the server's problem, not the request's: 503
        if self._lm is None:
            try:
                lm = self._load()
                if self._load_performer is not None:
                    from neumo.detect.binoculars import check_pair

                    perf = self._load_performer()
                    check_pair(lm, perf)
                    self._perf = perf
                self._lm = lm
            except NeumoError as e:
                raise ApiError(503, "model_unavailable", f"the scoring model {self.model!r} cannot load: {e}") from None

    def _submit(self, fn, *args):
        try:
            return self._pool.submit(fn, *args)
        except RuntimeError:  # the pool is shut down: the server is stopping
            raise ApiError(503, "shutting_down", "the server is shutting down; retry later") from None

    def _done(self, _fut) -> None:
        with self._plock:
            self._pending -= 1

    async def detect(self, text: str, detectors: Optional[list[str]] = None):
        """Score ``text`` on the worker; raises :class:`ApiError` for a full queue or a timeout."""
        lim = self.limits
        with self._plock:
            if self._pending >= lim.max_queue:
                raise limit_error(
                    429,
                    "max_queue",
                    lim.max_queue,
                    f"{lim.max_queue} detect requests are already queued; retry in a moment",
                )
            self._pending += 1
        try:
            if self._lm is None:  # the first request waits for the load; the timeout covers scoring only
                await asyncio.wrap_future(self._submit(self._ensure_loaded))
            deadline = time.monotonic() + lim.timeout_s
            fut = self._submit(self._job, text, detectors, deadline)
        except BaseException:
            self._done(None)
            raise
        fut.add_done_callback(self._done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout=lim.timeout_s)
        except (asyncio.TimeoutError, _Expired, CancelledError):
            fut.cancel()  # never starts if it is still queued
            raise limit_error(
                408,
                "timeout_s",
                lim.timeout_s,
                f"scoring took longer than the limit of {lim.timeout_s:g} s "
                "(queue wait included); send a shorter text or retry when the server is idle",
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
