"""Metric plots of a run, rendered server-side as SVG with ``neumo.report.figures``.

pyplot keeps global state, so figures are built under one lock (the API serves requests in threads).
"""

from __future__ import annotations

import io
import threading
from typing import Any

from neumo.server.limits import ApiError
from neumo.server.runs_access import metric_keys, series

_LOCK = threading.Lock()


def metric_svg(rows: list[dict[str, Any]], keys: list[str], title: str = "") -> bytes:
    """One line per metric in ``keys`` against the step; 404 when a key is never logged as a number."""
    known = metric_keys(rows)
    missing = [k for k in keys if k not in known]
    if missing or not keys:
        raise ApiError(
            404,
            "unknown_metric",
            f"no numeric metric {', '.join(map(repr, missing)) or '(none given)'} in this run; "
            f"known: {', '.join(known) or 'none'}",
        )
    data = {k: series(rows, k) for k in keys}
    with _LOCK:
        import matplotlib.pyplot as plt

        from neumo.report.figures import line_plot

        fig, _ = line_plot(
            data, xlabel="step", ylabel=keys[0] if len(keys) == 1 else "", title=title, figsize=(5.0, 3.0)
        )
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="svg")
        finally:
            plt.close(fig)
    return buf.getvalue()
