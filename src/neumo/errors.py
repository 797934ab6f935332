"""Errors that reach a user. Each says what went wrong and how to fix it, in one line.

The CLI prints ``NeumoError`` messages as ``error: ...`` and exits with code 2, never with a traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class NeumoError(Exception):
    """A user-facing error: bad input, missing file, missing model, invalid config."""


class ConfigError(NeumoError):
    """A configuration did not validate. ``errors`` holds one ``(path, message)`` per problem."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.errors = list(errors or [])


class RunError(NeumoError):
    """A run folder is missing, corrupt or cannot be resumed."""


class MissingDependencyError(NeumoError):
    """An optional dependency or packaged model is not installed."""


def check_choice(name: str, value, choices) -> None:
    """Uniform message for an invalid choice (scikit-learn style)."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise NeumoError(f"The {name!r} parameter must be one of {opts}. Got {value!r} instead.")


def check_positive(name: str, value, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise NeumoError(f"The {name!r} parameter must be {bound}. Got {value!r} instead.")
