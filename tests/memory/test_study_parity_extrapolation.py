"""S-parity-extrapolation: the quick verdict as measured (inconclusive: the Transformers do not learn parity
at the training length within the budget, so their extrapolation does not count), nulls that cannot pass,
and the helper identities."""

import pytest
import torch

from neumo.memory.tasks import make_task, task_rng
from neumo.memory.train import MemoryRunConfig
from neumo.studies.judge import judge_units
from neumo.studies.memory_common import constant_accuracy, train_variant, variant_values
from neumo.studies.memory_parity_extrapolation import ParityExtrapolation
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.train import TrainConfig

SID = "S-parity-extrapolation"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(SID, preset="quick", root=tmp_path_factory.mktemp("parity"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_verdict_is_inconclusive_on_the_transformer_gate(quick):
    assert quick.seeds == [0, 1, 2]
    assert quick.status == "inconclusive"
    gates = {g.name: g for g in quick.preconditions}
    assert gates["lstm_acc_at_L"].passed and gates["lstm_acc_at_L"].value >= 0.99
    assert not gates["transformer_learned_acc_at_L"].passed
    assert not gates["transformer_sinusoidal_acc_at_L"].passed
    assert gates["transformer_learned_acc_at_L"].value < 0.8     # measured 0.49 (worst seed)
    assert "precondition failed" in quick.reason
    checks = {c.name: c for c in quick.checks}
    assert checks["lstm_acc_at_4L"].passed and checks["lstm_acc_at_4L"].mean >= 0.99
    for c in quick.checks:                       # neither null passes any check
        assert all(ctl.passed is not True for ctl in c.controls), c.name
    assert abs(quick.measured["untrained:lstm_acc_at_far"] - 0.5) < 0.1
    assert quick.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_null_in_the_treatment_place_does_not_hold(quick):
    units, seeds = load_units(quick.run_dir)
    cfg = resolve_config(ParityExtrapolation, "quick")
    for arm in ("untrained", "constant"):
        v = judge_units(ParityExtrapolation(), cfg, units, seeds, treatment=arm)
        assert v.status != "holds", arm
    v = judge_units(ParityExtrapolation(), cfg, units, seeds, treatment="untrained")
    assert "precondition failed" in v.reason     # the untrained LSTM fails its gate too


def test_an_untrained_run_does_not_hold(tmp_path):
    v = run_study(SID, preset="quick", seeds=2, root=tmp_path,
                  overrides=["rnn_train.steps=0", "transformer_train.steps=0", "eval_size=64"])
    assert v.status == "inconclusive"
    assert not next(g for g in v.preconditions if g.name == "lstm_acc_at_L").passed


def test_variant_values_gap_is_the_difference():
    v = variant_values("m", {8: 0.97, 32: 0.5}, 8, 32)
    assert v == {"m_acc_at_L": 0.97, "m_acc_at_far": 0.5, "m_gap": pytest.approx(0.47)}


def test_constant_accuracy_is_the_majority_share_of_the_test_strings():
    rc = MemoryRunConfig(task="parity", train_lengths=list(range(2, 9)), eval_size=200, seed=3,
                         train=TrainConfig(steps=0, batch_size=32))
    acc = constant_accuracy(rc, [8, 32])
    task = make_task("parity")
    for L in (8, 32):
        b = task.sample(200, task_rng(3, "test", L), L)
        share_ones = float((b.targets[:, -1] == 1).double().mean())
        assert acc[L] in (pytest.approx(share_ones), pytest.approx(1 - share_ones))
        assert 0.35 < acc[L] < 0.65                       # parity labels are balanced


def test_untrained_variant_takes_no_step():
    rc = MemoryRunConfig(task="parity", model="lstm", model_knobs={"hidden_size": 8}, train_lengths=[4],
                         eval_lengths=[4], eval_size=16, train=TrainConfig(steps=50))
    res = train_variant(rc, untrained=True)
    assert res.steps == 0
    before = torch.nn.utils.parameters_to_vector(train_variant(rc, untrained=True).model.parameters())
    assert torch.equal(before, torch.nn.utils.parameters_to_vector(res.model.parameters()))


def test_quick_preset_resolves_to_whole_training_sections():
    quick = resolve_config(ParityExtrapolation, "quick")
    assert quick.rnn_train == TrainConfig(steps=400, batch_size=64, lr=1e-2, eval_every=50)
    assert quick.transformer_train == TrainConfig(steps=700, batch_size=128, lr=1e-3, eval_every=100)
    full = resolve_config(ParityExtrapolation, "full")
    assert full == ParityExtrapolation.Config()
    for key in ParityExtrapolation.presets["quick"]:
        assert getattr(quick, key) != getattr(full, key), key


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(SID, preset="full", root=tmp_path)
    assert full.seeds == [0, 1, 2, 3, 4]
    assert full.status == quick.status
