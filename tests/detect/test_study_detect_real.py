"""S-detect-real: the shared-prompt cut, the shipped pairs, the study on the n-gram model (fast) and on
SmolLM2 (slow: the quick preset's verdict, and the full preset's, which must agree)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from neumo.detect.pairs import (SHIPPED_DIR, draw_subset, encode_pairs, find_pair_file, load_pairs, score_pairs,
                                shared_prefix_len, span)
from neumo.detect.registry import detector_names
from neumo.errors import NeumoError
from neumo.studies.detect_real import DetectReal, _fast_auroc, pair_bootstrap_auroc
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study

DATASETS = ("xsum", "writing", "squad")
# n-gram tokens are characters: 300 characters after the prompt, 16 pairs per file per seed (48 pooled)
NGRAM = ["model=ngram", "n_pairs=16", "n_tokens=300", "n_boot=200"]


# ---- the prompt cut (one definition for the study and `neumo detect eval`) ----------------------------------

def test_shared_prefix_len():
    assert shared_prefix_len([1, 2, 3, 4], [1, 2, 5]) == 2
    assert shared_prefix_len([1, 2], [1, 2, 3]) == 2
    assert shared_prefix_len([], [1]) == 0
    assert shared_prefix_len([7, 1], [1, 7]) == 0


def test_score_pairs_scores_only_the_continuation(table_lm):
    from neumo.detect.score import score_texts

    pairs = encode_pairs(table_lm, ["abcab", "dd"], ["abdda", "cab"])
    assert [p.prompt for p in pairs] == [2, 0] and [p.continuation for p in pairs] == [3, 2]
    scored = score_pairs(table_lm, pairs)
    full = score_texts(table_lm, ["abcab", "abdda"])
    assert scored[0].human.n == 3 and scored[0].machine.n == 3
    np.testing.assert_allclose(scored[0].human.logprob, full[0].logprob[2:])   # prompt tokens dropped ...
    np.testing.assert_allclose(scored[0].human_full.logprob, full[0].logprob)  # ... but kept as context
    np.testing.assert_allclose(scored[0].machine.logprob, full[1].logprob[2:])
    cut = score_pairs(table_lm, pairs, max_tokens=1)
    assert cut[0].human.n == 1 and cut[0].human.logprob[0] == pytest.approx(full[0].logprob[2])
    assert span(full[0], 1, 3).n == 2 and span(full[0], 1, 3).ids.tolist() == full[0].ids[1:3].tolist()
    with pytest.raises(NeumoError, match="prefix"):
        score_pairs(table_lm, encode_pairs(table_lm, ["ab"], ["abc"]))


def test_eval_file_scores_after_the_prompt(tmp_path, ngram_lm):
    """`detect eval`'s evaluate_file cuts the prompt with the same code: a pair file's scores are those of
    the continuations, and a long shared prompt no longer dilutes them."""
    from neumo.detect.datasets import evaluate_file
    from neumo.detect.registry import compute_scores

    prompt = "The council said on Monday that the new road would open next year, after a long delay. "
    human = [prompt + t for t in ("Residents were pleased.", "Critics said costs had doubled.")]
    machine = [prompt + t for t in ("the the the the the", "and the and the and")]
    (tmp_path / "p.json").write_text(json.dumps({"original": human, "sampled": machine}))
    fe = evaluate_file(ngram_lm, tmp_path / "p.json", ["logrank"], n_boot=0)
    scored = score_pairs(ngram_lm, encode_pairs(ngram_lm, human, machine))
    want = [compute_scores(s.human, ["logrank"])["logrank"] for s in scored] + \
           [compute_scores(s.machine, ["logrank"])["logrank"] for s in scored]
    np.testing.assert_allclose(fe.scores["logrank"], want)
    assert scored[0].prompt >= len(prompt)                          # characters: the whole prompt is shared
    (tmp_path / "p.json.gz").write_bytes(gzip.compress((tmp_path / "p.json").read_bytes()))
    np.testing.assert_allclose(evaluate_file(ngram_lm, tmp_path / "p.json.gz", ["logrank"], n_boot=0)
                               .scores["logrank"], want)


# ---- the shipped pairs ---------------------------------------------------------------------------------------

def test_shipped_subset_is_there_with_licence_and_provenance():
    assert (SHIPPED_DIR / "LICENSE").read_text().startswith("MIT License")
    prov = (SHIPPED_DIR / "PROVENANCE.md").read_text()
    assert "971b052" in prov and "draw_subset" in prov
    for d in DATASETS:
        p = find_pair_file(None, d, "gpt-neo-2.7B")
        h, m = load_pairs(p)
        assert p.parent == SHIPPED_DIR and len(h) == len(m) == 200
        idx = json.loads(gzip.decompress(p.read_bytes()))["index"]
        assert idx == sorted(set(idx))
    assert sum(p.stat().st_size for p in SHIPPED_DIR.iterdir()) < 1_000_000


def test_shipped_subset_is_drawn_from_the_shared_files(shared_data, tmp_path):
    src = shared_data / "detect" / "fast-detect-gpt"
    rows = draw_subset(src, tmp_path, list(DATASETS), "gpt-neo-2.7B", 200, seed=0)
    assert [r["of"] for r in rows] == [500, 500, 300]
    for d in DATASETS:
        name = f"{d}_gpt-neo-2.7B.raw_data.json.gz"
        assert (tmp_path / name).read_bytes() == (SHIPPED_DIR / name).read_bytes()   # the script reproduces it
    h, _ = load_pairs(src / "xsum_gpt-neo-2.7B.raw_data.json")
    shipped = json.loads(gzip.decompress((SHIPPED_DIR / "xsum_gpt-neo-2.7B.raw_data.json.gz").read_bytes()))
    assert [h[i] for i in shipped["index"]] == shipped["original"]
    assert find_pair_file(shared_data, "xsum", "gpt-neo-2.7B") == src / "xsum_gpt-neo-2.7B.raw_data.json"


def test_missing_data_dir_says_where_it_looked(tmp_path):
    with pytest.raises(NeumoError, match="no pair file for 'xsum'.*shipped with neumo"):
        run_study("S-detect-real", preset="quick", overrides=[f"data_dir={tmp_path}", *NGRAM], root=tmp_path)


# ---- statistics ----------------------------------------------------------------------------------------------

def test_pair_bootstrap_auroc_matches_the_rank_auroc():
    from neumo.detect.evaluate import auroc

    rng = np.random.default_rng(0)
    h, m = rng.integers(0, 5, 30).astype(float), rng.integers(1, 6, 30).astype(float)   # ties included
    assert _fast_auroc(h, m) == pytest.approx(auroc(np.r_[h, m], np.r_[np.zeros(30), np.ones(30)]))
    a, lo, hi = pair_bootstrap_auroc(h, m, 500)
    assert lo < a < hi and hi - lo < 0.4
    a, lo, hi = pair_bootstrap_auroc(h, h + 10, 200)
    assert a == lo == hi == 1.0


# ---- the study on the n-gram model (fast tier) --------------------------------------------------------------

@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory):
    return run_study("S-detect-real", preset="quick", overrides=NGRAM, root=tmp_path_factory.mktemp("runs"))


def test_ngram_study_fails_with_controls_at_chance(ngram_run):
    v = ngram_run
    assert v.status == "fails", v.reason                   # a character 5-gram of news text is near chance
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions)
    assert v.measured["pairs_pooled_min"] == 48
    key = {c.name: c for c in v.checks}
    assert set(key) == {f"auroc_{d}_{s}" for d in ("logrank", "fast_detectgpt") for s in ("xsum", "writing")}
    c = key["auroc_logrank_xsum"]
    assert c.mean == pytest.approx(0.477, abs=0.005) and c.passed is False     # measured: deterministic
    assert len(set(c.per_seed)) == 3                                            # seeds are replications
    for c in v.checks:
        assert {r.arm for r in c.controls} == {"shuffled_labels", "human_halves"}
        assert all(r.passed is not True and 0.3 < r.mean < 0.7 for r in c.controls)
    rows = v.tables["detectors"]
    assert len(rows) == 3 * 2 * len(detector_names())
    assert all("tpr_at_1fpr" in r and "auroc_with_prompt" in r and "tpr_with_prompt" in r for r in rows)


def test_ngram_seeds_score_disjoint_eligible_pairs(ngram_run):
    pairs = {}
    for r in ngram_run.tables["pair_scores"]:
        pairs.setdefault((r["seed"], r["dataset"]), set()).add(r["pair"])
    for d in ("xsum", "writing"):
        blocks = [pairs[s, d] for s in (0, 1, 2)]
        assert all(len(b) == 16 for b in blocks) and len(set.union(*blocks)) == 48
    units, seeds = load_units(ngram_run.run_dir)
    assert all(units[0]["treatment"].values["scored_tokens_min"] == 300 for _ in seeds)


def test_ngram_every_auroc_has_its_tpr_at_1pct_fpr(ngram_run):
    from neumo.studies.detect_real import _metrics

    units, _ = load_units(ngram_run.run_dir)
    m = units[0]["treatment"]
    for vals in (m.values, *m.nulls.values()):
        aurocs = [k for k in vals if k.startswith("auroc_")]
        assert aurocs and all("tpr1_" + k[len("auroc_"):] in vals for k in aurocs)
    assert m.values["n_tokens"] == 300 and m.values["scored_tokens_max"] == 300
    h = [r["h_logrank"] for r in m.tables["pair_scores"] if r["dataset"] == "xsum"]
    mm = [r["m_logrank"] for r in m.tables["pair_scores"] if r["dataset"] == "xsum"]
    assert m.values["tpr1_logrank_xsum"] == pytest.approx(_metrics(h, mm)["tpr_at_1fpr"])


@pytest.mark.parametrize("null", ["shuffled_labels", "human_halves"])
def test_a_null_as_treatment_does_not_hold(ngram_run, null):
    units, seeds = load_units(ngram_run.run_dir)
    study = DetectReal()
    cfg = resolve_config(DetectReal, "quick", NGRAM)
    v = judge_units(study, cfg, units, seeds, treatment=null)
    assert v.status != "holds" and all(c.passed is not True for c in v.checks)


def test_too_few_tokens_is_inconclusive(tmp_path):
    v = run_study("S-detect-real", preset="quick", seeds=2, root=tmp_path,
                  overrides=["model=ngram", "n_pairs=20", "n_tokens=32", "n_boot=100"])
    assert v.status == "inconclusive" and "scored_tokens_min = 32" in v.reason


def test_cli_eval_reproduces_the_study_table(ngram_run, tmp_path, cli):
    """`neumo detect eval` on seed 0's xsum pairs gives the study's seed-0 AUROCs (the same prompt cut)."""
    h, m = load_pairs(find_pair_file(None, "xsum", "gpt-neo-2.7B"))
    chosen = sorted(r["pair"] for r in ngram_run.tables["pair_scores"] if r["seed"] == 0 and r["dataset"] == "xsum")
    f = tmp_path / "seed0.json"
    f.write_text(json.dumps({"original": [h[i] for i in chosen], "sampled": [m[i] for i in chosen]}))
    code, out, _ = cli(["detect", "eval", str(f), "-m", "ngram", "--max-tokens", "300", "--n-boot", "0", "--json"])
    assert code == 0
    study = {r["detector"]: r for r in ngram_run.tables["detectors"] if r["seed"] == 0 and r["dataset"] == "xsum"}
    for r in json.loads(out):
        assert r["n_human"] == 16
        assert r["auroc"] == pytest.approx(study[r["detector"]]["auroc"], abs=1e-4)
        assert r["tpr_at_1fpr"] == pytest.approx(study[r["detector"]]["tpr_at_1fpr"], abs=1e-4)


# ---- SmolLM2 (slow tier) --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2_quick(tmp_path_factory):
    return run_study("S-detect-real", preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow
def test_smollm2_quick_verdict(smollm2_quick):
    v = smollm2_quick
    assert v.status == QUICK_STATUS, v.reason
    m = v.measured
    for k, want in QUICK_PINNED.items():
        assert m[k] == pytest.approx(want, abs=0.01), k
    passed = {c.name: c.passed for c in v.checks}
    assert passed["auroc_logrank_writing"] and passed["auroc_fast_detectgpt_writing"]
    assert passed["auroc_logrank_xsum"] is None and passed["auroc_fast_detectgpt_xsum"] is None
    for c in v.checks:
        assert all(r.passed is not True for r in c.controls)


@pytest.mark.slow
def test_smollm2_full_agrees_with_quick(smollm2_quick, tmp_path):
    v = run_study("S-detect-real", preset="full", root=tmp_path)
    assert v.seeds == [0, 1, 2, 3, 4] and v.measured["pairs_pooled_min"] == 100
    assert v.status == smollm2_quick.status, v.reason
    assert [c.passed for c in v.checks] == [c.passed for c in smollm2_quick.checks]   # measured: they agree


# measured (docs/studies/S-detect-real.md): writing clears 0.85 with both detectors, xsum straddles it
QUICK_STATUS = "inconclusive"
QUICK_PINNED = {"auroc_logrank_xsum": 0.845, "auroc_fast_detectgpt_xsum": 0.898, "auroc_logrank_writing": 0.949,
                "auroc_fast_detectgpt_writing": 0.941, "auroc_with_prompt_logrank_xsum": 0.796}
