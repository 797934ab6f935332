"""Throughput of one-pass scoring (every detector from one forward pass) vs one forward pass per detector.

Same model, same texts (cut from the shipped human corpus), same batch size. Prints tokens/s of both modes,
their ratio, and the process peak RSS after each mode (ru_maxrss is monotonic, so the one-pass figure
comes first). Usage:

    OMP_NUM_THREADS=1 .venv/bin/python bench/detect_throughput.py                  # smollm2
    OMP_NUM_THREADS=1 .venv/bin/python bench/detect_throughput.py --model ngram --texts 64 --tokens 256
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--texts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from neumo.data.text import human_documents
    from neumo.detect.lm import load_lm
    from neumo.detect.registry import compute_scores, detector_names
    from neumo.detect.score import score_texts

    t0 = time.perf_counter()
    lm = load_lm(a.model)
    load_s = time.perf_counter() - t0
    texts = [d for d in human_documents("lee_background") if len(d) > 6 * a.tokens][: a.texts]
    names = detector_names()
    kw = {"max_tokens": a.tokens, "batch_size": a.batch_size}
    score_texts(lm, texts[:1], **kw)                                   # warm-up
    rss0 = peak_rss_mib()

    t0 = time.perf_counter()
    stats = score_texts(lm, texts, **kw)
    one = [compute_scores(s, names) for s in stats]
    t_one = time.perf_counter() - t0
    n_tok = sum(s.n for s in stats)
    rss_one = peak_rss_mib()

    t0 = time.perf_counter()
    per = {n: [compute_scores(s, [n])[n] for s in score_texts(lm, texts, **kw)] for n in names}
    t_per = time.perf_counter() - t0
    rss_per = peak_rss_mib()
    same = all(abs(per[n][i] - one[i][n]) <= 1e-9 * max(1.0, abs(one[i][n])) for n in names for i in range(len(texts)))

    print(f"model {lm.name} (loaded in {load_s:.1f} s), {len(texts)} texts x {a.tokens} tokens = {n_tok} scored "
          f"tokens, batch {a.batch_size}, {len(names)} detectors, threads {torch.get_num_threads()}")
    print(f"one pass, all detectors : {t_one:8.2f} s  {n_tok / t_one:9.1f} tokens/s  peak RSS {rss_one:7.0f} MiB")
    print(f"one pass per detector   : {t_per:8.2f} s  {n_tok / t_per:9.1f} tokens/s  peak RSS {rss_per:7.0f} MiB")
    print(f"speed-up (per-detector time / one-pass time): {t_per / t_one:.2f}x; identical scores: {same}; "
          f"RSS before timing {rss0:.0f} MiB")


if __name__ == "__main__":
    main()
