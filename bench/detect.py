"""How long a detector from a few boxes takes: the backbone's features, the training and one detection.

On the 4 cat composites of tests/test_detect.py (256 px, so Lite0's crop is 224 px, with their true boxes),
``bv.fit_detector`` (default stage, 300 steps) and ``bv.detect`` are timed. Prints the medians of
``--repeats`` calls, from the timings the detector and detections record:

  * features: the 4 ``no_grad`` forward passes (each picture with its mirror image, a batch of 2);
  * training: the head's Adam steps on the 8 maps;
  * detect: one picture's forward pass, then the head, the peak finding and the boxes.

Target: training <= 3 s on 2 CPU cores. Run with ``--threads 1`` for what one session of the web app gets.

    python bench/detect.py [--backbone efficientnet_lite0] [--repeats 5] [--steps 300] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.heads.cam_box import mask_box  # noqa: E402
from tests.composites import composites  # noqa: E402
from tests.test_segment import crop_mask  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    bb = bv.load_backbone(args.backbone, device="cpu")
    cats = [c for c in composites(bb.preprocessing.resize, count=8) if c.source == "cat"]
    examples = [(c.image, [mask_box(crop_mask(bb, c.mask))]) for c in cats]
    bv.fit_detector(bb, examples[:1], steps=5)  # warm-up
    fits = [bv.fit_detector(bb, examples, steps=args.steps) for _ in range(args.repeats)]
    found = [bv.detect(bb, fits[0], cats[0].image) for _ in range(args.repeats + 1)][1:]
    print(
        f"{bb.spec.title}, crop {bb.preprocessing.crop} px, {len(examples)} pictures + mirrors, stage "
        f"{fits[0].stage} ({fits[0].layer}, stride {fits[0].stride}), {args.steps} steps, "
        f"{torch.get_num_threads()} torch thread(s), median of {args.repeats} runs (ms)"
    )
    print(f"{'features':>10} {'training':>10} {'detect fwd':>11} {'detect head':>12}")
    print(
        f"{statistics.median(f.features_ms for f in fits):10.1f} {statistics.median(f.fit_ms for f in fits):10.1f} "
        f"{statistics.median(d.forward_ms for d in found):11.1f} {statistics.median(d.detect_ms for d in found):12.1f}"
    )


if __name__ == "__main__":
    main()
