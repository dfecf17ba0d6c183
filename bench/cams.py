"""The CAM family from one pass against one analysis and against pytorch-grad-cam, and Score-CAM against its ScoreCAM.

For each backbone (untrained weights are fine for timing, except EfficientNet-Lite0 whose real ones ship):
  * family: ``bv.cam_family`` with all six one-pass methods (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM,
    HiResCAM, EigenCAM) at every listed layer: one forward pass, one ``torch.autograd.grad``;
  * analysis: one ``bv.analyze`` (Grad-CAM at every layer and every activation copied to numpy); the
    ratio family/analysis has a target of <= 1.3;
  * pytorch-grad-cam: the same six methods the way its users get them, one ``Method(model, [layer])(x,
    targets)`` per method and per layer (one forward and one backward pass each, on a deep copy of the
    model); target: family >= 30x faster on ResNet-50. EigenCAM is left out of both sides at a layer
    where its SVD would ask numpy for a U of more than 1 GB ((h*w)^2 floats: 112 x 112 places and more);
    the line says how many calls that skipped.
  * Score-CAM: ``bv.score_cam(..., variant="pytorch_grad_cam")`` (the same map) against pytorch-grad-cam's
    ``ScoreCAM``, all channels of one layer, each in its default batches (4 here, 16 there: on a CPU
    smaller batches are faster per picture), and ours in batches of 16 too; target >= 3x.

    python bench/cams.py [--backbone resnet50 efficientnet_lite0] [--repeats 5] [--threads 1]
                         [--score-layer NAME]

Prints medians of interleaved runs (family, analysis); pytorch-grad-cam and Score-CAM run once each
(they take seconds to minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backbone_viz as bv  # noqa: E402
from backbone_viz.files.images import load_image  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "cat.jpg"
#: Score-CAM's layer by default: the deepest listed layer with at most this many channels (one forward
#: pass per channel on both sides: minutes for a 2048-channel layer on 2 cores).
SCORE_CHANNELS = 128
#: Largest U (in bytes) pytorch-grad-cam's EigenCAM may ask numpy for (see the module docstring).
EIGEN_U_BYTES = 1 << 30


def _median_times(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time of each function, interleaved so that load drift on shared cores hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _theirs_layer_by_layer(bb: bv.Backbone, image, target: int) -> tuple[float, int, int]:
    """Seconds for pytorch-grad-cam's six methods, one call per method and layer; calls made, skipped."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classes = [pgc.GradCAM, pgc.GradCAMPlusPlus, pgc.XGradCAM, pgc.LayerCAM, pgc.HiResCAM, pgc.EigenCAM]
    model = copy.deepcopy(bb.model)
    for p in model.parameters():
        p.requires_grad_(True)  # its backward needs them; the copy only
    modules = dict(model.named_modules())
    x = bb.preprocess(image)
    targets = [ClassifierOutputTarget(target)]
    crop = bb.preprocessing.crop
    calls = skipped = 0
    start = time.perf_counter()
    for cls in classes:
        for layer in bb.spec.layers:
            places = (crop // layer.stride) ** 2
            if cls is pgc.EigenCAM and places * places * 4 > EIGEN_U_BYTES:
                skipped += 1
                continue
            with cls(model, [modules[layer.name]]) as cam:
                cam(x, targets)
            calls += 1
    return time.perf_counter() - start, calls, skipped


def _family_without_big_eigencam(bb: bv.Backbone, image) -> None:
    """The family as compared with pytorch-grad-cam: EigenCAM left out at the layers skipped there too."""
    crop = bb.preprocessing.crop
    small = [lay.name for lay in bb.spec.layers if ((crop // lay.stride) ** 2) ** 2 * 4 <= EIGEN_U_BYTES]
    bv.cam_family(bb, image, methods=["gradcam", "gradcampp", "xgradcam", "layercam", "hirescam"])
    bv.cam_family(bb, image, methods=["eigencam"], layers=small)


def _five(bb: bv.Backbone, image, repeats: int) -> float:
    """Median seconds of the family without EigenCAM (whose SVDs are most of the family's extra cost)."""
    methods = ["gradcam", "gradcampp", "xgradcam", "layercam", "hirescam"]
    return _median_times({"five": lambda: bv.cam_family(bb, image, methods=methods)}, repeats)["five"]


def _score_layer(bb: bv.Backbone, name: str | None) -> bv.LayerSpec:
    if name is not None:
        return bb.spec.layer(name)
    return [lay for lay in bb.spec.layers if lay.channels <= SCORE_CHANNELS][-1]


def _theirs_score_cam(bb: bv.Backbone, image, layer: str, target: int) -> float:
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = copy.deepcopy(bb.model)
    x = bb.preprocess(image)
    start = time.perf_counter()
    with pgc.ScoreCAM(model, [dict(model.named_modules())[layer]]) as cam:
        cam.batch_size = 16
        with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
            cam(x, [ClassifierOutputTarget(target)])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", nargs="+", default=["resnet50"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--score-layer", default=None, help="layer for Score-CAM (default: see SCORE_CHANNELS)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image = load_image(SAMPLE)
    print(f"torch threads: {torch.get_num_threads()}, repeats: {args.repeats}, picture: {SAMPLE.name}")
    for name in args.backbone:
        weights = "pretrained" if name == "efficientnet_lite0" else "untrained"
        bb = bv.load_backbone(name, weights=weights, device="cpu")
        n = len(bb.spec.layers)
        print(f"\n{bb.spec.title} ({weights}), {n} listed layers")
        t = _median_times(
            {
                "family": lambda bb=bb: bv.cam_family(bb, image),
                "analysis": lambda bb=bb: bv.analyze(bb, image),
                "family_cmp": lambda bb=bb: _family_without_big_eigencam(bb, image),
            },
            args.repeats,
        )
        fam = bv.cam_family(bb, image)
        per_method = ", ".join(f"{m} {ms:.0f}" for m, ms in fam.method_ms.items())
        print(f"  one pass, 6 methods x {n} layers (cam_family): {t['family'] * 1e3:8.0f} ms")
        print(f"    of which the pass {fam.pass_ms:.0f} ms; methods (ms): {per_method}")
        print(f"  one analyze (Grad-CAM x {n} layers):           {t['analysis'] * 1e3:8.0f} ms")
        print(
            f"  family / analysis:                            {t['family'] / t['analysis']:8.2f}  (target <= 1.3)"
        )
        print(
            f"  five gradient methods alone / analysis:       {_five(bb, image, args.repeats) / t['analysis']:8.2f}"
        )
        theirs, calls, skipped = _theirs_layer_by_layer(bb, image, fam.target.index)
        note = f", EigenCAM skipped at {skipped} layers on both sides" if skipped else ""
        family = t["family_cmp"] if skipped else t["family"]
        print(f"  pytorch-grad-cam, {calls} calls (method x layer){note}: {theirs * 1e3:8.0f} ms")
        print(
            f"  pytorch-grad-cam / family:                    {theirs / family:8.1f}x  (target >= 30 on ResNet-50)"
        )
        layer = _score_layer(bb, args.score_layer)
        cost = bv.score_cam_cost(bb, layer.name)
        start = time.perf_counter()
        ours = bv.score_cam(bb, image, fam.target.index, layer=layer.name, variant="pytorch_grad_cam")
        mine = time.perf_counter() - start
        start = time.perf_counter()
        bv.score_cam(bb, image, fam.target.index, layer=layer.name, variant="pytorch_grad_cam", batch_size=16)
        mine16 = time.perf_counter() - start
        theirs_score = _theirs_score_cam(bb, image, layer.name, fam.target.index)
        print(f"  Score-CAM at {layer.label}, all {layer.channels} channels:")
        print(f"    stated first (score_cam_cost): {cost.forward_passes} passes, about {cost.seconds:.1f} s")
        print(
            f"    score_cam: {mine:.1f} s ({ours.forward_passes} passes, batches of 4), {mine16:.1f} s in batches"
            f" of 16; pytorch-grad-cam ScoreCAM (batches of 16): {theirs_score:.1f} s"
        )
        print(f"    pytorch-grad-cam / ours: {theirs_score / mine:.2f}x  (target >= 3)")


if __name__ == "__main__":
    main()
