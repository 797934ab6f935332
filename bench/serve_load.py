"""Load test of ``neumo serve``: concurrent clients posting texts of mixed lengths to /api/detect.

Starts the server as a subprocess bound to 127.0.0.1 on a free port (traffic never leaves loopback),
loads the model with one warm-up request, then runs two phases with the same request mix:

1. one client (the serial baseline),
2. ``--clients`` concurrent clients,

each bounded by a request count and a wall-clock cap. Prints requests/s, p50/p95/p99 latency, errors
(must be 0) for each phase, the ratio of concurrent to serial throughput (the scoring model is behind one
worker queue, so concurrency should neither raise nor collapse throughput: the ratio should be near 1),
and the server's peak resident memory (``VmHWM`` of the server process).

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve_load.py [--model smollm2] [--clients 8] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from neumo.seeding import numpy_rng

LENGTHS_WORDS = (12, 48, 120, 240)  # mixed request sizes, from a headline to a long paragraph


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_texts(n: int, seed: int) -> list[str]:
    """``n`` texts cut from the shipped human corpus, cycling through LENGTHS_WORDS (seeded choice)."""
    from neumo.data.text import human_documents

    words = " ".join(human_documents("lee_background")).split()
    rng = numpy_rng(seed, "serve_load")
    out = []
    for i in range(n):
        k = LENGTHS_WORDS[i % len(LENGTHS_WORDS)]
        start = int(rng.integers(0, len(words) - k))
        out.append(" ".join(words[start:start + k]))
    return out


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a process (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_phase(url: str, texts: list[str], clients: int, max_seconds: float) -> dict:
    """Send ``texts`` with ``clients`` threads (each text once) until done or ``max_seconds`` pass."""
    lock, nxt = threading.Lock(), [0]
    lat: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_seconds

    def worker():
        with httpx.Client(base_url=url, timeout=max_seconds) as c:
            while time.monotonic() < deadline:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= len(texts):
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post("/api/detect", json={"text": texts[i]})
                    ok = r.status_code == 200
                    if not ok:
                        errors.append(f"{r.status_code}: {r.text[:120]}")
                except httpx.HTTPError as e:
                    ok = False
                    errors.append(repr(e))
                if ok:
                    with lock:
                        lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.asarray(lat)
    pct = {f"p{q}_s": round(float(np.percentile(a, q)), 3) if len(a) else None for q in (50, 95, 99)}
    return {"clients": clients, "requests": len(lat) + len(errors), "ok": len(lat), "errors": len(errors),
            "error_samples": errors[:3], "wall_s": round(wall, 2), "rps": round(len(lat) / wall, 3), **pct}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2", help="scoring model of the server (default smollm2)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients in phase 2 (at most 64)")
    ap.add_argument("--requests", type=int, default=40, help="requests per phase (at most 1000)")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="wall-clock cap per phase")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 64 and 1 <= args.requests <= 1000 and 0 < args.max_seconds <= 1800):
        ap.error("--clients must be in 1..64, --requests in 1..1000, --max-seconds in (0, 1800]")

    texts = make_texts(args.requests, args.seed)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    neumo = Path(sys.executable).with_name("neumo")
    with tempfile.TemporaryDirectory() as runs:
        proc = subprocess.Popen([str(neumo), "serve", "--host", "127.0.0.1", "--port", str(port), "--model",
                                 args.model, "--runs-dir", runs, "--timeout", str(args.max_seconds)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    if proc.poll() is not None:
                        raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
                    time.sleep(0.1)
            t0 = time.perf_counter()
            warm = httpx.post(f"{url}/api/detect", json={"text": texts[0]}, timeout=600)
            warm_s = time.perf_counter() - t0
            if warm.status_code != 200:
                raise SystemExit(f"warm-up failed: {warm.status_code} {warm.text[:300]}")
            rss_after_load = peak_rss_mb(proc.pid)
            serial = run_phase(url, texts, 1, args.max_seconds)
            concurrent = run_phase(url, texts, args.clients, args.max_seconds)
            peak = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    fig = {"model": args.model, "lengths_words": list(LENGTHS_WORDS), "first_request_s": round(warm_s, 2),
           "serial": serial, "concurrent": concurrent,
           "throughput_ratio_concurrent_over_serial": round(concurrent["rps"] / serial["rps"], 3)
           if serial["rps"] else None,
           "server_peak_rss_mb": round(peak, 1), "server_peak_rss_after_load_mb": round(rss_after_load, 1)}
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        print(f"model {args.model}; texts of {', '.join(map(str, LENGTHS_WORDS))} words; "
              f"first request (loads the model) {fig['first_request_s']} s")
        for name in ("serial", "concurrent"):
            p = fig[name]
            print(f"{name:>10}: {p['clients']} client(s), {p['ok']}/{p['requests']} ok, {p['errors']} errors, "
                  f"{p['rps']} req/s, p50 {p['p50_s']} s, p95 {p['p95_s']} s, p99 {p['p99_s']} s")
        print(f"throughput concurrent/serial: {fig['throughput_ratio_concurrent_over_serial']}")
        print(f"server peak RSS: {fig['server_peak_rss_mb']} MiB (after model load: {fig['server_peak_rss_after_load_mb']} MiB)")
    failed = serial["errors"] + concurrent["errors"]
    if failed:
        print(f"FAILED: {failed} request(s) errored: {serial['error_samples'] + concurrent['error_samples']}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
