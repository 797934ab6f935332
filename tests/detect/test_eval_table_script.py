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


def test_docs_tables_are_the_kept_eval_json_rendered():
    # docs/detect.md's measured tables come from the eval JSON kept beside them, by this script, not by hand
    import json

    mod, doc = _script(), (ROOT / "docs" / "detect.md").read_text(encoding="utf-8")
    kept = {
        "detect_eval_open15_smollm2_bf16.json": (["logrank", "fast_detectgpt", "lastde++", "specdetect"], "gpt-neo-2.7B"),
        "detect_eval_chat_gemma_bf16.json": (["likelihood", "logrank", "fast_detectgpt", "lastde++", "specdetect"], None),
    }
    for name, (detectors, exclude) in kept.items():
        rows = json.loads((ROOT / "docs" / "measured" / name).read_text(encoding="utf-8"))
        assert mod.render(rows, detectors, exclude=exclude).strip() in doc, name


def test_white_box_chat_claim_matches_the_kept_json():
    # docs/detect.md: "SmolLM2 scoring its own chat text: every detector but entropy has AUROC 1.000 and
    # TPR@1%FPR 1.00; entropy has 0.789 / 0.931 / 0.897 on xsum / writing / squad"
    import json

    rows = json.loads((ROOT / "docs" / "measured" / "detect_eval_chat_smollm2_bf16.json").read_text(encoding="utf-8"))
    assert len({r["file"] for r in rows}) == 3 and len(rows) >= 3 * 8
    rest = [r for r in rows if r["detector"] != "entropy"]
    assert all(round(r["auroc"], 3) == 1.0 and round(r["tpr_at_1fpr"], 2) == 1.0 for r in rest)
    ent = {Path(r["file"]).name.split("_")[0]: round(r["auroc"], 3) for r in rows if r["detector"] == "entropy"}
    assert ent == {"xsum": 0.789, "writing": 0.931, "squad": 0.897}
