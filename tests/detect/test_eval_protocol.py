"""`detect eval`'s protocol: the shared prompt of a pair is cut (known prefix), the scored tokens are bounded
and reported, results by length are the detectors on the first N continuation tokens, the default
detector is marked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neumo.detect.datasets import by_length, evaluate_file
from neumo.detect.evaluate import auroc, default_detector, tpr_at_fpr
from neumo.detect.registry import DEFAULT_DETECTOR, compute_scores
from neumo.detect.score import MAX_TOKENS, check_max_tokens, score_texts
from neumo.errors import NeumoError

PROMPT = "abca"     # TableLM: one token per character a-d


def _pairs(tmp_path, lengths=(40, 40, 40, 20, 20), seed=0):
    rng = np.random.default_rng(seed)

    def cont(first, n):
        return first + "".join(rng.choice(list("abcd"), n - 1))

    human = [PROMPT + cont("d", n) for n in lengths]     # continuations start differently: the prompt is 4 tokens
    machine = [PROMPT + cont("c", n) for n in lengths]
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"original": human, "sampled": machine}))
    return f, human, machine


def test_eval_cuts_the_known_prompt_and_reports_tokens(tmp_path, table_lm):
    f, human, machine = _pairs(tmp_path)
    fe = evaluate_file(table_lm, f, ["logrank", "lastde", "specdetect"], n_boot=0)
    full = score_texts(table_lm, human + machine)
    for det in ("logrank", "lastde", "specdetect"):
        want = [compute_scores(s.tail(len(PROMPT)), [det])[det] for s in full]
        np.testing.assert_allclose(fe.scores[det], want)
    r = fe.rows[0]
    assert r["prompt_cut"] and r["prompt_tokens_mean"] == len(PROMPT)
    assert (r["scored_tokens_min"], r["scored_tokens_max"], r["max_tokens"]) == (20, 40, None)
    assert r["scored_tokens_mean"] == pytest.approx(np.mean([40, 40, 40, 20, 20]))
    cut = evaluate_file(table_lm, f, ["logrank"], n_boot=0, max_tokens=8).rows[0]
    assert (cut["scored_tokens_max"], cut["max_tokens"]) == (8, 8)


def test_by_length_scores_the_first_tokens_of_long_enough_pairs(tmp_path, table_lm):
    f, human, machine = _pairs(tmp_path)
    fe = evaluate_file(table_lm, f, ["logrank", "lastde++"], n_boot=0)
    full = score_texts(table_lm, human + machine)
    long = [0, 1, 2]                                     # pairs with 40 continuation tokens in both texts
    for det in ("logrank", "lastde++"):
        rows = next(r for r in fe.rows if r["detector"] == det)["by_length"]
        assert [b["tokens"] for b in rows] == [32]        # no pair has 64
        sc = [compute_scores(full[i].span(len(PROMPT), len(PROMPT) + 32), [det])[det] for i in long] + \
             [compute_scores(full[5 + i].span(len(PROMPT), len(PROMPT) + 32), [det])[det] for i in long]
        y = [0, 0, 0, 1, 1, 1]
        assert rows[0]["auroc"] == pytest.approx(auroc(sc, y))
        assert rows[0]["tpr_at_1fpr"] == pytest.approx(tpr_at_fpr(sc, y, 0.01))
        assert (rows[0]["n_human"], rows[0]["n_machine"]) == (3, 3)


def test_by_length_unpaired_keeps_each_long_text(table_lm):
    stats = score_texts(table_lm, ["ab" * 20, "cd" * 10, "abcd" * 10, "dc" * 20])
    rows = by_length(stats, [0, 0, 1, 1], ["likelihood"], paired=False, buckets=(16, 32))["likelihood"]
    assert [(b["tokens"], b["n_human"], b["n_machine"]) for b in rows] == [(16, 2, 2), (32, 1, 2)]


def test_scored_tokens_are_bounded(tmp_path, table_lm):
    f, _, _ = _pairs(tmp_path)
    for bad in (0, -3, MAX_TOKENS + 1, 1.5, True, "8"):
        with pytest.raises(NeumoError, match="max_tokens"):
            check_max_tokens(bad)
    assert check_max_tokens(None) is None and check_max_tokens(MAX_TOKENS) == MAX_TOKENS
    with pytest.raises(NeumoError, match="max_tokens"):
        evaluate_file(table_lm, f, ["logrank"], max_tokens=0)
    for kw, name in (({"limit": 0}, "limit"), ({"n_boot": -1}, "n_boot")):
        with pytest.raises(NeumoError, match=name):
            evaluate_file(table_lm, f, ["logrank"], **kw)


def test_the_default_detector_is_marked(tmp_path, table_lm):
    f, _, _ = _pairs(tmp_path)
    rows = evaluate_file(table_lm, f, None, n_boot=0).rows
    assert [r["detector"] for r in rows if r["default"]] == [DEFAULT_DETECTOR]    # no shipped calibration
    assert all(isinstance(r["default"], bool) for r in rows)
    assert default_detector("smollm2") == "specdetect"    # the shipped calibration's detector (serve's verdict)
    import inspect

    from typer.models import OptionInfo

    import neumo.cli.detect as cli_detect

    opt = inspect.signature(cli_detect.calibrate).parameters["detector"].default
    assert isinstance(opt, OptionInfo) and opt.default == DEFAULT_DETECTOR


def test_cli_eval_json_marks_default_and_gives_buckets(tmp_path, cli):
    f = tmp_path / "p.json"
    body = " The council said the road would open next year after a long delay and much debate in town."
    f.write_text(json.dumps({"original": ["Residents were pleased." + body * 2, "Rain fell." + body * 2],
                             "sampled": ["the the the the" + body * 2, "and and and" + body * 2]}))
    code, out, err = cli(["detect", "eval", str(f), "-m", "ngram", "--n-boot", "0", "--json", "--max-tokens", "64"])
    rows = json.loads(out)
    assert code == 0, err
    assert sum(r["default"] for r in rows) == 1 and next(r for r in rows if r["default"])["detector"] == DEFAULT_DETECTOR
    assert all(r["max_tokens"] == 64 and r["scored_tokens_max"] <= 64 for r in rows)
    assert all([b["tokens"] for b in r["by_length"]] == [32, 64] for r in rows)
    code, out, _ = cli(["detect", "eval", str(f), "-m", "ngram", "--n-boot", "0", "--max-tokens", "64"])
    assert code == 0 and "default detector" in out and "first N scored tokens" in out


# ---- SmolLM2 (slow tier): the numbers in docs/detect.md ------------------------------------------------------

# AUROC, TPR@1%FPR, then AUROC at 32 / 128 tokens, on the first 60 shipped xsum pairs, 128 tokens after the prompt
DOC_XSUM = {"likelihood": (0.831, 0.08, 0.751, 0.828), "logrank": (0.846, 0.17, 0.773, 0.848),
            "fast_detectgpt": (0.896, 0.55, 0.800, 0.908), "lastde": (0.807, 0.35, 0.664, 0.806),
            "lastde++": (0.952, 0.67, 0.769, 0.959), "specdetect": (0.920, 0.38, 0.778, 0.924)}


@pytest.mark.slow
def test_smollm2_xsum_numbers_in_the_docs():
    from neumo.detect.lm import load_lm
    from neumo.detect.pairs import find_pair_file

    lm = load_lm("smollm2")
    fe = evaluate_file(lm, find_pair_file(None, "xsum", "gpt-neo-2.7B"), list(DOC_XSUM), limit=60,
                       max_tokens=128, n_boot=0)
    for r in fe.rows:
        a, t, a32, a128 = DOC_XSUM[r["detector"]]
        b = {x["tokens"]: x["auroc"] for x in r["by_length"]}
        assert (r["auroc"], r["tpr_at_1fpr"], b[32], b[128]) == pytest.approx((a, t, a32, a128), abs=6e-3)
        assert r["default"] == (r["detector"] == "logrank") and r["prompt_tokens_mean"] == pytest.approx(32.8, abs=0.05)
