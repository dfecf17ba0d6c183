"""What a box from Grad-CAM costs next to the analysis it comes from, side by side.

For each sample photo, with the bundled EfficientNet-Lite0 (or ``--backbone``):
  * analyze: ``bv.analyze`` (one forward, one gradient call, Grad-CAM at every layer);
  * box: ``bv.box_from_cam`` on that result (upsample the last stage's Grad-CAM, threshold at 20 %,
    largest connected region, its box);
  * by stage: ``bv.boxes_by_stage`` (one box per stage).
Prints the medians in milliseconds, the box and the class it explains.

    python bench/cam_box.py [--backbone efficientnet_lite0] [--weights pretrained] [--repeats 7]
                            [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import backbone_viz as bv  # noqa: E402

SAMPLES = ("cat", "flower", "astronaut", "china", "coffee", "rocket", "grace_hopper")


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", default="pretrained")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app runs one per session)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bb = bv.load_backbone(args.backbone, args.weights, device=args.device)
    print(
        f"{args.backbone} ({args.weights}) on {args.device}, {args.threads} thread(s), median of {args.repeats}"
    )
    print(
        f"{'picture':<13} {'analyze ms':>10} {'box ms':>7} {'by stage ms':>11}  box (x0, y0, x1, y1)  class"
    )
    for name in SAMPLES:
        image = bv.load_image(ROOT / "assets" / "samples" / f"{name}.jpg")
        res = bv.analyze(bb, image)
        t_analyze = _median_ms(lambda image=image: bv.analyze(bb, image), args.repeats)
        t_box = _median_ms(lambda res=res: bv.box_from_cam(res), args.repeats)
        t_stages = _median_ms(lambda res=res: bv.boxes_by_stage(res), args.repeats)
        box = bv.box_from_cam(res)
        print(
            f"{name:<13} {t_analyze:>10.1f} {t_box:>7.2f} {t_stages:>11.2f}  {str(box.box):<20}  {res.target.label}"
        )


if __name__ == "__main__":
    main()
