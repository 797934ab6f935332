import torch

from neumo.nn import build_model
from neumo.seeding import derive_seed, make_generator
from neumo.studies.runner import run_study


def test_derived_seeds_are_stable_and_disjoint():
    assert derive_seed(0, "train") == derive_seed(0, "train")
    assert derive_seed(0, "train") != derive_seed(0, "eval")
    assert derive_seed(0, "train") != derive_seed(1, "train")
    a = torch.rand(3, generator=make_generator(5, "x"))
    b = torch.rand(3, generator=make_generator(5, "x"))
    assert torch.equal(a, b)


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    m1 = build_model("transformer", seed=3, vocab_size=11, d_model=16, n_layers=1, n_heads=2)
    m2 = build_model("transformer", seed=3, vocab_size=11, d_model=16, n_layers=1, n_heads=2)
    m3 = build_model("transformer", seed=4, vocab_size=11, d_model=16, n_layers=1, n_heads=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (n, p), (_, q), (_, r) in zip(m1.named_parameters(), m2.named_parameters(), m3.named_parameters()):
        assert torch.equal(p, q), n
        if p.numel() > 4 and p.std() > 0:
            assert not torch.equal(p, r), n


def test_default_init_matches_pytorch_scale():
    m = build_model("mlp", seed=0, in_dim=400, out_dim=300, hidden=[])
    w = m.net[0].weight
    bound = 1 / 400 ** 0.5  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert w.abs().max() <= bound
    assert abs(w.var().item() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3


def test_same_seed_same_metrics(tmp_path):
    overrides = ["train.steps=60", "train.eval_every=30", "train.log_every=10", "hidden=[32]"]
    v1 = run_study("F-mlp-digits", overrides=overrides, root=tmp_path / "a", seeds=2)
    v2 = run_study("F-mlp-digits", overrides=overrides, root=tmp_path / "b", seeds=2)
    v3 = run_study("F-mlp-digits", overrides=overrides, root=tmp_path / "c", seed=1, seeds=2)
    from pathlib import Path

    from neumo.runs import Run

    def unit(v, name):
        return Run.open(Path(v.run_dir) / "units" / name).metrics()

    m1, m2, m3 = (unit(v, "seed1-treatment") for v in (v1, v2, v3))
    assert m1 == m2 and len(m1) == 6
    assert unit(v1, "seed0-treatment") != m1                  # seeds are replications, not copies
    assert unit(v1, "seed1-shuffled_labels") != m1            # the null arm trains on other labels
    assert v1.measured == v2.measured and v1.checks == v2.checks
    assert m1 == unit(v3, "seed1-treatment")                  # seed 1 is seed 1 whatever the first seed
    assert v1.checks[0].per_seed[1] == v3.checks[0].per_seed[0]
