"""Human/machine pairs that share a prompt: read them, find the prompt, score only what follows it.

In the Fast-DetectGPT files (``{"original": [...], "sampled": [...]}``) item i of both lists starts with
the same human prompt (about 30 tokens): the machine text is the generator's continuation of it. Scoring
the prompt scores the same human tokens for both texts of a pair and pulls every AUROC towards 0.5, so
detection is measured on the *continuation* only. One definition, used by ``neumo detect eval`` and by
S-detect-real: the prompt of a pair is the longest common prefix of its two token-id sequences
(:func:`shared_prefix_len`); a text's continuation is everything after it, and each continuation token is
scored with the prompt (and the continuation before it) as context.

The neumo package ships a subset of the pairs (``neumo/detect/data/fast-detect-gpt``, MIT licence and
provenance beside it); :func:`draw_subset` is how it was drawn.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neumo.detect.lm.base import CausalLM
from neumo.detect.score import TokenStats, check_max_tokens, score_ids
from neumo.errors import NeumoError

SHIPPED_DIR = Path(__file__).parent / "data" / "fast-detect-gpt"
FDG_SUBDIR = Path("detect") / "fast-detect-gpt"
# a pair file is read whole: bound it (the largest Fast-DetectGPT file is under 1 MB)
MAX_PAIR_FILE_BYTES = 64 * 2**20


def is_pair_file(path: str | Path) -> bool:
    """A Fast-DetectGPT pair file: ``.json`` or gzip-compressed ``.json.gz``."""
    name = Path(path).name
    return name.endswith(".json") or name.endswith(".json.gz")


def load_pairs(path: str | Path, limit: int | None = None) -> tuple[list[str], list[str]]:
    """(human texts, machine texts) of a pair file, aligned, the first ``limit`` pairs."""
    p = Path(path)
    if not p.is_file():
        raise NeumoError(f"data file {p} does not exist")
    try:
        with gzip.open(p, "rb") if p.name.endswith(".gz") else p.open("rb") as f:
            raw = f.read(MAX_PAIR_FILE_BYTES + 1)  # stream: never read past the bound
        if len(raw) > MAX_PAIR_FILE_BYTES:
            raise NeumoError(
                f"{p} holds more than {MAX_PAIR_FILE_BYTES >> 20} MiB of JSON "
                "(neumo.detect.pairs.MAX_PAIR_FILE_BYTES); split it into smaller files"
            )
        d = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise NeumoError(f"{p} is not a (gzip-compressed) UTF-8 JSON file: {e}") from e
    if not isinstance(d, dict) or not all(isinstance(d.get(k), list) for k in ("original", "sampled")):
        raise NeumoError(f"{p}: expected a JSON object with 'original' and 'sampled' lists")
    if not all(isinstance(t, str) for t in d["original"] + d["sampled"]):
        raise NeumoError(f"{p}: every text in 'original' and 'sampled' must be a string")
    h, m = d["original"][:limit], d["sampled"][:limit]
    if len(h) != len(m):
        raise NeumoError(f"{p}: 'original' has {len(h)} texts and 'sampled' {len(m)}; pairs must align")
    return h, m


def find_pair_file(data_dir: str | Path | None, dataset: str, generator: str) -> Path:
    """``{dataset}_{generator}.raw_data.json[.gz]`` in ``data_dir`` or its ``detect/fast-detect-gpt``
    (``None``: the subset shipped with neumo); raises with the places looked at when absent."""
    base = Path(data_dir) if data_dir is not None else SHIPPED_DIR
    name = f"{dataset}_{generator}.raw_data.json"
    tried = [folder / (name + ext) for folder in (base / FDG_SUBDIR, base) for ext in ("", ".gz")]
    for p in tried:
        if p.is_file():
            return p
    raise NeumoError(
        f"no pair file for {dataset!r}/{generator!r}: looked for {', '.join(map(str, tried))}; "
        "give data_dir= a folder holding detect/fast-detect-gpt (e.g. ../shared/data) or "
        "drop it to use the subset shipped with neumo"
    )


def shared_prefix_len(a, b) -> int:
    """Number of leading positions where the id sequences ``a`` and ``b`` agree (their shared prompt)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class EncodedPair:
    human: list[int]
    machine: list[int]
    human_pieces: list[str]
    machine_pieces: list[str]
    prompt: int  # tokens of the shared prompt

    @property
    def continuation(self) -> int:
        """Tokens after the prompt in the shorter text of the pair."""
        return min(len(self.human), len(self.machine)) - self.prompt


def encode_pairs(lm: CausalLM, human: list[str], machine: list[str]) -> list[EncodedPair]:
    if len(human) != len(machine):
        raise NeumoError(f"{len(human)} human and {len(machine)} machine texts: pairs must align")
    out = []
    for h, m in zip(human, machine):
        (ih, ph), (im, pm) = lm.encode(h), lm.encode(m)
        out.append(EncodedPair(list(ih), list(im), list(ph), list(pm), shared_prefix_len(ih, im)))
    return out


def span(stats: TokenStats, start: int, stop: int | None = None) -> TokenStats:
    """The statistics of scored tokens ``start:stop`` (:meth:`TokenStats.span`)."""
    return stats.span(start, stop)


@dataclass
class ScoredPair:
    human: TokenStats  # continuation tokens only
    machine: TokenStats
    human_full: TokenStats  # prompt + continuation (what scoring the text from its start gives)
    machine_full: TokenStats
    prompt: int


def score_pairs(
    lm: CausalLM, pairs: list[EncodedPair], max_tokens: int | None = None, batch_size: int = 8
) -> list[ScoredPair]:
    """Score each text of each pair once, prompt as context, and keep the first ``max_tokens`` tokens of
    each continuation (all of it when ``None``). A pair with nothing after its prompt is refused."""
    max_tokens = check_max_tokens(max_tokens)
    seqs, pieces = [], []
    for i, p in enumerate(pairs):
        if p.continuation < 1:
            raise NeumoError(
                f"pair {i}: one text is the other's prefix ({p.prompt} shared tokens); nothing "
                "follows the prompt to score"
            )
        end = None if max_tokens is None else p.prompt + int(max_tokens)
        seqs += [p.human[:end], p.machine[:end]]
        pieces += [p.human_pieces[:end], p.machine_pieces[:end]]
    stats = score_ids(lm, seqs, pieces=pieces, batch_size=batch_size)
    # with a start token, scored token j is text token j; without one the first text token is unscored
    shift = 0 if lm.bos_id is not None else 1
    out = []
    for i, p in enumerate(pairs):
        h, m = stats[2 * i], stats[2 * i + 1]
        cut = max(0, p.prompt - shift)
        out.append(ScoredPair(h.tail(cut), m.tail(cut), h, m, p.prompt))
    return out


# ---- the shipped subset ------------------------------------------------------------------------------


def draw_subset(
    source_dir: str | Path, out_dir: str | Path, datasets: list[str], generator: str, n_pairs: int, seed: int = 0
) -> list[dict]:
    """Write ``n_pairs`` pairs of each ``{dataset}_{generator}`` file of ``source_dir`` (drawn uniformly
    without replacement with ``numpy_rng(seed, "ship", dataset)``, kept in file order) to ``out_dir`` as
    gzip-compressed JSON with their indices in the source file (``"index"``). Returns one row per file."""
    from neumo.seeding import numpy_rng

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for d in datasets:
        src = find_pair_file(source_dir, d, generator)
        h, m = load_pairs(src)
        k = min(n_pairs, len(h))
        idx = np.sort(numpy_rng(seed, "ship", d).choice(len(h), size=k, replace=False))
        doc = {"original": [h[i] for i in idx], "sampled": [m[i] for i in idx], "index": [int(i) for i in idx]}
        dst = out_dir / f"{d}_{generator}.raw_data.json.gz"
        # mtime=0: the same subset gives the same bytes
        dst.write_bytes(gzip.compress(json.dumps(doc, ensure_ascii=False).encode("utf-8"), 9, mtime=0))
        rows.append({"file": dst.name, "source": src.name, "pairs": k, "of": len(h), "bytes": dst.stat().st_size})
    return rows


__all__ = [
    "EncodedPair",
    "MAX_PAIR_FILE_BYTES",
    "SHIPPED_DIR",
    "ScoredPair",
    "draw_subset",
    "encode_pairs",
    "find_pair_file",
    "is_pair_file",
    "load_pairs",
    "score_pairs",
    "shared_prefix_len",
    "span",
]
