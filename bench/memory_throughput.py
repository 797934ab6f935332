"""Training throughput of the memory instrument's architectures, and the cost of the quick studies.

For each architecture at one fixed task size (MQAR with fused pairs, 8 pairs, sequence 16, batch 64)
it times ``--steps`` training steps after a warm-up and splits each step into its components: data
(task.sample), forward, backward, optimizer. Prints steps/s, the ratio to the fastest architecture, the
share of each component, and names the slowest architecture and the dominant component. With
``--suite`` it also runs every memory study's quick preset and prints the total (goal: < 5 minutes).

    OMP_NUM_THREADS=1 .venv/bin/python bench/memory_throughput.py [--steps 100] [--suite]
"""

from __future__ import annotations

import argparse
import time

import torch

from neumo.memory.evaluate import masked_ce
from neumo.memory.tasks import make_task, task_rng
from neumo.memory.train import model_for_task

ARCHS = {
    "lstm-64": ("lstm", {"hidden_size": 64}),
    "gru-64": ("gru", {"hidden_size": 64}),
    "rnn-64": ("rnn", {"hidden_size": 64}),
    "transformer-2L": ("transformer", {"d_model": 64, "n_layers": 2, "n_heads": 4, "pos": "rope"}),
    "linear-attention-parallel": ("linear_attention", {"d_model": 64, "n_layers": 2, "n_heads": 4}),
    "linear-attention-recurrent": ("linear_attention", {"d_model": 64, "n_layers": 2, "n_heads": 4,
                                                        "form": "recurrent"}),
    "memory-transformer": ("memory_transformer", {"d_model": 64, "n_layers": 2, "n_heads": 4, "n_mem": 2,
                                                  "segment_len": 8}),
}
PARTS = ("data", "forward", "backward", "optimizer")


def time_arch(name: str, knobs: dict, steps: int, warmup: int = 5) -> dict[str, float]:
    task = make_task("mqar", n_pairs=8, seq_len=16, n_keys=8, n_values=8, fused_pairs=True)
    model = model_for_task(name, task, seed=0, max_len=16, **knobs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    acc = dict.fromkeys(PARTS, 0.0)
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        batch = task.sample(64, task_rng(0, "train", step))
        t1 = time.perf_counter()
        loss = masked_ce(model(batch.inputs), batch.targets)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if step >= warmup:
            for k, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                acc[k] += dt
    total = sum(acc.values())
    return {"steps_per_s": steps / total, **{k: v / total for k, v in acc.items()},
            "state_size": model.state_size(16), "params": model.num_parameters()}


def run_suite() -> float:
    from neumo.studies.registry import all_studies
    from neumo.studies.runner import run_study
    import tempfile

    total = 0.0
    with tempfile.TemporaryDirectory() as root:
        for sid, study in all_studies().items():
            if study.instrument != "memory":
                continue
            t0 = time.perf_counter()
            v = run_study(sid, preset="quick", root=root)
            dt = time.perf_counter() - t0
            total += dt
            print(f"  {sid:28s} {v.status:8s} {dt:6.1f} s  {v.summary}")
    print(f"memory quick suite: {total:.1f} s (goal < 300 s)")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--suite", action="store_true", help="also time every memory study's quick preset")
    args = ap.parse_args()
    torch.set_num_threads(1)
    res = {label: time_arch(name, knobs, args.steps) for label, (name, knobs) in ARCHS.items()}
    best = max(r["steps_per_s"] for r in res.values())
    print(f"{'architecture':28s} {'steps/s':>8s} {'vs best':>8s} " + " ".join(f"{p:>9s}" for p in PARTS)
          + f" {'state':>7s} {'params':>7s}")
    for label, r in res.items():
        print(f"{label:28s} {r['steps_per_s']:8.1f} {r['steps_per_s'] / best:8.2f} "
              + " ".join(f"{r[p]:9.0%}" for p in PARTS) + f" {r['state_size']:7d} {r['params']:7d}")
    slow = min(res, key=lambda k: res[k]["steps_per_s"])
    part = max(PARTS, key=lambda p: res[slow][p])
    print(f"slowest architecture: {slow} ({best / res[slow]['steps_per_s']:.1f}x slower than the fastest); "
          f"its dominant component: {part} ({res[slow][part]:.0%} of a step)")
    if args.suite:
        run_suite()


if __name__ == "__main__":
    main()
