"""What each real detector and segmenter costs on this machine: load time, first and second picture, memory.

Each model runs in a fresh process (so its peak RSS is its own, as in a class server replica that holds only
it), with torch's default threads (the class server's CPU, 2 cores here):

  * build: ``load_dense(name, "untrained")`` (torchvision's builder and random initialisation);
  * load file: ``load_dense(name, "pretrained")`` from a checkpoint made here (the untrained model's
    state dict, saved under torchvision's file name in a temporary torch cache: the real file's size and
    keys, not its values), i.e. reading and fitting the file, as a classroom does after ``weights fetch``;
  * 1st / 2nd picture: ``detect_objects`` on the cat sample (the first includes one-off allocations);
  * stage maps: ``dense_stage_maps`` (the backbone alone, for the comparison view);
  * looked: ``where_it_looked`` from its default maps as the page makes it (a detector's best 8 boxes from a
    score of 0.05; a segmenter's 4 largest classes, one backward pass each), and how many there were;
  * RSS: the process's resident memory after importing torch ("start"), after the runs ("held": the model
    kept), and its peak; "added" is the peak minus the start: what holding and running this model adds.

Then it proposes how many dense models a class server replica can keep (a bounded cache), from the
replica's memory limit (docs/kubernetes.md) and the README's measured peak of a class of 30.

    python bench/dense.py [--models NAME ...] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        match = re.search(r"VmRSS:\s+(\d+) kB", f.read())
    return int(match.group(1)) / 1024 if match else float("nan")


def prepare(name: str, home: str, threads: int | None) -> dict[str, float]:
    """Times the untrained build, and saves a checkpoint of the model under torchvision's file name in
    ``home``'s torch cache (its size and keys are the real file's; its values are random)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    import backbone_viz as bv
    from backbone_viz.files import weights

    os.environ["TORCH_HOME"] = home
    t = time.perf_counter()
    bv.load_dense(name, "untrained")
    build_s = time.perf_counter() - t
    spec = bv.get_dense_spec(name)
    cache = weights.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(
        spec.build().state_dict(), cache / spec.weights_file.filename
    )  # with the aux head, as the file
    return {"build_s": build_s, "file_mb": (cache / spec.weights_file.filename).stat().st_size / 2**20}


def one(name: str, home: str, threads: int | None) -> dict[str, float | str]:
    """A fresh replica's view: load the model from its file, run two pictures and the stage maps."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    import backbone_viz as bv
    from backbone_viz.files import weights

    os.environ["TORCH_HOME"] = home
    os.environ[weights.MIRROR_ENV] = "http://127.0.0.1:9/"  # the file is in the cache: never the internet
    picture = bv.load_image(ROOT / "assets" / "samples" / "cat.jpg")
    start_rss = _rss_mb()
    t = time.perf_counter()
    dense = bv.load_dense(name, "pretrained")
    load_s = time.perf_counter() - t
    first = bv.detect_objects(dense, picture)
    second = bv.detect_objects(dense, picture)
    t = time.perf_counter()
    bv.dense_stage_maps(dense, picture)
    maps_ms = (time.perf_counter() - t) * 1000
    segmenter = dense.spec.kind == "semantic segmenter"
    found = second if segmenter else bv.detect_objects(dense, picture, threshold=0.05)
    t = time.perf_counter()
    looked = bv.where_it_looked(dense, picture, found, threshold=0.05, max_regions=4 if segmenter else 8)
    looked_ms = (time.perf_counter() - t) * 1000
    return {
        "name": name,
        "title": dense.spec.full_title,
        "load_s": load_s,
        "first_ms": first.ms,
        "second_ms": second.ms,
        "maps_ms": maps_ms,
        "looked_ms": looked_ms,
        "regions": len(looked.regions),
        "input": "x".join(map(str, first.input_size)),
        "start_rss_mb": start_rss,
        "held_rss_mb": _rss_mb(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="dense model names (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--home", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.home, args.threads)))
        return
    if args.one:
        print(json.dumps(one(args.one, args.home, args.threads)))
        return

    from backbone_viz.dense.specs import list_dense

    names = args.models or [s.name for s in list_dense()]
    rows = []
    threads = ["--threads", str(args.threads)] if args.threads else []
    for name in names:
        with tempfile.TemporaryDirectory() as home:
            row: dict[str, float | str] = {}
            for step in ("--prepare", "--one"):
                command = [sys.executable, __file__, step, name, "--home", home, *threads]
                proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
                if proc.returncode != 0:
                    print(f"{name} {step}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                    break
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            else:
                rows.append(row)
                print(f"{name}: done", file=sys.stderr)
    if not rows:
        return
    print(
        f"cat.jpg, {rows[0]['threads']} torch thread(s), load average {os.getloadavg()[0]:.1f}; times in one run each"
    )
    print(
        f"{'model':<28} {'file MB':>7} {'build s':>7} {'load s':>6} {'input':>8} {'1st ms':>7} {'2nd ms':>7} "
        f"{'maps ms':>7} {'looked ms (n)':>13} {'RSS MB: start':>13} {'held':>5} {'peak':>5} {'added':>5}"
    )
    for r in rows:
        print(
            f"{r['title']:<28} {r['file_mb']:7.0f} {r['build_s']:7.1f} {r['load_s']:6.1f} {r['input']:>8} "
            f"{r['first_ms']:7.0f} {r['second_ms']:7.0f} {r['maps_ms']:7.0f} "
            f"{r['looked_ms']:9.0f} ({r['regions']}) {r['start_rss_mb']:13.0f} "
            f"{r['held_rss_mb']:5.0f} {r['peak_rss_mb']:5.0f} {r['peak_rss_mb'] - r['start_rss_mb']:5.0f}"
        )
    limit_mb = _replica_limit_mb()
    class_mb = _class_peak_mb()
    worst = max(r["peak_rss_mb"] - r["start_rss_mb"] for r in rows)
    room = limit_mb - class_mb
    n = max(1, int(room // worst)) if room > 0 else 1
    print(
        f"\nbounded cache: a replica may use {limit_mb:.0f} MB (docs/kubernetes.md); a class of 30 peaked at "
        f"{class_mb:.0f} MB (README) without dense models, leaving {room:.0f} MB; the heaviest dense model adds "
        f"up to {worst:.0f} MB while it runs, so keep at most N = {n} dense model(s) per replica."
    )


def _replica_limit_mb() -> float:
    text = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    match = re.search(r"limits:\s*\{\s*memory:\s*(\d+)Gi\s*\}", text)
    return int(match.group(1)) * 1024 if match else 4096.0


def _class_peak_mb() -> float:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"peak RSS (\d+(?:\.\d+)?) GB", text)
    return float(match.group(1)) * 1000 if match else 3000.0


if __name__ == "__main__":
    main()
