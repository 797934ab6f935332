"""The precision option of the Hugging Face backend (fp32 | bf16 | int8) and load_lm's refusals."""

from pathlib import Path

import numpy as np
import pytest
import torch

from neumo.detect.lm import load_lm
from neumo.errors import NeumoError

TEXT = "The fire crews worked through the night, near Sydney. Residents stayed inside."


def test_precision_is_validated_and_only_for_hf_models():
    with pytest.raises(NeumoError, match="'precision' parameter must be one of fp32, bf16, int8"):
        load_lm("smollm2", precision="fp64")
    with pytest.raises(NeumoError, match="no precision option"):
        load_lm("ngram", precision="bf16")
    assert load_lm("ngram", precision=None).precision == "fp32"
    assert load_lm("ngram", precision="fp32") is load_lm("ngram")


@pytest.mark.parametrize("precision, tol", [("bf16", 0.15), ("int8", 0.15)])
def test_lower_precisions_stay_close_to_fp32(tiny_hf_dirs, precision, tol):
    from neumo.detect.score import score_text

    folder = tiny_hf_dirs[0]
    ref = load_lm(f"hf:{folder}")
    low = load_lm(f"hf:{folder}", precision=precision)
    assert ref.precision == "fp32" and low.precision == precision
    if precision == "bf16":
        assert next(low.model.parameters()).dtype == torch.bfloat16
    else:
        assert any("quantized" in type(m).__module__ for m in low.model.modules())
    a, b = score_text(ref, TEXT), score_text(low, TEXT)
    assert a.pieces == b.pieces and b.logprob.dtype == np.float64
    np.testing.assert_allclose(b.logprob, a.logprob, atol=tol)      # 300-token vocabulary: small logits
    np.testing.assert_allclose(b.entropy, a.entropy, atol=tol)
    assert low.output_embeddings().shape == (ref.vocab_size, 32)


def test_fp32_is_unchanged(tiny_hf_dirs):
    from neumo.detect.score import score_text

    a = score_text(load_lm(f"hf:{tiny_hf_dirs[0]}"), TEXT)
    b = score_text(load_lm(f"hf:{tiny_hf_dirs[0]}", precision="fp32"), TEXT)
    np.testing.assert_array_equal(a.logprob, b.logprob)


def test_the_faces_load_smollm2_at_bf16_unless_told(tmp_path, cli, monkeypatch):
    import neumo.detect.lm as lm_mod
    from neumo.detect.lm import face_precision

    monkeypatch.setattr(lm_mod, "native_bf16", lambda: True)  # a CPU with AVX-512-BF16 / AMX
    assert face_precision("smollm2") == "bf16" and face_precision("smollm2", "fp32") == "fp32"
    assert face_precision("ngram") is None and face_precision("hf:/x") is None
    calls = []
    real = lm_mod.load_lm

    def fake(name, **kw):
        calls.append((name, kw.get("precision")))
        return real("ngram")

    monkeypatch.setattr(lm_mod, "load_lm", fake)
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    for extra, want in (([], "bf16"), (["--precision", "fp32"], "fp32"), (["--precision", "int8"], "int8")):
        calls.clear()
        code, _, err = cli(["detect", "score", str(f), "-d", "logrank", *extra])
        assert code == 0, err
        assert calls == [("smollm2", want)]
    from neumo.server.scorer import _default_loader

    calls.clear()
    _default_loader("smollm2")()
    _default_loader("smollm2", "fp32")()
    assert calls == [("smollm2", "bf16"), ("smollm2", "fp32")]


def test_without_native_bf16_the_faces_default_to_fp32_but_honour_an_explicit_bf16(monkeypatch):
    import neumo.detect.lm as lm_mod

    monkeypatch.setattr(lm_mod, "native_bf16", lambda: False)  # e.g. AVX2 only: bf16 emulated, ~100x slower
    assert lm_mod.face_precision("smollm2") == "fp32" and lm_mod.face_precision("gemma3-270m") == "fp32"
    assert lm_mod.face_precision("smollm2", "bf16") == "bf16" and lm_mod.face_precision("ngram") is None


def test_native_bf16_agrees_with_the_cpu_flags():
    from neumo.detect.lm import native_bf16

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if not flags:
        pytest.skip("no /proc/cpuinfo to compare with")
    has = "avx512_bf16" in flags or "amx_bf16" in flags
    assert native_bf16() is has
