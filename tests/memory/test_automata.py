import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neumo.errors import NeumoError
from neumo.memory.automata import (DFA, counterexample, cyclic_dfa, equivalent, group_dfa, merge_unobserved_start,
                                   minimize, parity_dfa, random_dfa)


def _brute_outputs(d: DFA, word):
    s = d.start
    for a in word:
        s = d.delta[s, a]
    return d.output[s]


def test_parity_runs_as_prefix_xor():
    x = np.random.default_rng(0).integers(0, 2, size=(5, 12))
    assert (parity_dfa().run(x) == np.cumsum(x, 1) % 2).all()


def test_cyclic_and_group_sizes():
    assert cyclic_dfa(5).n_states == 5
    s5, a5 = group_dfa(5), group_dfa(5, alternating=True)
    assert (s5.n_states, s5.n_symbols, a5.n_states) == (120, 120, 60)
    assert minimize(s5).n_states == 120           # every group element is a distinct state


def test_group_composition_matches_permutation_product():
    from neumo.memory.automata import permutation_group

    perms = permutation_group(5, False)
    d = group_dfa(5)
    word = np.random.default_rng(1).integers(0, 120, size=(1, 7))
    cur = tuple(range(5))
    for a in word[0]:
        g = perms[a]
        cur = tuple(g[cur[i]] for i in range(5))
    assert perms[d.run(word)[0, -1]] == cur


def test_minimize_merges_duplicate_states():
    # parity with a duplicated "even" state: 3 states -> 2
    d = DFA(np.array([[0, 1], [1, 2], [2, 1]]), 0, np.array([0, 1, 0]))
    m = minimize(d)
    assert m.n_states == 2 and equivalent(m, parity_dfa())


def test_counterexample_is_shortest():
    a = DFA(np.array([[0, 1], [1, 0]]), 0, np.array([0, 1]))
    b = DFA(np.array([[0, 0]]), 0, np.array([0]))
    assert counterexample(a, b) == [1]
    assert counterexample(a, a) is None


def test_min_len_ignores_start_output_and_merge_start():
    d = DFA(np.array([[1, 2], [1, 2], [1, 2]]), 0, np.array([-1, 0, 1]))
    ref = DFA(np.array([[0, 1], [0, 1]]), 0, np.array([0, 1]))
    assert not equivalent(d, ref) and equivalent(d, ref, min_len=1)
    assert merge_unobserved_start(d).n_states == 2


def test_invalid_dfa_message():
    with pytest.raises(NeumoError, match="transitions must name states"):
        DFA(np.array([[0, 3]]), 0, np.array([0]))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 3), st.integers(0, 10_000))
def test_random_dfa_is_minimal_and_run_matches_definition(n, a, seed):
    try:
        d = random_dfa(n, a, seed)
    except NeumoError:
        return  # no minimal machine of that size over so few symbols
    assert minimize(d).n_states == n
    rng = np.random.default_rng(seed)
    words = rng.integers(0, a, size=(4, 6))
    outs = d.outputs(words)
    for w, o in zip(words, outs):
        assert o[-1] == _brute_outputs(d, w)
    assert equivalent(minimize(d), d)
