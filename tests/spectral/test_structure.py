"""neumo.spectral.structure: the neuron-interaction graph and the sandbox multifractal spectrum on graphs
with known behaviour (lattices are monofractal with their dimension; mixed-dimension graphs are wide)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.sparse.csgraph import shortest_path

from neumo.spectral.structure import lattice_graph, neuron_graph, sandbox_spectrum, shuffled_weights


def test_a_periodic_2d_lattice_is_monofractal_with_dimension_two():
    s = sandbox_spectrum(lattice_graph(64, 2, periodic=True), radii=np.arange(4, 17), n_centers=200)
    assert s.width < 1e-8                           # every centre sees the same ball: exactly monofractal
    # the L1 ball holds 2r^2 + 2r + 1 nodes, so the finite-radius slope is a little below 2
    assert 1.8 < s.dimension(0) < 2.05 and s.dimension(2) == pytest.approx(s.dimension(0))
    assert s.alpha0 == pytest.approx(s.dimension(0)) and s.min_r2 > 0.99


def test_lattice_dimension_follows_the_lattice_dimension():
    d1 = sandbox_spectrum(lattice_graph(400, 1, periodic=True), radii=np.arange(10, 60)).dimension(0)
    d3 = sandbox_spectrum(lattice_graph(24, 3, periodic=True), radii=np.arange(3, 7), n_centers=50).dimension(0)
    assert 0.9 < d1 < 1.02 and 2.5 < d3 < 3.05


def test_an_open_lattice_is_narrow_and_a_lattice_with_chains_is_wide():
    open_lattice = sandbox_spectrum(lattice_graph(48, 2), n_centers=300)
    L, hairs, length = 32, 32, 40
    n = L * L
    G = sparse.lil_matrix((n + hairs * length, n + hairs * length))
    G[:n, :n] = lattice_graph(L, 2)
    rng, k = np.random.default_rng(0), n
    for _ in range(hairs):                            # 1-D chains hanging off a 2-D lattice
        prev = int(rng.integers(n))
        for _ in range(length):
            G[prev, k] = G[k, prev] = 1
            prev, k = k, k + 1
    mixed = sandbox_spectrum(G.tocsr(), n_centers=400)
    assert open_lattice.width < 0.3 and 1.6 < open_lattice.dimension(0) < 2.05
    assert mixed.width > 2 * open_lattice.width + 0.3     # local dimensions 1 and 2 side by side
    assert mixed.alpha[0] < 1.2 and mixed.alpha[-1] > 1.5   # q < 0 sees the chains (~1), q > 0 the lattice (~2)
    assert np.interp(0.0, mixed.q, mixed.f) == pytest.approx(mixed.dimension(0))   # f(alpha_0) = D_0


def test_neuron_graph_edges_and_lengths():
    w1 = torch.tensor([[2.0, 0.0, -0.5], [0.0, 1.0, 0.0]])   # 3 inputs -> 2 hidden
    w2 = torch.tensor([[4.0, -0.25]])                        # 2 hidden -> 1 output
    g = neuron_graph([w1, w2]).toarray()
    assert g.shape == (6, 6) and np.allclose(g, g.T)
    assert g[0, 3] == pytest.approx(0.5) and g[2, 3] == pytest.approx(2.0) and g[1, 4] == pytest.approx(1.0)
    assert g[3, 5] == pytest.approx(0.25) and g[4, 5] == pytest.approx(4.0) and g[0, 4] == 0
    d = shortest_path(g, directed=False)
    assert d[0, 5] == pytest.approx(0.5 + 0.25)              # the path through the strong weights
    assert neuron_graph([w1, w2], threshold=0.6).toarray()[2, 3] == 0
    with pytest.raises(Exception, match="forward order"):
        neuron_graph([w2, w1])


def test_shuffled_weights_keep_values_and_break_positions():
    w = torch.arange(12.0).reshape(3, 4)
    s = shuffled_weights(w, seed=0)
    assert s.shape == w.shape and torch.equal(s.flatten().sort().values, w.flatten())
    assert not torch.equal(s, w) and torch.equal(s, shuffled_weights(w, seed=0))


def test_sandbox_validates_its_inputs():
    g = lattice_graph(8, 2)
    with pytest.raises(Exception, match="'q' parameter"):
        sandbox_spectrum(g, q=[1.0, 0.0, 2.0])
    with pytest.raises(Exception, match="'radii' parameter"):
        sandbox_spectrum(g, radii=[2.0])
    with pytest.raises(Exception, match="q != 1"):
        sandbox_spectrum(g).dimension(1.0)
