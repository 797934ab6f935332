"""Whether bf16 pays on this CPU: GFLOP/s of fp32 vs bf16 matmuls of SmolLM2's shapes, in one process.

The faces (`neumo detect ...`, `neumo serve`) load smollm2 and gemma3-270m at bf16 only where
``neumo.detect.lm.native_bf16()`` is true (oneDNN's check for AVX-512-BF16 / AMX); elsewhere oneDNN emulates
bf16 and the faces load fp32. This prints that check, the CPU flags it rests on, and the measured ratio.
Shapes: one text of 94 tokens through SmolLM2's output layer (576 -> 49,152) and an MLP projection
(576 -> 1,536). Interleaved repeats, median seconds per product, one thread. Usage:

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/bf16_matmul.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

SHAPES = [(94, 576, 49152), (94, 576, 1536)]


def _time(a: torch.Tensor, b: torch.Tensor) -> float:
    t = time.perf_counter()
    a @ b
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neumo.detect.lm import face_precision, native_bf16

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    named = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    print(f"torch {torch.__version__}; cpu capability {torch.backends.cpu.get_cpu_capability()}; flags {named}")
    print(f"native_bf16() = {native_bf16()}; the faces load smollm2 at {face_precision('smollm2')}")
    for m, k, n in SHAPES:
        g = torch.Generator().manual_seed(0)
        x = {dt: torch.randn(m, k, generator=g).to(dt) for dt in (torch.float32, torch.bfloat16)}
        w = {dt: torch.randn(k, n, generator=g).to(dt) for dt in (torch.float32, torch.bfloat16)}
        for dt in x:  # warm-up: oneDNN picks and caches its kernel on the first product
            _time(x[dt], w[dt])
        secs: dict[torch.dtype, list[float]] = {dt: [] for dt in x}
        for _ in range(args.repeats):
            for dt in x:
                secs[dt].append(_time(x[dt], w[dt]))
        med = {dt: statistics.median(v) for dt, v in secs.items()}
        gf = {dt: 2 * m * k * n / s / 1e9 for dt, s in med.items()}
        print(
            f"{m}x{k} @ {k}x{n}: fp32 {gf[torch.float32]:.2f} GFLOP/s, bf16 {gf[torch.bfloat16]:.2f} GFLOP/s, "
            f"bf16 time / fp32 time {med[torch.bfloat16] / med[torch.float32]:.2f}"
        )


if __name__ == "__main__":
    main()
