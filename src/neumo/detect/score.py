"""Score texts with a causal LM: one forward pass per window, every per-token statistic at once.

Texts are tokenized, prefixed with the model's start token (so the first text token is scored too), and
cut into windows of at most ``lm.max_len`` tokens. Windowing (documented, tested): the first window
scores all its targets; each next window starts ``stride`` tokens later (the last one is pulled back to
end exactly at the text's end) and scores only targets not scored before, so every target after the
first window sees at least ``max_len - stride`` tokens of context. ``stride`` defaults to half the
window. A text that fits in one window is scored exactly as in a single pass. Windows of all texts are
batched together, right-padded and masked (padding never precedes a scored position). Memory stays
bounded: a batch holds at most ``LOGIT_BUDGET`` logits (B x T x V) and statistics are computed on at most
``STATS_ROWS`` positions, and at most ``STATS_FLOATS`` logits, at a time: with SmolLM2's 49,152-token vocabulary
that is 21 positions, whose (rows, V) temporaries stay in cache (256 positions at a time made the statistics
about 4x slower on one core, measured; the draws of a window do not depend on the chunking).

Samples for sampling criteria (Lastde++): at each scored position ``n_samples`` tokens (default
``N_SAMPLES`` = 100) are drawn from the model's own next-token distribution and their log-probs kept
(``TokenStats.sample_logprob``, (n, S)). The draws of a window come from a generator seeded by
``sample_seed`` and the window's token ids, so a text gets the same samples whichever batch it is in.
The number of scored tokens (``max_tokens``) is bounded by ``MAX_TOKENS`` (:func:`check_max_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from neumo.detect.lm.base import CausalLM
from neumo.detect.stats import TOP_K, TOP_P, token_stats
from neumo.errors import NeumoError
from neumo.seeding import make_generator

DEFAULT_WINDOW = 1024
N_SAMPLES = 100  # per-position samples for sampling criteria (Lastde++, Xu et al. 2025)
MAX_SAMPLES = 10_000
MAX_TOKENS = 100_000  # most tokens scored per text (texts are also bounded in bytes on input)
LOGIT_BUDGET = 1 << 26  # floats per batch of logits (256 MiB in float32)
STATS_ROWS = 256
STATS_FLOATS = 1 << 20  # logits per statistics chunk (4 MiB in float32)


@dataclass
class TokenStats:
    """Per-token statistics of one text; arrays have one entry per scored token (n,)."""

    model: str
    ids: np.ndarray
    pieces: list[str]
    logprob: np.ndarray
    rank: np.ndarray
    entropy: np.ndarray
    var: np.ndarray
    in_top_k: np.ndarray
    in_top_p: np.ndarray
    top_k: int = TOP_K
    top_p: float = TOP_P
    sample_logprob: np.ndarray | None = None  # (n, S) log q_t of S tokens drawn from q_t; None: not drawn

    @property
    def n(self) -> int:
        return len(self.logprob)

    @property
    def mean(self) -> np.ndarray:
        """Expected log-prob under the model at each position (= -entropy)."""
        return -self.entropy

    def span(self, start: int, stop: int | None = None) -> "TokenStats":
        """The statistics of scored tokens ``start:stop``."""
        s = slice(start, stop)
        samples = None if self.sample_logprob is None else self.sample_logprob[s]
        return replace(
            self,
            ids=self.ids[s],
            pieces=self.pieces[s],
            logprob=self.logprob[s],
            rank=self.rank[s],
            entropy=self.entropy[s],
            var=self.var[s],
            in_top_k=self.in_top_k[s],
            in_top_p=self.in_top_p[s],
            sample_logprob=samples,
        )

    def tail(self, start: int) -> "TokenStats":
        """The statistics of tokens ``start`` onwards (e.g. a continuation without its prompt)."""
        return self.span(start, None)


def check_max_tokens(max_tokens: int | None) -> int | None:
    """Validate a number of scored tokens: ``None`` (all) or an integer in [1, MAX_TOKENS]."""
    if max_tokens is None:
        return None
    if (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, (int, np.integer))
        or not 1 <= max_tokens <= MAX_TOKENS
    ):
        raise NeumoError(
            f"The 'max_tokens' parameter must be an integer in [1, {MAX_TOKENS}] (tokens scored per "
            f"text) or None for all. Got {max_tokens!r} instead."
        )
    return int(max_tokens)


def _window_generator(seed: int, ids: torch.Tensor) -> torch.Generator:
    import hashlib

    digest = hashlib.blake2b(ids.numpy().astype(np.int64).tobytes(), digest_size=8).hexdigest()
    return make_generator(seed, "samples", digest)


def plan_windows(length: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows over a sequence of ``length`` ids: (start, end, first_target) with targets in
    [first_target, end) predicted from position target-1 inside [start, end)."""
    if window < 2:
        raise NeumoError(f"the model's window ({window} tokens) is too short to score anything")
    if not 0 < stride <= window - 1:
        raise NeumoError(f"The 'stride' parameter must lie in [1, {window - 1}]. Got {stride!r} instead.")
    if length <= window:
        return [(0, length, 1)]
    out = [(0, window, 1)]
    covered, start = window, 0
    while covered < length:
        start = min(start + stride, length - window)
        out.append((start, start + window, covered))
        covered = start + window
    return out


def _encode(lm: CausalLM, text: str, max_tokens: int | None) -> tuple[list[int], list[str]]:
    ids, pieces = lm.encode(text)
    if check_max_tokens(max_tokens) is not None:
        ids, pieces = ids[:max_tokens], pieces[:max_tokens]
    return ids, pieces


def score_ids(
    lm: CausalLM,
    sequences: list[list[int]],
    *,
    stride: int | None = None,
    batch_size: int = 8,
    top_k: int = TOP_K,
    top_p: float = TOP_P,
    pieces: list[list[str]] | None = None,
    window: int | None = None,
    n_samples: int = N_SAMPLES,
    sample_seed: int = 0,
) -> list[TokenStats]:
    """Statistics for id sequences (without the start token; it is prepended when the model has one).
    ``n_samples`` tokens per position are drawn from the model (0: none; see the module docstring)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or not 0 <= n_samples <= MAX_SAMPLES:
        raise NeumoError(
            f"The 'n_samples' parameter must be an integer in [0, {MAX_SAMPLES}]. Got {n_samples!r} instead."
        )
    W = int(window or min(lm.max_len, DEFAULT_WINDOW))
    S = int(stride or max(1, W // 2))
    bos = [] if lm.bos_id is None else [lm.bos_id]
    full = [bos + list(map(int, s)) for s in sequences]
    jobs = []  # (text index, start, end, first_target)
    for i, seq in enumerate(full):
        if len(seq) >= 2:
            jobs += [(i, *w) for w in plan_windows(len(seq), W, S)]
    parts: list[dict[int, dict[str, torch.Tensor]]] = [dict() for _ in full]
    per_batch = max(1, min(batch_size, LOGIT_BUDGET // max(1, W * lm.vocab_size)))
    rows = max(1, min(STATS_ROWS, STATS_FLOATS // max(1, lm.vocab_size)))
    for b in range(0, len(jobs), per_batch):
        chunk = jobs[b : b + per_batch]
        T = max(e - s for _, s, e, _ in chunk)
        ids = torch.full((len(chunk), T), lm.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for r, (i, s, e, _) in enumerate(chunk):
            ids[r, : e - s] = torch.tensor(full[i][s:e])
            mask[r, : e - s] = 1
        with torch.no_grad():
            logits = lm.forward(ids, mask)  # (B, T, V)
        for r, (i, s, e, first) in enumerate(chunk):
            pos = torch.arange(first - 1 - s, e - 1 - s)  # positions predicting targets first..e-1
            tgt = ids[r, pos + 1]
            gen = _window_generator(sample_seed, ids[r, : e - s]) if n_samples else None
            pieces_ = [
                token_stats(
                    logits[r, pos[c : c + rows]], tgt[c : c + rows], top_k, top_p, n_samples=n_samples, generator=gen
                )
                for c in range(0, len(pos), rows)
            ]
            parts[i][first] = {k: torch.cat([p[k] for p in pieces_]) for k in pieces_[0]}
    out = []
    for i, seq in enumerate(full):
        chunks = [parts[i][k] for k in sorted(parts[i])]
        cat = {
            k: torch.cat([c[k] for c in chunks]).numpy() if chunks else np.zeros(0)
            for k in ("logprob", "rank", "entropy", "var", "in_top_k", "in_top_p")
        }
        samples = None
        if n_samples:
            samples = (
                torch.cat([c["sample_logprob"] for c in chunks]).numpy().astype(np.float64)
                if chunks
                else np.zeros((0, n_samples))
            )
        targets = np.asarray(seq[1:], dtype=np.int64)
        pcs = pieces[i] if pieces is not None else [str(t) for t in sequences[i]]
        if len(bos) == 0:  # first token has no context: unscored
            pcs = pcs[1:]
        out.append(
            TokenStats(
                lm.name,
                targets,
                list(pcs),
                cat["logprob"].astype(np.float64),
                cat["rank"].astype(np.int64),
                cat["entropy"].astype(np.float64),
                cat["var"].astype(np.float64),
                cat["in_top_k"].astype(bool),
                cat["in_top_p"].astype(bool),
                top_k,
                top_p,
                samples,
            )
        )
    return out


def score_texts(lm: CausalLM, texts: list[str], *, max_tokens: int | None = None, **kwargs) -> list[TokenStats]:
    """Statistics for each text; ``max_tokens`` cuts texts to their first tokens (as evaluations do)."""
    enc = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise NeumoError(f"text {i} is empty or whitespace only; give at least one word to score")
        ids, pcs = _encode(lm, t, max_tokens)
        if len(ids) + (lm.bos_id is not None) < 2:
            raise NeumoError(f"text {i} has a single token and {lm.name} has no start token; give a longer text")
        enc.append((ids, pcs))
    return score_ids(lm, [e[0] for e in enc], pieces=[e[1] for e in enc], **kwargs)


def score_text(lm: CausalLM, text: str, **kwargs) -> TokenStats:
    return score_texts(lm, [text], **kwargs)[0]
