"""A run's saved config.yaml is one document that `config validate` accepts and `--config` re-runs.

Covered: a study run, a memory run, a memory sweep and a lab (issue "Hardened seams", item 4).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from neumo.catalog import validate_document, validate_file



def _only_run(root: Path, prefix: str) -> Path:
    runs = sorted(p for p in root.iterdir() if p.name.startswith(prefix))
    assert runs, f"no {prefix}* run under {root}"
    return runs[-1]


def test_study_run_config_validates_and_reruns_to_the_same_result(tmp_path, cli):
    root = tmp_path / "runs"
    argv = ["study", "run", "F-mlp-digits", "--seeds", "2", "--seed", "3", "--set", "train.steps=30",
            "--set", "train.eval_every=10", "--runs-dir", str(root), "--json"]
    code, out, err = cli(argv)
    assert code == 0, err
    first = json.loads(out)
    saved = _only_run(root, "study-F-mlp-digits") / "config.yaml"

    kind, _ = validate_file(saved)
    assert kind == "study:F-mlp-digits"
    code, out, err = cli(["config", "validate", str(saved)])
    assert code == 0, err

    code, out, err = cli(["study", "run", "--config", str(saved), "--runs-dir", str(tmp_path / "again"),
                           "--json"])
    assert code == 0, err
    second = json.loads(out)
    assert second["seeds"] == first["seeds"] == [3, 4]
    assert second["status"] == first["status"]
    assert [c["per_seed"] for c in second["checks"]] == [c["per_seed"] for c in first["checks"]]


def test_a_saved_study_document_with_an_unknown_setting_is_refused(tmp_path):
    doc = {"study": "F-mlp-digits", "preset": "quick", "seeds": 0, "config": {}}
    with pytest.raises(Exception, match="seeds"):
        validate_document(doc, "saved")


def test_memory_run_config_validates(tmp_path):
    from neumo.memory.train import MemoryRunConfig
    from neumo.memory.workflow import train_run

    cfg = MemoryRunConfig(task="parity", model="lstm", train={"steps": 3, "batch_size": 8, "lr": 1e-3,
                                                              "eval_every": 3, "log_every": 1}, eval_size=8)
    run, _ = train_run(cfg, root=tmp_path)
    kind, back = validate_file(run.dir / "config.yaml")
    assert kind == "memory-run" and back.model_dump() == cfg.model_dump()


def test_memory_sweep_document_validates():
    from neumo.config import shipped_configs

    sweeps = [p for p in shipped_configs() if (yaml.safe_load(p.read_text()) or {}).get("kind") == "memory-sweep"]
    assert sweeps
    kind, cfg = validate_file(sweeps[0])
    # what `neumo memory sweep` writes into its run folder
    saved = {"kind": "memory-sweep", **cfg.model_dump(mode="json")}
    kind2, cfg2 = validate_document(saved, "saved sweep")
    assert kind2 == kind and cfg2.model_dump() == cfg.model_dump()


def test_lab_config_validates_and_reruns(tmp_path, cli):
    root = tmp_path / "runs"
    code, out, err = cli(["lab", "--quick", "--study", "S-sharpening", "--seeds", "1", "--jobs", "1",
                           "--runs-dir", str(root), "--json"])
    assert code == 0, err
    first = json.loads(out)["verdicts"]
    saved = _only_run(root, "lab") / "config.yaml"
    kind, doc = validate_file(saved)
    assert kind == "lab" and doc.studies == ["S-sharpening"] and doc.seeds == 1

    code, out, err = cli(["lab", "--config", str(saved), "--runs-dir", str(tmp_path / "again"), "--json"])
    assert code == 0, err
    second = json.loads(out)["verdicts"]
    assert [v["study"] for v in second] == ["S-sharpening"]
    assert [c["per_seed"] for c in second[0]["checks"]] == [c["per_seed"] for c in first[0]["checks"]]


def test_lab_config_of_another_kind_is_refused(tmp_path, cli):
    f = tmp_path / "x.yaml"
    f.write_text("study: F-mlp-digits\n")
    code, _, err = cli(["lab", "--config", str(f), "--runs-dir", str(tmp_path / "r")])
    assert code == 2 and err.startswith("error:") and "not a lab" in err
