"""The engine alone under classroom load: N threads analysing on one shared model at once.

For each torch intra-op thread setting (1, 2, and the default torch picks on this machine) and each
number of concurrent sessions N, runs N Python threads that each analyse different sample photos on
the SAME shared backbone, and prints throughput (analyses per second) against serial (N = 1) and the
per-analysis latency (p50, p95). Then a memory soak: repeated analyses over several cached backbones,
resident memory after warm-up against the end.

    python bench/engine_load.py [--backbone resnet50] [--per-thread 6] [--soak 200]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import backbone_viz as bv  # noqa: E402
from backbone_viz.files.samples import list_samples  # noqa: E402


def rss_mb() -> float:
    """Current resident set size in MB (from /proc, so it can go down as well as up)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def run_load(bb: bv.Backbone, images: list, n: int, per_thread: int) -> tuple[float, list[float]]:
    """N threads, each doing ``per_thread`` analyses; returns (wall seconds, per-analysis latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def worker(k: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            start = time.perf_counter()
            bv.analyze(bb, images[(k + i) % len(images)])
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--sessions", type=int, nargs="*", default=[1, 4, 8, 16])
    parser.add_argument("--per-thread", type=int, default=4)
    parser.add_argument("--soak", type=int, default=200)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    images = [bv.load_image(s.path) for s in list_samples()]
    weights = "pretrained" if bv.get_spec(args.backbone).bundled else "untrained"
    bb = bv.load_backbone(args.backbone, weights=weights, device="cpu")
    bv.analyze(bb, images[0])  # warm-up
    print(f"{args.backbone} ({weights}), {len(images)} photos, {args.per_thread} analyses per session; "
          f"torch default threads here: {default_threads}")
    print(f"{'threads':>7} {'N':>3} {'analyses/s':>11} {'vs serial':>10} {'p50 ms':>8} {'p95 ms':>8}")
    for threads in sorted({1, 2, default_threads}):
        torch.set_num_threads(threads)
        serial = None
        for n in args.sessions:
            wall, lat = run_load(bb, images, n, args.per_thread)
            rate = len(lat) / wall
            serial = serial or rate
            p95 = sorted(lat)[max(0, int(round(0.95 * len(lat))) - 1)]
            print(f"{threads:>7} {n:>3} {rate:>11.2f} {rate / serial:>9.2f}x {statistics.median(lat) * 1e3:>8.0f} "
                  f"{p95 * 1e3:>8.0f}", flush=True)
    torch.set_num_threads(default_threads)
    if args.soak:
        names = ["efficientnet_lite0", "resnet50", "googlenet"]
        models = [bv.load_backbone(n, weights="pretrained" if n == "efficientnet_lite0" else "untrained",
                                   device="cpu") for n in names]
        for i in range(3 * len(models)):  # warm-up: allocator pools reach their steady size
            bv.analyze(models[i % len(models)], images[i % len(images)])
        start = rss_mb()
        peak = start
        for i in range(args.soak):
            bv.analyze(models[i % len(models)], images[i % len(images)], target=(i * 37) % 1000)
            peak = max(peak, rss_mb())
        print(f"soak: {args.soak} analyses over {', '.join(names)}: RSS after warm-up {start:.0f} MB, "
              f"at the end {rss_mb():.0f} MB (growth {rss_mb() - start:+.0f} MB, peak {peak:.0f} MB)")


if __name__ == "__main__":
    main()
