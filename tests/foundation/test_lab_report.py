import json

from neumo.report.html import build_report
from neumo.studies import all_studies, check, judge
from neumo.studies.lab import run_lab
from neumo.studies.runner import run_study


def test_judge_is_explicit():
    v = judge("x", [check("a", 0.96, ">=", 0.95), check("b", 3.0, "<", 2.0)])
    assert v.status == "fails" and v.expected == {"a": ">= 0.95", "b": "< 2"}
    assert judge("x", [check("a", 1, ">", 0)]).status == "holds"


def test_foundation_study_quick_preset_holds():
    v = run_study("F-mlp-digits", preset="quick")
    assert v.status == "holds", v.summary
    assert v.measured["test_acc"] >= 0.95
    assert v.measured["stable_rank_update"] < 0.25 * v.measured["stable_rank_W0"]
    assert 20 < v.measured["stable_rank_W0"] < 40  # ~28 for a 256 x 64 uniform random matrix


def test_lab_writes_self_contained_report(tmp_path, monkeypatch):
    import neumo.studies.lab as lab_mod

    small = ["train.steps=30", "hidden=[16]"]
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
    assert lab.status()["state"] == "complete"
    assert (lab.dir / "studies").is_dir()


def test_report_marks_errors():
    doc, obj = build_report([{"study": "F-mlp-digits", "status": "error", "summary": "boom", "claim": "c",
                              "measured": {}, "expected": {}, "figures": []}])
    assert "error" in doc and obj["counts"]["error"] == 1


def test_every_study_declares_claim_presets_and_valid_configs():
    for sid, s in all_studies().items():
        assert s.claim.strip() and s.instrument in {"foundation", "spectral", "detect", "memory"}
        s.Config()  # full preset = defaults validate
        from neumo.studies.runner import resolve_config

        resolve_config(s, "quick")


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
