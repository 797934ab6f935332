"""S-recall-capacity under the study contract: minimal solving recurrent state per pair count, attention as
the learnability gate, an untrained null; plus the pieces the verdict rests on (scan rule, statistics,
plateau stopping)."""

import math
from pathlib import Path

import pytest

from neumo.config import validate
from neumo.errors import NeumoError
from neumo.memory.train import MemoryRunConfig, _stop_rule
from neumo.studies.judge import judge_units
from neumo.studies.memory_recall_capacity import (RecallCapacityConfig, growth_stats, minimal_state, state_of)
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study

SID = "S-recall-capacity"
EXPECTED_QUICK = "holds"   # measured (docs/studies/S-recall-capacity.md)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(SID, preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_verdict(quick):
    v = quick
    assert v.seeds == [0, 1, 2]
    assert v.status == EXPECTED_QUICK, v.reason
    assert all(g.passed for g in v.preconditions), v.reason
    by = {c.name: c for c in v.checks}
    assert by["state_growth_log2"].mean >= 1.0 and by["state_growth_log2"].controls[0].mean == 0.0
    assert by["pairs_state_spearman"].controls[0].mean == 0.0
    assert by["pooled_perm_p"].mean <= 0.05 and by["pooled_perm_p"].null_mean == 1.0
    assert v.measured["attention_min_acc"] >= 0.95
    pairs = resolve_config(get_study(SID), "quick").n_pairs
    assert v.measured[f"min_state_P{pairs[-1]}"] > v.measured[f"min_state_P{pairs[0]}"]
    assert v.measured["untrained:attention_min_acc"] < 0.5          # the null is at chance
    assert v.figures and all(Path(v.run_dir, f).is_file() for f in v.figures)


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_the_untrained_null_in_the_treatments_place_does_not_hold(quick):
    study = get_study(SID)
    units, seeds = load_units(quick.run_dir)
    assert seeds == [0, 1, 2] and set(units[0]) == {"treatment", "untrained"}
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment="untrained")
    assert broken.status != "holds" and "precondition failed: attention_min_acc" in broken.reason


def test_an_untrained_run_does_not_hold(tmp_path):
    v = run_study(SID, overrides=["rnn_train.steps=0", "transformer_train.steps=0"], seeds=2, root=tmp_path)
    assert v.status == "inconclusive" and "precondition failed" in v.reason


def test_a_grid_too_small_for_every_pair_count_does_not_hold():
    # the scan finds no solving width at any pair count: every need is censored at the same value
    need = [minimal_state([{"state_size": 20, "acc": 0.4}], 0.95, 72)[0] for _ in range(3)]
    g = growth_stats([2, 4, 16], need)
    assert need == [72.0] * 3 and g == {"state_growth_log2": 0.0, "pairs_state_spearman": 0.0}


# ------------------------------------------------------------------ the pieces, unit-tested


def test_minimal_state_is_the_bottom_of_the_unbroken_solving_run_from_the_top():
    rows = [{"state_size": 1056, "acc": 0.99}, {"state_size": 272, "acc": 0.97},
            {"state_size": 72, "acc": 0.80}, {"state_size": 20, "acc": 0.96}]   # a lucky small width
    assert minimal_state(rows, 0.95, 4160) == (272.0, False)
    assert minimal_state(rows[:1], 0.95, 4160) == (1056.0, False)
    assert minimal_state([{"state_size": 1056, "acc": 0.5}], 0.95, 4160) == (4160.0, True)
    assert minimal_state(list(reversed(rows[:2])), 0.95, 4160) == (272.0, False)   # order-free


def test_growth_statistics():
    g = growth_stats([2, 4, 16], [72.0, 272.0, 1056.0])
    assert g["state_growth_log2"] == pytest.approx(math.log2(1056 / 72)) and g["pairs_state_spearman"] == 1.0
    tie = growth_stats([2, 4, 16], [72.0, 72.0, 272.0])
    assert tie["pairs_state_spearman"] == pytest.approx(math.sqrt(3) / 2)
    down = growth_stats([2, 4, 16], [272.0, 72.0, 272.0])
    assert down["state_growth_log2"] == 0.0 and down["pairs_state_spearman"] == 0.0
    swap = growth_stats([2, 4, 16], [72.0, 1056.0, 272.0])
    assert swap["pairs_state_spearman"] == pytest.approx(0.5)     # a single swap sits on the threshold


def test_state_of_linear_attention_and_lstm():
    cfg = RecallCapacityConfig()
    assert state_of(cfg, 16, 4) == 16 * 17
    assert state_of(cfg.model_copy(update={"recurrent": "lstm"}), 16, 4) == 32


def test_config_validation():
    with pytest.raises(NeumoError, match="at least 3 pair counts"):
        validate(RecallCapacityConfig, {"n_pairs": [2, 4]}, "cfg")
    with pytest.raises(NeumoError, match="strictly increasing"):
        validate(RecallCapacityConfig, {"sizes": [16, 8, 32]}, "cfg")
    with pytest.raises(NeumoError, match="n_keys"):
        validate(RecallCapacityConfig, {"n_pairs": [2, 4, 64], "n_keys": 32}, "cfg")
    assert resolve_config(get_study(SID), "full") == RecallCapacityConfig()


def test_plateau_stopping():
    stop = _stop_rule(MemoryRunConfig(target_acc=0.99, patience=3, min_delta=0.01))
    assert [stop({"acc": a}) for a in (0.5, 0.6, 0.605, 0.609, 0.6095)] == [False, False, False, False, True]
    stop = _stop_rule(MemoryRunConfig(target_acc=0.99, patience=3))
    assert stop({"acc": 0.2}) is False and stop({"acc": 0.995}) is True
    only_target = _stop_rule(MemoryRunConfig(target_acc=0.9))
    assert not any(only_target({"acc": 0.5}) for _ in range(20)) and only_target({"acc": 0.95})
    assert _stop_rule(MemoryRunConfig()) is None


def test_the_shipped_capacity_sweep_still_validates():
    from neumo.catalog import validate_file

    kind, _ = validate_file(Path(__file__).parents[2] / "src/neumo/configs/memory/mqar_capacity.yaml")
    assert kind == "memory-sweep"


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(SID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
