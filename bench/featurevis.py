"""Feature visualization on the CPU: seconds per channel, a stage's row batched or not, and honesty.

For EfficientNet-Lite0 pretrained (bundled), at 128 px and the default steps, in this one run:
  * seconds for one channel of each stage's last layer (the atlas's layers), at each of ``--threads``
    torch thread counts (default 1, the app's setting; on a loaded 2-core machine 2 threads was 30x
    slower than 1 for this small-batch work: the threads spin waiting for each other);
  * a row of 8 channels of one stage: one batch of 8 against 8 single runs (seconds per channel, ratio);
  * per stage, the channel's mean activation on its visualization over its largest mean activation on
    the sample gallery (must be above 1: the visualization drives the channel harder than any photo).
Target: one channel within 10 s on this machine's CPU.

    python bench/featurevis.py [--steps 128] [--size 128] [--row-stage 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.probes import featurevis  # noqa: E402
from backbone_viz.probes.atlas import gallery_means  # noqa: E402


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=featurevis.DEFAULT_STEPS)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--row-stage", type=int, default=3, help="the stage whose row of 8 is timed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts to time")
    args = parser.parse_args()
    bb = bv.load_backbone("efficientnet_lite0", device="cpu")
    print(
        f"EfficientNet-Lite0 pretrained, {args.size} px, {args.steps} steps; load average {os.getloadavg()[0]:.1f}"
    )
    bv.visualize_channel(bb, "bn1", 0, size=args.size, steps=2)  # warm-up: the cuts are made once

    timed = "".join(f"{f'{t} thread(s) s':>15}" for t in args.threads)
    print(f"\n{'stage':>5} {'layer':>11} {'channel':>7}{timed} {'vis':>7} {'gallery max':>11} {'ratio':>6}")
    for stage in bb.spec.stages:
        layer = stage.last
        means = gallery_means(bb, layer)
        channel = int(np.argmax(means.mean(axis=0)))
        seconds = {}
        for threads in args.threads:
            torch.set_num_threads(threads)
            seconds[threads], v = _timed(
                lambda layer=layer, channel=channel: bv.visualize_channel(
                    bb, layer, channel, size=args.size, steps=args.steps
                )
            )
        best = float(means[:, channel].max())
        print(
            f"{stage.index:>5} {layer.label:>11} {channel:>7}{''.join(f'{seconds[t]:>15.2f}' for t in args.threads)} "
            f"{v.activation:>7.2f} {best:>11.2f} {v.activation / best:>6.2f}"
        )

    torch.set_num_threads(args.threads[0])
    layer = bb.spec.stages[args.row_stage - 1].last
    channels = [int(c) for c in np.argsort(-gallery_means(bb, layer).mean(axis=0))[:8]]
    serial, _ = _timed(
        lambda: [bv.visualize_channel(bb, layer, c, size=args.size, steps=args.steps) for c in channels]
    )
    featurevis.CPU_BATCH = 8
    batched, _ = _timed(lambda: bv.visualize_channels(bb, layer, channels, size=args.size, steps=args.steps))
    print(
        f"\nRow of 8 channels of stage {args.row_stage} ({layer.label}), {args.threads[0]} thread(s): one at a time "
        f"{serial / 8:.2f} s/channel, one batch of 8 {batched / 8:.2f} s/channel, batch/serial {batched / serial:.2f}"
    )


if __name__ == "__main__":
    main()
