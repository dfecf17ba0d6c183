"""Pixel attributions: their cost against one plain analysis, Integrated Gradients' step count, and the
sanity check's time and correlations, all measured in this one run.

  * times: each method of ``bv.attribute`` (defaults) on EfficientNet-Lite0 (pretrained) and ResNet-50
    (untrained: same arithmetic), beside one ``bv.analyze`` of the same picture, medians interleaved;
  * Integrated Gradients: captum's convergence delta as a share of the attributions' sum for 32, 64,
    128 and 256 steps on every sample picture with Lite0 pretrained, and the smallest step count that
    keeps it under 10% on all of them (``attributions.IG_STEPS`` should be that count);
  * the sanity check (``bv.sanity_check``) of each method on the cat with Lite0 pretrained: its total
    time and the rank correlation with the trained map at every step; with ``--write``, on every sample
    picture too, stored in ``assets/attributions/sanity_lite0.json`` for the web page's summary.

Runs with one torch thread, as the app runs each session.

    python bench/attributions.py [--repeats 3] [--skip-ig] [--skip-sanity] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.explain.attributions import IG_STEPS, METHODS  # noqa: E402
from backbone_viz.files.samples import list_samples  # noqa: E402
from bench.analysis import _median_times  # noqa: E402
from webui.views.attribution_view import MEASURED  # noqa: E402

IG_CANDIDATES = (32, 64, 128, 256)
IG_LIMIT = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ig", action="store_true", help="leave out the step-count measurement")
    parser.add_argument("--skip-sanity", action="store_true", help="leave out the sanity checks")
    parser.add_argument("--write", action="store_true", help=f"sanity checks of every sample into {MEASURED}")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="captum")
    torch.set_num_threads(1)
    cat = bv.load_image(Path(__file__).resolve().parents[1] / "assets" / "samples" / "cat.jpg")
    lite0 = bv.load_backbone("efficientnet_lite0", device="cpu")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread, device cpu; medians of {args.repeats} runs"
    )
    times(lite0, bv.load_backbone("resnet50", "untrained", device="cpu"), cat, args.repeats)
    if not args.skip_ig:
        ig_steps(lite0)
    if not args.skip_sanity:
        sanity(lite0, cat)
    if args.write:
        write_measured(lite0)


def times(lite0: bv.Backbone, resnet: bv.Backbone, image, repeats: int) -> None:
    """Each method's median time and its ratio to one plain analysis, per backbone."""
    print("\nTime of each method (defaults) against one plain analysis (bv.analyze) of the cat")
    header = f"{'method':<24}" + "".join(
        f"{bb.spec.title + ' (' + bb.weights + ')':>36}" for bb in (lite0, resnet)
    )
    print(header)
    print("-" * len(header))
    columns = []
    for bb in (lite0, resnet):
        fns = {"analysis": lambda bb=bb: bv.analyze(bb, image)}
        fns.update({m: lambda bb=bb, m=m: bv.attribute(bb, image, m) for m in METHODS})
        columns.append(_median_times(fns, repeats))
    for name in ["analysis", *METHODS]:
        cells = "".join(f"{c[name] * 1e3:>26.0f} ms {c[name] / c['analysis']:>5.1f}x" for c in columns)
        print(f"{name:<24}{cells}", flush=True)


def ig_steps(lite0: bv.Backbone) -> None:
    """|delta| / |sum of attributions| per sample and step count; the smallest count under the limit."""
    print(f"\nIntegrated Gradients on {lite0.spec.title} pretrained: |delta| / |sum of attributions|, time")
    print(f"{'picture':<16}{'class':<22}" + "".join(f"{s:>10} steps" for s in IG_CANDIDATES))
    worst = dict.fromkeys(IG_CANDIDATES, 0.0)
    for s in list_samples():
        image = bv.load_image(s.path)
        cells, label = [], ""
        for steps in IG_CANDIDATES:
            start = time.perf_counter()
            res = bv.attribute(lite0, image, "integrated_gradients", steps=steps)
            seconds = time.perf_counter() - start
            worst[steps] = max(worst[steps], res.relative_delta)
            cells.append(f"{res.relative_delta:>8.1%} {seconds:>4.1f}s")
            label = res.target.label
        print(f"{s.name:<16}{label[:20]:<22}" + "".join(f"{c:>16}" for c in cells), flush=True)
    print(f"{'worst':<38}" + "".join(f"{worst[s]:>10.1%}      " for s in IG_CANDIDATES))
    good = [s for s in IG_CANDIDATES if worst[s] < IG_LIMIT]
    chosen = good[0] if good else None
    print(f"smallest step count under {IG_LIMIT:.0%} on every picture: {chosen} (IG_STEPS = {IG_STEPS})")


def sanity(lite0: bv.Backbone, image) -> None:
    """Each method's sanity check on the cat: total time and the correlation at every step."""
    print(
        f"\nSanity check on {lite0.spec.title} pretrained, the cat: Spearman correlation with the trained map"
    )
    checks = {}
    for method in METHODS:
        start = time.perf_counter()
        checks[method] = bv.sanity_check(lite0, image, method)
        checks[method] = (checks[method], time.perf_counter() - start)
    labels = [s.label for s in next(iter(checks.values()))[0].steps]
    print(f"{'method':<24}{'total':>8}" + "".join(f"{label:>10}" for label in labels[1:]))
    for method, (check, seconds) in checks.items():
        cells = "".join(f"{s.correlation:>10.2f}" for s in check.steps[1:])
        print(f"{method:<24}{seconds:>7.1f}s{cells}", flush=True)


def write_measured(lite0: bv.Backbone) -> None:
    """Every method's sanity check on every sample picture, correlations stored for the web page."""
    pictures: dict[str, dict[str, list[float]]] = {}
    labels: list[str] = []
    for s in list_samples():
        image = bv.load_image(s.path)
        pictures[s.name] = {}
        for method in METHODS:
            check = bv.sanity_check(lite0, image, method)
            labels = [step.label for step in check.steps]
            pictures[s.name][method] = [round(step.correlation, 4) for step in check.steps]
        print(s.name, {m: v[1] for m, v in pictures[s.name].items()}, flush=True)
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    data = {"backbone": lite0.spec.name, "weights": lite0.weights, "steps": labels, "pictures": pictures}
    MEASURED.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {MEASURED}")


if __name__ == "__main__":
    main()
