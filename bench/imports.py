"""What importing backbone-viz costs, side by side with torch and torchvision, in fresh processes.

Each row is a new Python process (best of ``--repeats``): the seconds its imports took and its peak
resident memory. ``import backbone_viz`` alone loads nothing heavy (names are imported on first use); the
engine's core (``analyze`` and ``load_backbone``) needs torch, torchvision and timm, and is compared with
``import torch, torchvision`` (target: within 10 %). ``--help`` is the whole command, timed from outside.

    python bench/imports.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "import torch, torchvision": "import torch, torchvision",
    "import backbone_viz": "import backbone_viz",
    "backbone_viz: analyze, load_backbone": "from backbone_viz import analyze, load_backbone",
    "backbone_viz: everything": "import backbone_viz as bv; [getattr(bv, n) for n in bv.__all__]",
}
_PROBE = (
    "import resource, time; start = time.perf_counter(); {code}; "
    "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def _measure(code: str) -> tuple[float, float]:
    """Seconds and peak MB of one fresh process running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"best of {args.repeats} fresh processes")
    print(f"{'what':<40}{'seconds':>9}{'peak MB':>10}")
    results = {}
    for label, code in ROWS.items():
        runs = [_measure(code) for _ in range(args.repeats)]
        results[label] = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"{label:<40}{results[label][0]:>9.2f}{results[label][1]:>10.0f}", flush=True)
    helps = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "backbone_viz", "--help"], cwd=ROOT, capture_output=True, check=True)
        helps.append(time.perf_counter() - start)
    print(f"{'python -m backbone_viz --help (whole)':<40}{min(helps):>9.2f}")
    base, core = results["import torch, torchvision"], results["backbone_viz: analyze, load_backbone"]
    print(f"\ncore / torch+torchvision: {core[0] / base[0]:.2f}x the time, {core[1] / base[1]:.2f}x the memory")


if __name__ == "__main__":
    main()
