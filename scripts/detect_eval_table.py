"""Render `neumo detect eval --json` rows as the markdown tables of docs/detect.md (no hand-copied numbers).

    python scripts/detect_eval_table.py EVAL.json [--detector specdetect ...] [--exclude gpt-neo-2.7B]

Prints one table: a row per file with AUROC [bootstrap 95%] / TPR@1%FPR of each detector asked for, then the
mean over files (and, with ``--exclude``, the mean over the files whose name lacks that string: the files not
used to choose a default), and the mean TPR at 1% FPR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _name(path: str) -> str:
    name = Path(path).name
    for suffix in (".gz", ".json", ".raw_data"):
        name = name.removesuffix(suffix)
    return name


def render(rows: list[dict], detectors: list[str], exclude: str | None = None) -> str:
    detectors = detectors or sorted({r["detector"] for r in rows})
    cell = {(r["file"], r["detector"]): r for r in rows}
    files = list(dict.fromkeys(r["file"] for r in rows))
    head = ["file"] + [d + (" (default)" if any(r["default"] for r in rows if r["detector"] == d) else "") for d in detectors]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in files:
        vals = []
        for d in detectors:
            r = cell.get((f, d))
            vals.append("–" if r is None else f"{r['auroc']:.3f} [{r['auroc_lo']:.3f}, {r['auroc_hi']:.3f}] / {r['tpr_at_1fpr']:.2f}")
        out.append(f"| {_name(f)} | " + " | ".join(vals) + " |")

    def mean(key: str, keep) -> list[str]:
        vals = []
        for d in detectors:
            xs = [cell[(f, d)][key] for f in files if (f, d) in cell and keep(f)]
            vals.append(f"**{sum(xs) / len(xs):.3f}**" if xs else "–")
        return vals

    out.append(f"| mean AUROC ({len(files)} files) | " + " | ".join(mean("auroc", lambda f: True)) + " |")
    if exclude:
        kept = sum(exclude not in f for f in files)
        out.append(f"| mean AUROC without {exclude} ({kept} files) | " + " | ".join(mean("auroc", lambda f: exclude not in f)) + " |")
    out.append("| mean TPR@1%FPR | " + " | ".join(mean("tpr_at_1fpr", lambda f: True)) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json", type=Path)
    ap.add_argument("--detector", "-d", action="append", default=[])
    ap.add_argument("--exclude", default=None)
    a = ap.parse_args(argv)
    rows = json.loads(a.eval_json.read_text(encoding="utf-8"))
    print(render(rows if isinstance(rows, list) else rows["rows"], a.detector, a.exclude))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
