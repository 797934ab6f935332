"""The lab report: ``report.html`` (self-contained: figures inline as PNG) and ``report.json``."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neumo import __version__
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


def _measured_cell(v: dict[str, Any]) -> str:
    keys = list(v.get("expected", {})) or list(v.get("measured", {}))[:4]
    parts = [f"{html.escape(k)} = {_fmt(v.get('measured', {}).get(k))}" for k in keys]
    return "<br>".join(parts)


def _expected_cell(v: dict[str, Any]) -> str:
    return "<br>".join(f"{html.escape(k)} {html.escape(e)}" for k, e in v.get("expected", {}).items())


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows[:60])
    return f"<table><tr>{head}</tr>{body}</table>"


def build_report(verdicts: list[dict[str, Any]], title: str = "neumo lab report",
                 meta: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Return ``(html, json_obj)`` for a list of verdict dicts (each with ``run_dir``)."""
    from neumo.studies.registry import all_studies

    studies = all_studies()
    meta = {"neumo_version": __version__, "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **(meta or {})}
    counts = {s: sum(v["status"] == s for v in verdicts) for s in _COLOURS}
    rows = []
    for v in verdicts:
        colour = _COLOURS.get(v["status"], "#333")
        rows.append(
            f"<tr><td><a href='#{html.escape(v['study'])}'>{html.escape(v['study'])}</a></td>"
            f"<td class='claim'>{html.escape(v.get('claim', ''))}</td><td class='num'>{_measured_cell(v)}</td>"
            f"<td class='num'>{_expected_cell(v)}</td>"
            f"<td class='st' style='color:{colour}'>{v['status']}</td><td>{v.get('elapsed_s', 0):.1f}s</td></tr>")
    sections = []
    for v in verdicts:
        cls = studies.get(v["study"])
        figs = []
        for rel in v.get("figures", []):
            p = Path(v.get("run_dir", "")) / rel
            if p.is_file():
                figs.append(f"<figure>{_img(p)}<figcaption class='small'>{html.escape(p.stem)}</figcaption></figure>")
        tables = "".join(f"<h4>{html.escape(n)}</h4>{_table_html(t)}" for n, t in v.get("tables", {}).items())
        measured = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_fmt(x))}</td></tr>"
                           for k, x in v.get("measured", {}).items())
        colour = _COLOURS.get(v["status"], "#333")
        sections.append(
            f"<section id='{html.escape(v['study'])}'><h2>{html.escape(v['study'])} "
            f"<span class='st' style='color:{colour}'>{v['status']}</span></h2>"
            f"<p><b>Claim.</b> {html.escape(v.get('claim', ''))}</p>"
            f"<p class='small'>{html.escape(getattr(cls, 'citation', '') or '')} · instrument "
            f"{html.escape(getattr(cls, 'instrument', '?'))} · preset {html.escape(v.get('preset', ''))} · "
            f"seeds {v.get('seeds', [])} · {v.get('elapsed_s', 0):.1f}s</p>"
            f"<p>{html.escape(v.get('summary', ''))}</p>{''.join(figs)}{tables}"
            f"<details><summary>all measured values</summary><table>{measured}</table></details></section>")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
           f"<p class='sub'>neumo {html.escape(meta['neumo_version'])} · {html.escape(meta['generated'])} · "
           f"{len(verdicts)} studies: {summary}</p>"
           f"<table class='verdicts'><tr><th style='width:11%'>study</th><th style='width:30%'>claim</th>"
           f"<th style='width:25%'>measured</th><th style='width:22%'>expected</th><th style='width:7%'>verdict</th>"
           f"<th style='width:5%'>time</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>")
    return doc, {"meta": meta, "counts": counts, "verdicts": verdicts}


def write_report(folder: Path, verdicts: list[dict[str, Any]], **kw) -> tuple[Path, Path]:
    doc, obj = build_report(verdicts, **kw)
    h, j = Path(folder) / "report.html", Path(folder) / "report.json"
    atomic_write_text(h, doc)
    atomic_write_json(j, obj)
    return h, j
