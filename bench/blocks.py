"""Inside a block: what opening a block and a knock-out cost beside a plain analysis, and the ablation.

For resnet50 (untrained weights: same architecture, same arithmetic) and EfficientNet-Lite0 (its bundled
weights), on the cat sample, timed interleaved in one run (a, b, c, a, b, c, ...) so that drift in the
machine's load hits each alike:
  * analyze: a plain ``bv.analyze`` (every layer's maps and Grad-CAM);
  * inside_block: ``bv.inside_block`` of one block with a shortcut (one no-grad pass cut at its parts);
  * knock-out: ``bv.analyze(..., knockout=[that block])``, a full analysis through the edited graph.
Prints medians and the ratio knock-out / analyze (target <= 1.2).

Then ``bv.block_ablation`` on Lite0 with the cat: its median time (target under 10 s) and how many of the
removable blocks keep a cat class on top (the cat classes of tests/conftest.py).

    python bench/blocks.py [--repeats 5] [--backbones resnet50 efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import backbone_viz as bv  # noqa: E402
from bench.analysis import _median_times  # noqa: E402
from tests.conftest import CATS  # noqa: E402

#: The block each backbone opens and knocks out: one with a shortcut, in the middle of the network.
BLOCKS = {"resnet50": "layer3.1", "efficientnet_lite0": "blocks.4.1"}
ABLATION_TARGET_S = 10.0
KNOCKOUT_TARGET = 1.2


def bench_one(name: str, image, repeats: int) -> dict[str, float]:
    """Medians, in seconds, of a plain analysis, ``inside_block`` and one knock-out analysis."""
    torch.manual_seed(0)
    weights = "pretrained" if bv.get_spec(name).bundled else "untrained"
    bb = bv.load_backbone(name, weights=weights, device="cpu")
    block = BLOCKS[name]
    return _median_times(
        {
            "analyze": lambda: bv.analyze(bb, image),
            "inside_block": lambda: bv.inside_block(bb, image, block),
            "knockout": lambda: bv.analyze(bb, image, knockout=[block]),
        },
        repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbones", nargs="*", default=list(BLOCKS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ablation-repeats", type=int, default=3)
    args = parser.parse_args()
    image = bv.load_image(ROOT / "assets" / "samples" / "cat.jpg")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; medians of {args.repeats} "
          "interleaved runs")  # fmt: skip
    header = f"{'backbone':<20}{'block':>12}{'analyze':>10}{'inside':>10}{'knock-out':>11}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name in args.backbones:
        m = bench_one(name, image, args.repeats)
        ratio = m["knockout"] / m["analyze"]
        verdict = "ok" if ratio <= KNOCKOUT_TARGET else f"over {KNOCKOUT_TARGET}"
        print(
            f"{name:<20}{BLOCKS[name]:>12}{m['analyze'] * 1e3:>8.0f}ms{m['inside_block'] * 1e3:>8.0f}ms"
            f"{m['knockout'] * 1e3:>9.0f}ms{ratio:>8.2f}  {verdict}",
            flush=True,
        )

    lite0 = bv.load_backbone("efficientnet_lite0", device="cpu")
    before = bv.analyze(lite0, image).predictions[0]
    times, rows = [], ()
    for _ in range(args.ablation_repeats):
        start = time.perf_counter()
        rows = bv.block_ablation(lite0, image)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    cats = [r for r in rows if r.top1.label in CATS]
    same = [r for r in rows if r.top1.index == before.index]
    print()
    print(
        f"block_ablation, efficientnet_lite0 (pretrained), cat: {len(rows)} removable blocks in {seconds:.2f} s "
        f"(median of {args.ablation_repeats}; target < {ABLATION_TARGET_S:.0f} s: "
        f"{'ok' if seconds < ABLATION_TARGET_S else 'over'})"
    )
    print(f"  top-1 with every block: {before.label} ({before.probability:.1%})")
    print(
        f"  a cat class stays on top after {len(cats)} of {len(rows)} removals; the top-1 itself after {len(same)}"
    )
    for r in rows:
        mark = "" if r.top1.index == before.index else "  <- changed"
        print(
            f"  without {r.block.label:<11} top-1 {r.top1.label:<14} {r.top1.probability:6.1%}   "
            f"p({before.label}) {r.target_probability:6.1%}{mark}"
        )


if __name__ == "__main__":
    main()
