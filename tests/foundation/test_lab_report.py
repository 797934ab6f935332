import json
import os

from neumo.report.html import build_report
from neumo.studies import all_studies
from neumo.studies.lab import run_lab


def test_lab_writes_self_contained_report(tmp_path, monkeypatch):
    import neumo.studies.lab as lab_mod

    small = ["train.steps=30", "hidden=[16]"]
    monkeypatch.setattr(lab_mod, "default_seeds", lambda preset: 2)
    orig = lab_mod.run_study
    monkeypatch.setattr(lab_mod, "run_study", lambda sid, **kw: orig(sid, overrides=small, **kw))
    seen = []
    lab, verdicts, html_path, json_path = run_lab(only=["F-mlp-digits"], root=tmp_path, jobs=1,
                                                  on_verdict=seen.append)
    assert [v.study for v in seen] == ["F-mlp-digits"]
    html = html_path.read_text()
    assert "data:image/png;base64," in html and "F-mlp-digits" in html and "<script" not in html
    obj = json.loads(json_path.read_text())
    assert obj["verdicts"][0]["study"] == "F-mlp-digits"
    assert obj["counts"][verdicts[0].status] == 1
    meta = obj["meta"]  # a study trained in this process: its CPU time is counted, and bounded by wall x cores
    assert 0 < meta["cpu_s"] <= meta["elapsed_s"] * (os.cpu_count() or 1) + 1 and meta["load_avg_1m"] >= 0
    v = obj["verdicts"][0]
    assert v["seeds"] == [0, 1] and v["reason"]
    for c in v["checks"]:        # the machine-readable names other tools read
        assert {"name", "op", "threshold", "per_seed", "mean", "ci_low", "ci_high", "null_mean", "passed"} <= set(c)
        assert len(c["per_seed"]) == 2
    assert {"name", "value", "op", "threshold", "passed"} <= set(v["preconditions"][0])
    assert "<svg" in html and "per seed" in html and "control" in html and "preconditions" in html and "shuffled_labels" in html
    assert lab.status()["state"] == "complete"
    assert (lab.dir / "studies").is_dir()


def test_report_marks_errors():
    doc, obj = build_report([{"study": "F-mlp-digits", "status": "error", "summary": "boom", "claim": "c",
                              "measured": {}, "figures": []}])
    assert "error" in doc and obj["counts"]["error"] == 1


def test_every_study_declares_claim_presets_and_valid_configs():
    for sid, s in all_studies().items():
        assert s.claim.strip() and s.instrument in {"foundation", "spectral", "detect", "memory"}
        s.Config()  # full preset = defaults validate
        from neumo.studies.runner import resolve_config

        quick = resolve_config(s, "quick")
        assert s().checks(quick), f"{sid} judges no check"
        assert s.nulls, f"{sid} declares no null control"
        assert s.replication.strip()


def test_presets_and_overrides_keep_the_studys_nested_defaults():
    from neumo.config import StrictModel
    from neumo.studies.runner import resolve_config
    from neumo.train import TrainConfig

    class Cfg(StrictModel):
        train: TrainConfig = TrainConfig(steps=500, lr=0.5, batch_size=7)

    class Fake:
        id = "fake"
        Config = Cfg
        presets = {"quick": {"train": {"steps": 3}}, "full": {}}

    cfg = resolve_config(Fake, "quick", ["train.batch_size=9"])
    assert (cfg.train.steps, cfg.train.lr, cfg.train.batch_size) == (3, 0.5, 9)  # lr is the study's, not 1e-3
    assert resolve_config(Fake, "full").train.steps == 500
