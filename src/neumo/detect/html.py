"""A self-contained HTML heat map of one DetectionResult: each token coloured by its evidence."""

from __future__ import annotations

import html

from neumo.detect.schema import DetectionResult


def _colour(e: float, scale: float) -> str:
    a = min(abs(e) / scale, 1.0) * 0.6
    return f"rgba(214,39,40,{a:.2f})" if e > 0 else f"rgba(31,119,180,{a:.2f})"


def render_html(r: DetectionResult, title: str = "neumo detect") -> str:
    scale = max([abs(t.evidence) for t in r.tokens] + [1e-9])
    spans = "".join(
        f'<span style="background:{_colour(t.evidence, scale)}" title="logprob {t.logprob:.2f} | rank {t.rank} | '
        f'entropy {t.entropy:.2f} | evidence {t.evidence:+.2f}{"" if t.in_top_p else " | outside top-p"}">'
        f"{html.escape(t.token)}</span>"
        for t in r.tokens
    )
    scores = "".join(f"<li>{html.escape(k)}: {v:.4f}</li>" for k, v in r.scores.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
    thr = (
        f"threshold {r.threshold.value:.4f} on {html.escape(r.threshold.detector)} (reference "
        f"{html.escape(r.threshold.reference)}, n={r.threshold.n}, fitted {html.escape(r.threshold.fitted_at)}"
        + (f"; undecided in [{r.threshold.band[0]:.4f}, {r.threshold.band[1]:.4f})" if r.threshold.band else "")
        + (f"; calibration {html.escape(r.threshold.calibration)}" if r.threshold.calibration else "")
        + ")"
        if r.threshold
        else "no calibration: verdict undecided"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}.text{{white-space:pre-wrap;line-height:1.7;
font-family:monospace}}</style></head><body><h1>{html.escape(title)}</h1>
<p>model <b>{html.escape(r.model)}</b> ({html.escape(r.precision)}), {r.n_tokens} tokens, verdict <b>{r.verdict}</b> ({thr})</p>
<p>red: token more probable than the model's typical choice (machine-like); blue: surprising (human-like).</p>
<div class="text">{spans}</div><h2>scores</h2><ul>{scores}</ul><h2>what the numbers show</h2><ul>{notes}</ul>
</body></html>"""
