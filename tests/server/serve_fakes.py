"""A scripted stand-in for the scoring LM, to test the queue, the timeout and the limits deterministically."""

from __future__ import annotations

import threading


class ScriptedModel:
    """Counts whitespace tokens; ``analyze`` can be made to block until released; records concurrency."""

    def __init__(self):
        self.loads = 0
        self.active = 0
        self.max_active = 0
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self._lock = threading.Lock()

    def load(self):
        self.loads += 1
        return self

    @staticmethod
    def count(_lm, text: str) -> int:
        return len(text.split())

    def analyze(self, text, _lm, detectors):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            self.gate.wait(timeout=30)
            self.calls.append(text)
            from neumo.detect.schema import DetectionResult

            return DetectionResult(model="scripted", n_tokens=len(text.split()),
                                   scores={d: 0.0 for d in detectors or ["scripted"]}, verdict="undecided")
        finally:
            with self._lock:
                self.active -= 1
