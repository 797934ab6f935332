"""Write the README's verdict table from a lab run's ``report.json`` (no hand-copied numbers).

    python scripts/readme_verdicts.py runs/lab-<stamp>-<id>/report.json [--readme README.md] [--check]

Replaces the text between ``<!-- verdicts:begin -->`` and ``<!-- verdicts:end -->``. With ``--check`` it
only reports whether the README already matches the report (exit code 1 when it does not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neumo.report.verdicts import expected, failed_gate, interval, key_check, num  # noqa: E402

BEGIN, END = "<!-- verdicts:begin -->", "<!-- verdicts:end -->"


def _null(c: dict) -> str:
    if c.get("null_mean") is None:
        return "–"
    return f"{c['null_mean']:.3g}" + (f" ({c['relative_to']})" if c.get("relative_to") else "")


def _cpu(meta: dict) -> str:
    if meta.get("cpu_s") is None:
        return ""
    return f", {meta['cpu_s']:.0f} CPU-s, load average {meta.get('load_avg_1m', 0):.1f} at the end"


def render(report: dict) -> str:
    meta = report["meta"]
    lines = [f"Measured by `neumo lab {'--quick' if meta.get('preset') == 'quick' else ''}` "
             f"(preset {meta.get('preset')}, seeds {meta.get('seed', 0)}..{meta.get('seed', 0) + meta.get('seeds', 1) - 1}, "
             f"{meta.get('jobs')} workers, {meta.get('elapsed_s', 0):.0f} s in all{_cpu(meta)}; lab run `{meta.get('lab_run')}`, "
             f"neumo {meta.get('neumo_version')}). Each row: the key check (the first failed or undecided one, "
             "else the first) as seed mean [95% interval], its threshold, and the null beside it; where a "
             "precondition failed, that gate instead (its checks are not judged).", "",
             "| study | verdict | key check: mean [95% interval] | threshold | null mean |",
             "|---|---|---|---|---|"]
    for v in report["verdicts"]:
        g = failed_gate(v)
        if g is not None:   # a precondition blocked the checks: show it, not a check that does not count
            lines.append(f"| {v['study']} | **{v['status']}** | gate `{g['name']}` {num(g.get('value'))} (worst seed) "
                         f"| {g['op']} {num(g['threshold'], 4)} | – |")
            continue
        c = key_check(v)
        if c is None:
            lines.append(f"| {v['study']} | **{v['status']}** | {(v.get('reason') or '')[:80]} | | |")
            continue
        lines.append(f"| {v['study']} | **{v['status']}** | `{c['name']}` {interval(c)} | {expected(c)} | {_null(c)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--readme", type=Path, default=Path(__file__).resolve().parents[1] / "README.md")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    report = json.loads(a.report.read_text(encoding="utf-8"))
    text = a.readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"error: {a.readme} has no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{render(report)}\n{END}{tail}"
    if a.check:
        return 0 if new == text else 1
    a.readme.write_text(new, encoding="utf-8")
    print(f"wrote the verdict table of {len(report['verdicts'])} studies into {a.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
