"""Throughput of one-pass scoring, and of each precision of a Hugging Face scoring model.

Default mode: one-pass scoring (every detector from one forward pass) vs one forward pass per detector;
same model, same texts (cut from the shipped human corpus), same batch size. Prints tokens/s of both
modes, their ratio, and the process peak RSS after each mode (ru_maxrss is monotonic, so the one-pass
figure comes first).

``--precision fp32 bf16 int8``: loads the model once per precision in this process, then times
``score_texts`` (all detectors) on the same texts for each precision in turn, ``--repeats`` rounds
interleaved (fp32, bf16, int8, fp32, ...), and prints the median tokens/s of each and its ratio to the
first precision's. Then it evaluates the default detector of the model (its shipped calibration's) on the
first ``--pairs`` pairs of ``--pairs-file`` (the shipped xsum subset; shared prompt cut, ``--max-tokens``
continuation tokens) at each precision: AUROC, its difference to the first precision's, and the share of
texts whose verdict under the shipped calibration's threshold agrees. Usage:

    OMP_NUM_THREADS=1 .venv/bin/python bench/detect_throughput.py                  # smollm2
    OMP_NUM_THREADS=1 .venv/bin/python bench/detect_throughput.py --model ngram --texts 64 --tokens 256
    OMP_NUM_THREADS=1 .venv/bin/python bench/detect_throughput.py --precision fp32 bf16 int8 --tokens 128
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_pass_vs_per_detector(lm, texts, kw, load_s: float, a) -> None:
    import torch

    from neumo.detect.registry import compute_scores, detector_names
    from neumo.detect.score import score_texts

    names = detector_names()
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


def compare_precisions(a, texts, kw) -> None:
    import numpy as np
    import torch

    from neumo.detect.datasets import evaluate_file
    from neumo.detect.evaluate import default_detector, load_calibration, shipped_calibration
    from neumo.detect.lm import load_lm
    from neumo.detect.pairs import SHIPPED_DIR
    from neumo.detect.registry import compute_scores, detector_names
    from neumo.detect.score import score_texts

    lms = {}
    for p in a.precision:
        t0 = time.perf_counter()
        lms[p] = load_lm(a.model, precision=p)
        print(f"loaded {a.model} at {p} in {time.perf_counter() - t0:.1f} s")
    names = detector_names()
    for lm in lms.values():
        score_texts(lm, texts[:1], **kw)                               # warm-up (oneDNN primitives)
    # CPU seconds of this process (one thread) beside wall seconds: on a shared machine the wall clock also
    # counts the time other processes held the core; the ratio is taken on CPU time
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in lms}
    n_tok = 0
    for _ in range(a.repeats):
        for p, lm in lms.items():
            t0, c0 = time.perf_counter(), time.process_time()
            stats = score_texts(lm, texts, **kw)
            [compute_scores(s, names) for s in stats]
            times[p].append((time.perf_counter() - t0, time.process_time() - c0))
            n_tok = sum(s.n for s in stats)
    base = a.precision[0]
    print(f"{len(texts)} texts x {a.tokens} tokens = {n_tok} scored tokens, batch {a.batch_size}, all {len(names)} "
          f"detectors, threads {torch.get_num_threads()}, {a.repeats} interleaved repeats (median), torch "
          f"{torch.__version__}")
    cpu_base = statistics.median(c for _, c in times[base])
    for p in lms:
        cpu = statistics.median(c for _, c in times[p])
        wall = statistics.median(w for w, _ in times[p])
        print(f"  {p:5s}: CPU {cpu:7.2f} s  {n_tok / cpu:8.1f} tokens/CPU-s  x{cpu_base / cpu:5.2f} vs {base}  |  "
              f"wall {wall:7.2f} s  {n_tok / wall:8.1f} tokens/s  (CPU runs: {', '.join(f'{c:.2f}' for _, c in times[p])})")
    if a.pairs == 0:                                                   # --pairs 0: throughput only
        return
    det = default_detector(a.model)
    cal_path = shipped_calibration(a.model)
    thr = load_calibration(cal_path).threshold if cal_path else None
    path = SHIPPED_DIR / a.pairs_file
    print(f"{det} (default detector) on the first {a.pairs} pairs of {path.name}, prompt cut, at most "
          f"{a.max_tokens} continuation tokens:")
    res = {}
    for p, lm in lms.items():
        t0 = time.perf_counter()
        fe = evaluate_file(lm, path, [det], limit=a.pairs, max_tokens=a.max_tokens, n_boot=0)
        res[p] = (fe.rows[0]["auroc"], fe.scores[det], time.perf_counter() - t0)
    for p, (auc, sc, secs) in res.items():
        line = f"  {p:5s}: AUROC {auc:.4f}  (diff to {base} {auc - res[base][0]:+.4f}; {secs:.0f} s)"
        line += f"  max |score diff| {float(np.max(np.abs(sc - res[base][1]))):.4f}"
        if thr is not None:
            agree = float(np.mean((sc >= thr) == (res[base][1] >= thr)))
            line += f"  verdicts agreeing with {base} at the shipped threshold: {agree:.3f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--texts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--precision", nargs="+", default=None, help="compare these precisions (first = baseline)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=40, help="pairs for the AUROC comparison (0: skip it)")
    ap.add_argument("--pairs-file", default="xsum_gpt-neo-2.7B.raw_data.json.gz")
    ap.add_argument("--max-tokens", type=int, default=128)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from neumo.data.text import human_documents
    from neumo.detect.lm import load_lm

    texts = [d for d in human_documents("lee_background") if len(d) > 6 * a.tokens][: a.texts]
    kw = {"max_tokens": a.tokens, "batch_size": a.batch_size}
    if a.precision:
        compare_precisions(a, texts, kw)
        return
    t0 = time.perf_counter()
    lm = load_lm(a.model)
    one_pass_vs_per_detector(lm, texts, kw, time.perf_counter() - t0, a)


if __name__ == "__main__":
    main()
