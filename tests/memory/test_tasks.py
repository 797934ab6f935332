import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from neumo.config import ConfigError
from neumo.errors import NeumoError
from neumo.memory.automata import random_dfa
from neumo.memory.tasks import IGNORE, make_task, task_names, task_rng
from neumo.memory.tasks.arithmetic import _value


@pytest.mark.parametrize("name", task_names())
def test_determinism_shapes_and_ranges(name):
    t = make_task(name)
    a, b = t.sample(6, task_rng(3, "train", 0)), t.sample(6, task_rng(3, "train", 0))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    c = t.sample(6, task_rng(3, "test", 0))
    assert not torch.equal(a.inputs, c.inputs)
    assert a.inputs.shape == a.targets.shape and a.mask.any()
    assert 0 <= int(a.inputs.min()) and int(a.inputs.max()) < t.vocab_size
    tg = a.targets[a.mask]
    assert 0 <= int(tg.min()) and int(tg.max()) < t.n_classes
    for v in a.meta.values():
        assert v.shape == a.inputs.shape
    if a.feedback is not None:   # feedback inputs are the previous target's token
        cols = torch.nonzero(a.feedback).flatten()
        assert torch.equal(a.inputs[:, cols], a.class_token_offset + a.targets[:, cols - 1])


def test_unknown_knob_and_task():
    with pytest.raises(ConfigError, match="unknown key"):
        make_task("parity", lenght=3)
    with pytest.raises(NeumoError, match="unknown task 'parrot'"):
        make_task("parrot")


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 30), st.integers(2, 7), st.integers(0, 999))
def test_modular_labels_match_reference(T, n, seed):
    b = make_task("modular", modulus=n, length=T).sample(4, np.random.default_rng(seed))
    x = b.inputs.numpy()
    assert (b.targets.numpy() == np.cumsum(x, 1) % n).all()
    assert (b.meta["state"].numpy() == np.cumsum(x, 1) % n).all()


def test_parity_final_and_scratchpad():
    b = make_task("parity", length=9, target="final").sample(8, task_rng(0, "train"))
    assert (b.targets[:, :-1] == IGNORE).all()
    assert (b.targets[:, -1] == b.inputs.sum(1) % 2).all()
    s = make_task("parity", length=5, scratchpad=True).sample(8, task_rng(0, "train"))
    bits = s.inputs[:, 0::2]
    assert (s.targets[:, 0::2] == torch.cumsum(bits, 1) % 2).all() and (s.targets[:, 1::2] == IGNORE).all()


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 5), st.integers(1, 3), st.integers(0, 99), st.integers(1, 20))
def test_dfa_task_matches_machine_run(n, a, dseed, T):
    try:
        d = random_dfa(n, a, dseed)
    except NeumoError:
        return
    t = make_task("dfa", transitions=d.delta.tolist(), start=0, accept=[int(q) for q in np.flatnonzero(d.output)],
                  length=T)
    b = t.sample(5, np.random.default_rng(dseed))
    x = b.inputs.numpy()
    for row, y in zip(x, b.targets.numpy()):
        s, outs = 0, []
        for sym in row:
            s = d.delta[s, sym]
            outs.append(d.output[s])
        assert list(y) == outs


def test_dfa_task_rejects_bad_table():
    with pytest.raises(NeumoError, match="transitions must name states"):
        make_task("dfa", transitions=[[0, 5], [1, 0]])


@settings(max_examples=15, deadline=None)
@given(st.integers(4, 40), st.floats(0, 0.95), st.integers(0, 999))
def test_flipflop_reads_last_write(T, p_ignore, seed):
    b = make_task("flipflop", length=T, p_ignore=p_ignore).sample(4, np.random.default_rng(seed))
    for ids, y, wp in zip(b.inputs.numpy(), b.targets.numpy(), b.meta["write_pos"].numpy()):
        last = None
        for t, tok in enumerate(ids):
            if tok in (0, 1):
                last = (tok, t)
            if tok == 4:
                assert y[t] == last[0] and wp[t] == last[1]
            else:
                assert y[t] == IGNORE and wp[t] == -1


@pytest.mark.parametrize("name", ["copy", "reverse", "selective_copy"])
def test_copy_family_write_pos(name):
    b = make_task(name, n_items=5, lag=3).sample(6, task_rng(0, "train")) if name != "selective_copy" else \
        make_task(name, n_items=5, seq_len=12).sample(6, task_rng(0, "train"))
    m = b.mask
    rows = torch.arange(6)[:, None].expand_as(b.inputs)[m]
    assert torch.equal(b.inputs[rows, b.meta["write_pos"][m]], b.targets[m])
    if name == "reverse":
        w = b.meta["write_pos"][0][b.mask[0]]
        assert w.tolist() == sorted(w.tolist(), reverse=True)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.booleans(), st.sampled_from(["uniform", "power", "end"]), st.integers(0, 999))
def test_mqar_answers_are_last_binding(P, overwrite, gap, seed):
    t = make_task("mqar", n_pairs=P, n_keys=8 if not overwrite else 3, n_values=5, seq_len=3 * P + 4,
                  overwrite=overwrite, gap=gap) if (overwrite or P <= 8) else None
    b = t.sample(3, np.random.default_rng(seed))
    K = t.n_keys
    for ids, y, wp in zip(b.inputs.numpy(), b.targets.numpy(), b.meta["write_pos"].numpy()):
        bind = {}
        for i in range(P):
            bind[ids[2 * i]] = (ids[2 * i + 1] - K, 2 * i + 1)
        q = np.flatnonzero(y != IGNORE)
        assert len(q) == t.queries
        for p in q:
            assert (y[p], wp[p]) == bind[ids[p]]


def test_mqar_rejects_too_short():
    with pytest.raises(NeumoError, match="too short"):
        make_task("mqar", n_pairs=8, seq_len=10)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 12), st.booleans(), st.integers(0, 999))
def test_addition_matches_python_ints(k, scratch, seed):
    t = make_task("addition", n_digits=k, scratchpad=scratch)
    b = t.sample(4, np.random.default_rng(seed))
    for ids, y in zip(b.inputs.numpy(), b.targets.numpy()):
        a, bb = _value(ids[None, :k])[0], _value(ids[None, k + 1: 2 * k + 1])[0]
        ans = y[y != IGNORE]
        digits = ans[0::2] if scratch else ans
        assert int("".join(str(d) for d in digits[::-1])) == a + bb


def test_multiplication_and_comparison_and_max():
    b = make_task("multiplication", n_digits=3, b_digits=2).sample(5, np.random.default_rng(0))
    for ids, y in zip(b.inputs.numpy(), b.targets.numpy()):
        a, c = _value(ids[None, :3])[0], _value(ids[None, 4:6])[0]
        assert int("".join(str(d) for d in y[y != IGNORE][::-1])) == a * c
    cb = make_task("comparison", frac_digits=3).sample(50, np.random.default_rng(0))
    for ids, y in zip(cb.inputs.numpy(), cb.targets.numpy()):
        s = "".join({13: ".", 14: " ", 15: ""}.get(int(t), str(t)) for t in ids if t != 16)
        x1, x2 = (float(v) for v in s.split())
        assert y[-1] == (0 if x1 > x2 else 1 if x2 > x1 else 2)
    mb = make_task("max", length=7, target="every").sample(5, np.random.default_rng(0))
    assert torch.equal(mb.targets, torch.cummax(mb.inputs, 1).values)


def test_nback_and_dms():
    b = make_task("nback", n=3, length=20).sample(5, np.random.default_rng(0))
    x = b.inputs
    assert torch.equal(b.targets[:, 3:], (x[:, 3:] == x[:, :-3]).long()) and (b.targets[:, :3] == IGNORE).all()
    d = make_task("dms", delay=6, p_distractor=0.5).sample(200, np.random.default_rng(0))
    assert torch.equal(d.targets[:, -1], (d.inputs[:, -1] == d.inputs[:, 0]).long())
    assert 0.35 < d.targets[:, -1].float().mean() < 0.65
    assert (d.inputs[:, 1:7] < 8).any()      # some distractors


def test_mqar_gap_distributions():
    """Power-law gaps put queries nearer the pairs than uniform ones; 'end' puts them last."""
    kw = dict(n_pairs=2, n_queries=2, seq_len=64, n_keys=8, n_values=8)
    mean_pos = {}
    for gap in ("uniform", "power"):
        b = make_task("mqar", gap=gap, **kw).sample(400, np.random.default_rng(0))
        pos = torch.nonzero(b.meta["is_query"])[:, 1].float()
        mean_pos[gap] = float(pos.mean())
    assert abs(mean_pos["uniform"] - (4 + 63) / 2) < 2.0          # uniform over positions 4..63
    assert mean_pos["power"] < mean_pos["uniform"] - 10
    e = make_task("mqar", gap="end", **kw).sample(3, np.random.default_rng(0))
    assert torch.nonzero(e.meta["is_query"][0]).flatten().tolist() == [62, 63]


@pytest.mark.parametrize("name,n", [("s5", 120), ("a5", 60)])
def test_group_word_problem_labels_are_permutation_products(name, n):
    from neumo.memory.automata import permutation_group

    perms = permutation_group(5, alternating=name == "a5")
    assert len(perms) == n
    b = make_task(name, length=6).sample(4, np.random.default_rng(0))
    for ids, y in zip(b.inputs.numpy(), b.targets.numpy()):
        cur = tuple(range(5))
        for t, a in enumerate(ids):
            g = perms[a]
            cur = tuple(g[cur[i]] for i in range(5))
            assert perms[y[t]] == cur
