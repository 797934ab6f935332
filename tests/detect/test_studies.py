"""Each detect study's quick preset runs and reaches its verdict."""

import pytest

from neumo.studies.runner import run_study


def _run(sid, overrides=None):
    return run_study(sid, preset="quick", seed=0, overrides=overrides)


def test_softmax_bottleneck_quick_holds():
    v = _run("S-softmax-bottleneck")
    assert v.status == "holds", v.summary
    assert v.measured["rank_logprob_tiny"] <= v.measured["d_model"] + 1
    assert v.measured["rank_centred_ngram"] > v.measured["d_model"] + 1
