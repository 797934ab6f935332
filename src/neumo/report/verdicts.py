"""Text forms of a verdict's numbers, shared by the terminal table, the HTML report and the README script.

They read the JSON form of a verdict (``Verdict.model_dump(mode="json")``) so that a saved
``report.json`` renders the same way as a live run.
"""

from __future__ import annotations

from typing import Any


def num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, float)):
        return f"{x:.{digits}g}"
    return str(x)


def interval(check: dict[str, Any], digits: int = 3) -> str:
    """``mean [lo, hi]``; ``mean [no interval]`` when there was only one finite value."""
    m = num(check.get("mean"), digits)
    lo, hi = check.get("ci_low"), check.get("ci_high")
    if lo is None or hi is None:
        return f"{m} [no interval]"
    return f"{m} [{num(lo, digits)}, {num(hi, digits)}]"


def expected(check: dict[str, Any]) -> str:
    rel = check.get("relative_to")
    base = f"{check['op']} {num(check['threshold'], 4)}"
    return f"{base} ({check.get('relation') or 'ratio'} to {rel})" if rel else base


def decision(check: dict[str, Any]) -> str:
    return {True: "pass", False: "fail", None: "undecided"}[check.get("passed")]


def key_check(verdict: dict[str, Any]) -> dict[str, Any] | None:
    """The check a one-line summary shows: the first failed, else the first undecided, else the first."""
    checks = verdict.get("checks") or []
    for want in (False, None):
        for c in checks:
            if c.get("passed") is want:
                return c
    return checks[0] if checks else None


def failed_gate(verdict: dict[str, Any]) -> dict[str, Any] | None:
    return next((g for g in verdict.get("preconditions") or [] if not g.get("passed")), None)


def key_number(verdict: dict[str, Any], width: int = 40) -> str:
    """The key check's interval, or the first failed gate when a precondition blocked the checks."""
    g = failed_gate(verdict)
    if g is not None:
        text = f"{num(g.get('value'))} (gate {g['op']}{num(g['threshold'])}) {g['name']}"
        return text if len(text) <= width else text[: width - 1] + "…"
    c = key_check(verdict)
    if c is None:
        return (verdict.get("reason") or verdict.get("summary") or "")[:width]
    text = f"{interval(c)} {c['name']}"  # the number first: a narrow terminal cuts the name, not the number
    return text if len(text) <= width else text[: width - 1] + "…"


__all__ = ["decision", "expected", "failed_gate", "interval", "key_check", "key_number", "num"]
