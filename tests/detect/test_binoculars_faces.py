"""Binoculars through the library, the CLI (score, eval) and the server: accepted when the two models share
a tokenizer, refused with one line otherwise."""

import json

import numpy as np
import pytest

from neumo.detect.binoculars import binoculars, binoculars_score, binoculars_tokens
from neumo.errors import NeumoError

TEXTS = ["The council met on Monday to discuss the roads.", "Police said a man was arrested in Sydney."]


def _tiny(seed):
    from neumo.detect.lm.base import char_alphabet
    from neumo.detect.lm.tiny import TinyLM
    from neumo.nn import build_model

    symbols = list(char_alphabet(TEXTS))
    return TinyLM(build_model("transformer", seed=seed, vocab_size=len(symbols) + 1, d_model=32, n_layers=1,
                              n_heads=2, max_len=64, pos="learned"), symbols)


def test_two_tiny_models_with_different_seeds_share_a_tokenizer():
    import torch

    obs, perf = _tiny(0), _tiny(1)
    got = binoculars(obs, perf, TEXTS)
    for t, g in zip(TEXTS, got):                  # dense oracle: -B = -mean nll_perf / mean xent(obs, perf)
        x = torch.tensor([[obs.bos_id] + obs.encode(t)[0]])
        lo = torch.log_softmax(obs.forward(x, torch.ones_like(x))[0, :-1].double(), -1)
        lp = torch.log_softmax(perf.forward(x, torch.ones_like(x))[0, :-1].double(), -1)
        nll = -lp.gather(-1, x[0, 1:, None])[:, 0].mean()
        xent = -(lo.exp() * lp).sum(-1).mean()
        assert g == pytest.approx(float(-nll / xent), rel=1e-9)
    assert got != binoculars(obs, obs, TEXTS)      # a different performer changes the score
    (n, x), = binoculars_tokens(obs, perf, [obs.encode(TEXTS[0])[0]])
    assert len(n) == len(TEXTS[0]) and binoculars_score(n, x) == pytest.approx(got[0])


def test_models_with_different_tokenizers_are_refused(ngram_lm):
    with pytest.raises(NeumoError, match="one tokenizer; tiny and ngram tokenize differently"):
        binoculars(_tiny(0), ngram_lm, TEXTS)


def test_library_analyze_needs_a_performer(ngram_lm):
    from neumo.detect.analyze import analyze_text

    with pytest.raises(NeumoError, match="--performer"):
        analyze_text(TEXTS[0], ngram_lm, detectors=["binoculars"])
    r = analyze_text(TEXTS[0], ngram_lm, detectors=["binoculars"], performer=ngram_lm)
    assert set(r.scores) == {"binoculars"}


def test_cli_score_accepts_a_pair_that_shares_a_tokenizer(tmp_path, cli, tiny_hf_dirs):
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS))
    a, b = (f"hf:{d}" for d in tiny_hf_dirs)
    code, out, err = cli(["detect", "score", str(f), "--lines", "-m", a, "--performer", b, "-d", "binoculars",
                          "-d", "logrank", "--json"])
    assert code == 0, err
    rows = json.loads(out)
    assert [set(r["scores"]) for r in rows] == [{"logrank", "binoculars"}] * 2
    from neumo.detect.lm import load_lm

    want = binoculars(load_lm(a), load_lm(b), TEXTS)
    np.testing.assert_allclose([r["scores"]["binoculars"] for r in rows], want, rtol=1e-9)


def test_cli_refuses_other_tokenizers_and_a_missing_performer(tmp_path, cli, tiny_hf_dirs):
    f = tmp_path / "t.txt"
    f.write_text(TEXTS[0])
    code, _, err = cli(["detect", "score", str(f), "-m", "ngram", "--performer", f"hf:{tiny_hf_dirs[0]}",
                        "-d", "binoculars"])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "one tokenizer" in lines[0] and lines[0].startswith("error:")
    code, _, err = cli(["detect", "score", str(f), "-m", "ngram", "-d", "binoculars"])
    assert code == 2 and "--performer" in err
    code, _, err = cli(["detect", "score", str(f), "-m", "ngram", "--performer", "ngram"])
    assert code == 2 and "only used by -d binoculars" in err


def test_cli_eval_scores_binoculars_on_the_continuation(tmp_path, cli, tiny_hf_dirs):
    data = tmp_path / "p.json"
    prompt = "The council met on Monday"
    data.write_text(json.dumps({"original": [prompt + " to discuss roads.", prompt + " and left at noon."],
                                "sampled": [prompt + " the the the the.", prompt + " and and and and."]}))
    a, b = (f"hf:{d}" for d in tiny_hf_dirs)
    code, out, err = cli(["detect", "eval", str(data), "-m", a, "--performer", b, "-d", "binoculars",
                          "-d", "logrank", "--n-boot", "0", "--json"])
    assert code == 0, err
    rows = {r["detector"]: r for r in json.loads(out)}
    assert set(rows) == {"logrank", "binoculars"} and rows["binoculars"]["prompt_cut"]
    # the continuation only: equal to binoculars_tokens on the whole text, cut after the shared prompt
    from neumo.detect.datasets import evaluate_file
    from neumo.detect.lm import load_lm
    from neumo.detect.pairs import encode_pairs, load_pairs

    obs, perf = load_lm(a), load_lm(b)
    fe = evaluate_file(obs, data, ["binoculars"], n_boot=0, performer=perf)
    enc = encode_pairs(obs, *load_pairs(data))
    (n, x), = binoculars_tokens(obs, perf, [enc[0].human])
    assert fe.scores["binoculars"][0] == pytest.approx(binoculars_score(n[enc[0].prompt:], x[enc[0].prompt:]))


def test_server_binoculars_with_and_without_a_performer(tmp_path, tiny_hf_dirs):
    from fastapi.testclient import TestClient

    from neumo.server import create_app

    a, b = (f"hf:{d}" for d in tiny_hf_dirs)
    with TestClient(create_app(runs_dir=tmp_path, model=a, performer=b)) as c:
        r = c.post("/api/detect", json={"text": TEXTS[0], "detectors": ["binoculars", "logrank"]})
        assert r.status_code == 200 and set(r.json()["scores"]) == {"binoculars", "logrank"}
    with TestClient(create_app(runs_dir=tmp_path, model=a)) as c:
        r = c.post("/api/detect", json={"text": TEXTS[0], "detectors": ["binoculars"]})
        assert r.status_code == 422 and r.json()["error"] == "needs_performer"
    with TestClient(create_app(runs_dir=tmp_path, model="ngram", performer=a)) as c:
        r = c.post("/api/detect", json={"text": TEXTS[0], "detectors": ["binoculars"]})
        assert r.status_code == 503 and "one tokenizer" in r.json()["message"]
