"""The lab report: ``report.html`` (self-contained: figures inline as PNG) and ``report.json``."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from neumo import __version__
from neumo.report.verdicts import decision, expected, failed_gate, interval, key_check, num
from neumo.runs.atomic import atomic_write_json, atomic_write_text

_COLOURS = {"holds": "#1b7f3b", "fails": "#b3261e", "inconclusive": "#8a6d00", "error": "#6b1e8f"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:1em 0}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .st{font-weight:600;text-transform:uppercase;font-size:.8em}
section{border-top:2px solid #eee;margin-top:2em;padding-top:.5em}
figure{display:inline-block;margin:.5em} figure img{max-width:520px;border:1px solid #eee}
code{background:#f4f4f4;padding:0 .2em} .small{font-size:.85em;color:#555}
table.verdicts{table-layout:fixed} .num{font-size:.8em;font-family:ui-monospace,monospace;overflow-wrap:anywhere}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    return str(v)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows[:60]
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _dots_svg(c: dict[str, Any], width: int = 240, height: int = 30) -> str:
    """Per-seed dots (blue), the 95% interval (bar), the threshold (red dashed line) and, in grey rings on
    the same scale, the first control's per-seed values (a null judged in the treatment's place) or, for
    an absolute check, the null's own values."""
    vals = [x for x in c.get("per_seed", []) if isinstance(x, (int, float))]
    ctrl = c.get("controls") or []
    ring_src = ctrl[0].get("per_seed", []) if ctrl else ([] if c.get("relative_to") else c.get("null_per_seed", []))
    nulls = [x for x in ring_src if isinstance(x, (int, float))]
    lo, hi = c.get("ci_low"), c.get("ci_high")
    pts = vals + nulls + [c["threshold"]] + [x for x in (lo, hi) if isinstance(x, (int, float))]
    a, b = min(pts), max(pts)
    if b - a < 1e-12:
        a, b = a - 1, b + 1
    pad = 0.06 * (b - a)
    a, b = a - pad, b + pad

    def X(v: float) -> float:
        return 6 + (width - 12) * (v - a) / (b - a)

    parts = [
        f"<line x1='{X(c['threshold']):.1f}' x2='{X(c['threshold']):.1f}' y1='2' y2='{height - 2}' "
        "stroke='#b3261e' stroke-dasharray='3,2'/>"
    ]
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        parts.append(f"<line x1='{X(lo):.1f}' x2='{X(hi):.1f}' y1='11' y2='11' stroke='#1f4e9c' stroke-width='3'/>")
    parts += [f"<circle cx='{X(v):.1f}' cy='11' r='3' fill='#1f4e9c' opacity='.8'/>" for v in vals]
    parts += [f"<circle cx='{X(v):.1f}' cy='22' r='3' fill='none' stroke='#777'/>" for v in nulls]
    title = html.escape(f"range {a:.3g} .. {b:.3g}; threshold {c['threshold']:g}")
    return f"<svg width='{width}' height='{height}' role='img'><title>{title}</title>{''.join(parts)}</svg>"


def _checks_html(v: dict[str, Any]) -> str:
    blocked = failed_gate(v) is not None
    rows = []
    for c in v.get("checks", []):
        controls = "; ".join(
            f"{html.escape(k['arm'])}: {html.escape(interval(k))} → {decision(k)}" for k in c.get("controls", [])
        )
        null = num(c.get("null_mean")) if c.get("null_mean") is not None else "–"
        rows.append(
            f"<tr><td><code>{html.escape(c['name'])}</code><div class='small'>{html.escape(c.get('label', ''))}</div></td>"
            f"<td class='num'>{html.escape(interval(c))}</td>"
            f"<td class='num'>{html.escape(expected(c))}<div class='small'>{html.escape(c.get('justification', ''))}</div></td>"
            f"<td class='num'>{html.escape(null)}<div class='small'>{controls}</div></td>"
            f"<td>{_dots_svg(c)}</td><td class='st'>{'not judged (gate failed)' if blocked else decision(c)}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><tr><th>check</th><th>mean [95% interval]</th><th>threshold</th><th>null mean · controls</th>"
        "<th>per seed (●) · control (○) · threshold (┆)</th><th>decision</th></tr>" + "".join(rows) + "</table>"
    )


def _gates_html(v: dict[str, Any]) -> str:
    gates = v.get("preconditions", [])
    if not gates:
        return ""
    rows = "".join(
        f"<tr><td><code>{html.escape(g['name'])}</code> ({html.escape(g.get('arm', ''))})</td>"
        f"<td class='num'>{num(g.get('value'))} (worst seed)</td><td class='num'>{g['op']} {g['threshold']:g}</td>"
        f"<td class='small'>{html.escape(g.get('why', ''))}</td>"
        f"<td class='st'>{'met' if g['passed'] else 'not met'}</td></tr>"
        for g in gates
    )
    return (
        "<h4>preconditions</h4><table><tr><th>gate</th><th>value</th><th>required</th><th>why</th><th></th></tr>"
        + rows
        + "</table>"
    )


def build_report(
    verdicts: list[dict[str, Any]],
    title: str = "neumo lab report",
    meta: dict[str, Any] | None = None,
    studies: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return ``(html, json_obj)`` for a list of verdict dicts (each with ``run_dir``).

    ``studies`` maps a study id to an object with ``citation``, ``instrument`` and ``threshold_history``
    (the caller passes the registry in: report/ sits below studies/ and must not import it).
    """
    studies = studies or {}
    meta = {
        "neumo_version": __version__,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(meta or {}),
    }
    counts = {s: sum(v["status"] == s for v in verdicts) for s in _COLOURS}
    rows = []
    for v in verdicts:
        colour = _COLOURS.get(v["status"], "#333")
        kc = key_check(v)
        rows.append(
            f"<tr><td><a href='#{html.escape(v['study'])}'>{html.escape(v['study'])}</a></td>"
            f"<td class='claim'>{html.escape(v.get('claim', ''))}</td>"
            f"<td class='num'>{html.escape(kc['name'] + ' ' + interval(kc)) if kc else ''}</td>"
            f"<td class='num'>{html.escape(expected(kc)) if kc else ''}</td>"
            f"<td class='st' style='color:{colour}'>{v['status']}</td><td>{v.get('elapsed_s', 0):.1f}s</td></tr>"
        )
    sections = []
    for v in verdicts:
        cls = studies.get(v["study"])
        history = getattr(cls, "threshold_history", "")
        figs = []
        for rel in v.get("figures", []):
            p = Path(v.get("run_dir", "")) / rel
            if p.is_file():
                figs.append(f"<figure>{_img(p)}<figcaption class='small'>{html.escape(p.stem)}</figcaption></figure>")
        tables = "".join(f"<h4>{html.escape(n)}</h4>{_table_html(t)}" for n, t in v.get("tables", {}).items())
        measured = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_fmt(x))}</td></tr>"
            for k, x in v.get("measured", {}).items()
        )
        nulls = "".join(
            f"<li><code>{html.escape(k)}</code>: {html.escape(d)}</li>" for k, d in v.get("nulls", {}).items()
        )
        colour = _COLOURS.get(v["status"], "#333")
        sections.append(
            f"<section id='{html.escape(v['study'])}'><h2>{html.escape(v['study'])} "
            f"<span class='st' style='color:{colour}'>{v['status']}</span></h2>"
            f"<p><b>Claim.</b> {html.escape(v.get('claim', ''))}</p>"
            f"<p><b>Verdict.</b> {html.escape(v.get('reason', ''))}</p>"
            f"<p class='small'>{html.escape(getattr(cls, 'citation', '') or '')} · instrument "
            f"{html.escape(getattr(cls, 'instrument', '?'))} · preset {html.escape(v.get('preset', ''))} · "
            f"seeds {v.get('seeds', [])} ({html.escape(v.get('replication', ''))}) · {v.get('elapsed_s', 0):.1f}s</p>"
            f"{_checks_html(v)}{_gates_html(v)}"
            + (f"<h4>nulls</h4><ul class='small'>{nulls}</ul>" if nulls else "")
            + (f"<p class='small'><b>Changed after a first look.</b> {html.escape(history)}</p>" if history else "")
            + f"<p>{html.escape(v.get('summary', ''))}</p>{''.join(figs)}{tables}"
            f"<details><summary>all measured values (seed means)</summary><table>{measured}</table></details></section>"
        )
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='sub'>neumo {html.escape(meta['neumo_version'])} · {html.escape(meta['generated'])} · "
        f"{len(verdicts)} studies: {summary}</p>"
        f"<table class='verdicts'><tr><th style='width:11%'>study</th><th style='width:30%'>claim</th>"
        f"<th style='width:25%'>key check [95% interval]</th><th style='width:22%'>threshold</th>"
        f"<th style='width:7%'>verdict</th>"
        f"<th style='width:5%'>time</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>"
    )
    return doc, {"meta": meta, "counts": counts, "verdicts": verdicts}


def write_report(folder: Path, verdicts: list[dict[str, Any]], **kw) -> tuple[Path, Path]:
    doc, obj = build_report(verdicts, **kw)
    h, j = Path(folder) / "report.html", Path(folder) / "report.json"
    atomic_write_text(h, doc)
    atomic_write_json(j, obj)
    return h, j
