"""scripts/detect_eval_table.py renders detect eval rows (docs/detect.md's tables) with the right means."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("detect_eval_table", ROOT / "scripts" / "detect_eval_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(file, det, auroc, tpr, default=False):
    return {"file": file, "detector": det, "default": default, "auroc": auroc, "auroc_lo": auroc - 0.05,
            "auroc_hi": auroc + 0.05, "tpr_at_1fpr": tpr}


def test_table_rows_and_means():
    rows = [_row("d/xsum_a.raw_data.json", "x", 0.8, 0.1, True), _row("d/xsum_a.raw_data.json", "y", 0.9, 0.3),
            _row("d/squad_b.raw_data.json.gz", "x", 0.6, 0.2, True), _row("d/squad_b.raw_data.json.gz", "y", 0.7, 0.5)]
    text = _script().render(rows, ["x", "y"], exclude="_b")
    assert "| file | x (default) | y |" in text
    assert "| xsum_a | 0.800 [0.750, 0.850] / 0.10 | 0.900 [0.850, 0.950] / 0.30 |" in text
    assert "| squad_b | 0.600 [0.550, 0.650] / 0.20 |" in text
    assert "| mean AUROC (2 files) | **0.700** | **0.800** |" in text
    assert "| mean AUROC without _b (1 files) | **0.800** | **0.900** |" in text
    assert "| mean TPR@1%FPR | **0.150** | **0.400** |" in text
