"""How long paint to segment takes: the backbone's forward pass, the fit and the prediction, side by side.

On a composite of the tests (a cat region pasted on china, 256 px, so Lite0's crop is 224 px) with about
250 painted pixels (a stroke per label and 7 corrections, painted as tests/test_segment.py paints them),
``bv.fit_segmenter`` is timed with every stage's features, the first stage alone and the last stage
alone. Each row prints the medians of ``--repeats`` calls, from the timings the segmentation records:

  * forward: the one ``no_grad`` pass up to the last chosen stage;
  * fit: sampling the painted pixels' features and the L-BFGS logistic regression;
  * predict: one 1x1 convolution per stage, upsampled and summed, softmax and argmax over the crop.

Target: fit + predict <= 100 ms at 224 px on a CPU. Run with ``--threads 1`` for what one session of
the web app gets (the app runs each session's work on one thread).

    python bench/segment.py [--backbone efficientnet_lite0] [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from tests.composites import composites  # noqa: E402
from tests.test_segment import LABELS, crop_mask, paint_and_correct  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    bb = bv.load_backbone(args.backbone, device="cpu")
    picture = composites(bb.preprocessing.resize, count=1)[0]
    truth = crop_mask(bb, picture.mask)
    _, strokes = paint_and_correct(bb, picture.image, truth)
    stages = bb.spec.stages
    print(
        f"{bb.spec.title}, crop {bb.preprocessing.crop} px, {int((strokes >= 0).sum())} painted pixels, "
        f"{torch.get_num_threads()} torch thread(s), median of {args.repeats} runs (ms)"
    )
    print(f"{'features':<28} {'forward':>8} {'fit':>8} {'predict':>8} {'fit+predict':>12}")
    rows = {
        f"all {len(stages)} stages": None,
        f"first stage ({stages[0].last.name})": [stages[0].index],
        f"last stage ({stages[-1].last.name})": [stages[-1].index],
    }
    for name, levels in rows.items():
        bv.fit_segmenter(bb, picture.image, strokes, LABELS, levels=levels)  # warm-up
        runs = [bv.fit_segmenter(bb, picture.image, strokes, LABELS, levels=levels) for _ in range(args.repeats)]
        forward = statistics.median(r.forward_ms for r in runs)
        fit = statistics.median(r.fit_ms for r in runs)
        predict = statistics.median(r.predict_ms for r in runs)
        total = statistics.median(r.fit_ms + r.predict_ms for r in runs)
        print(f"{name:<28} {forward:8.1f} {fit:8.1f} {predict:8.1f} {total:12.1f}")


if __name__ == "__main__":
    main()
