"""scripts/readme_verdicts.py writes the README's verdict table from a report.json, not by hand."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("readme_verdicts", ROOT / "scripts" / "readme_verdicts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _report():
    check = {"name": "acc", "op": ">=", "threshold": 0.95, "per_seed": [0.96, 0.97, 0.98], "mean": 0.97,
             "ci_low": 0.9452, "ci_high": 0.9948, "null_mean": 0.1, "relative_to": None, "passed": None}
    return {"meta": {"preset": "quick", "seed": 0, "seeds": 3, "jobs": 2, "elapsed_s": 812.4, "cpu_s": 1500.2, "load_avg_1m": 2.04, "lab_run": "lab-x",
                     "neumo_version": "0.1"},
            "verdicts": [{"study": "S-a", "status": "inconclusive", "checks": [check]},
                         {"study": "S-b", "status": "error", "reason": "boom", "checks": []},
                         {"study": "S-c", "status": "inconclusive", "checks": [check],
                          "preconditions": [{"name": "acc_at_L", "value": 0.488, "op": ">=", "threshold": 0.95,
                                             "passed": False}]}]}


def test_table_is_replaced_between_markers_and_check_mode_detects_drift(tmp_path):
    mod = _script()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- verdicts:begin -->\nSTALE TABLE\n<!-- verdicts:end -->\noutro\n")
    rep = tmp_path / "report.json"
    rep.write_text(json.dumps(_report()))
    assert mod.main([str(rep), "--readme", str(readme), "--check"]) == 1
    assert mod.main([str(rep), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "STALE TABLE" not in text
    assert "| S-a | **inconclusive** | `acc` 0.97 [0.945, 0.995] | >= 0.95 | 0.1 |" in text
    assert "| S-b | **error** | boom |" in text
    assert "| S-c | **inconclusive** | gate `acc_at_L` 0.488 (worst seed) | >= 0.95 | – |" in text and "812 s in all, 1500 CPU-s, load average 2.0 at the end" in text and "seeds 0..2" in text
    assert mod.main([str(rep), "--readme", str(readme), "--check"]) == 0


def test_readme_has_the_markers():
    text = (ROOT / "README.md").read_text()
    assert "<!-- verdicts:begin -->" in text and "<!-- verdicts:end -->" in text
