"""How long one full analysis takes, against its floor and against captum, side by side.

For each backbone (untrained weights are fine for timing: same architecture, same arithmetic):
  * analysis: ``bv.analyze`` on a sample photo (one forward, one ``torch.autograd.grad`` to every layer,
    Grad-CAM and the copy of every activation to numpy);
  * floor: one plain forward pass plus one ``torch.autograd.grad`` to the first listed layer (the least
    any method that explains every layer must do);
  * captum: ``LayerGradCam(model, layer).attribute(...)`` once per listed layer, the way one would
    get the same Grad-CAMs without this engine;
  * activations: ``bv.layer_activations`` (one forward pass without a gradient: what the web app's Home
    and Feature build-up need; Grad-CAM is added when a page shows it).
Prints medians and the ratios analysis/floor (target <= 1.3 on resnet50), captum/analysis (the
speed-up, target >= 6 on resnet50) and activations/analysis, all measured in this one run.

    python bench/analysis.py [--backbones resnet50 vgg16 ...] [--repeats 5] [--captum-repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from captum.attr import LayerGradCam

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.graph import LOGITS  # noqa: E402


def _median_times(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each function, run interleaved (a, b, a, b, ...) so that drift in the
    machine's load (2 shared cores) hits every function alike."""
    for fn in fns.values():
        fn()  # warm-up: first calls allocate and pick kernels
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="*", default=[s.name for s in bv.list_backbones()])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--captum-repeats", type=int, default=2)
    args = parser.parse_args()
    image = bv.load_image(Path(__file__).resolve().parents[1] / "assets" / "samples" / "cat.jpg")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu; medians of "
          f"{args.repeats} runs (captum: {args.captum_repeats})")
    header = (
        f"{'backbone':<20}{'layers':>7}{'analysis':>11}{'floor':>9}{'ratio':>7}{'captum':>10}{'speed-up':>10}"
        f"{'activations':>13}{'of analysis':>13}"
    )
    print(header)
    print("-" * len(header))
    for name in args.backbones:
        row = bench_one(name, image, args.repeats, args.captum_repeats)
        print(
            f"{name:<20}{row['layers']:>7}{row['analysis'] * 1e3:>9.0f}ms{row['floor'] * 1e3:>7.0f}ms"
            f"{row['analysis'] / row['floor']:>7.2f}{row['captum'] * 1e3:>8.0f}ms"
            f"{row['captum'] / row['analysis']:>9.1f}x{row['activations'] * 1e3:>11.0f}ms"
            f"{row['activations'] / row['analysis']:>13.2f}",
            flush=True,
        )


def bench_one(name: str, image, repeats: int, captum_repeats: int) -> dict[str, float]:
    """Times one backbone's analysis, floor, captum and activations alone; returns medians in seconds."""
    torch.manual_seed(0)
    bb = bv.load_backbone(name, weights="untrained", device="cpu")
    first = bb.spec.layers[0].name
    x = bb.preprocess(image)
    target = int(bv.analyze(bb, image).target.index)

    def floor() -> None:
        xx = x.detach().requires_grad_(True)
        out = bb.extract(xx, [first, LOGITS])
        torch.autograd.grad(out[LOGITS][0, target], [out[first]])

    def captum() -> None:
        for layer in bb.spec.layers:
            LayerGradCam(bb.model, bb.model.get_submodule(layer.name)).attribute(
                x, target=target, relu_attributions=True
            )

    medians = _median_times(
        {
            "analysis": lambda: bv.analyze(bb, image),
            "floor": floor,
            "activations": lambda: bv.layer_activations(bb, image),
        },
        repeats,
    )
    medians["captum"] = _median_times({"captum": captum}, captum_repeats)["captum"]
    medians["layers"] = len(bb.spec.layers)
    return medians


if __name__ == "__main__":
    main()
