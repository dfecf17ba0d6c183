"""How long one full analysis takes, against its floor and against captum, side by side.

For each backbone (untrained weights are fine for timing: same architecture, same arithmetic):
  * analysis: ``bv.analyze`` on a sample photo (one forward, one ``torch.autograd.grad`` to every layer,
    Grad-CAM and the copy of every activation to numpy);
  * floor: one plain forward pass plus one ``torch.autograd.grad`` to the first listed layer (the least
    any method that explains every layer must do); on a GPU, plus one copy of every listed layer's map
    to the host (the analysis returns them there: a floor without it would ask the impossible);
  * captum: ``LayerGradCam(model, layer).attribute(...)`` once per listed layer, the way one would
    get the same Grad-CAMs without this engine;
  * activations: ``bv.layer_activations`` (one forward pass without a gradient: what the web app's Home
    and Feature build-up need; Grad-CAM is added when a page shows it).
Prints medians and the ratios analysis/floor (target <= 1.3 on resnet50), captum/analysis (the
speed-up, target >= 6 on resnet50) and activations/analysis, all measured in this one run.

    python bench/analysis.py [--backbones resnet50 vgg16 ...] [--repeats 5] [--captum-repeats 2]
                             [--device cpu|cuda]

On a GPU every timed call ends with ``torch.cuda.synchronize()``: the GPU's work is counted, not only
its queueing.
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
from backbone_viz.core.graph import LOGITS  # noqa: E402


def _median_times(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time of each function, run interleaved (a, b, a, b, ...) so that drift in the
    machine's load (2 shared cores) hits every function alike."""

    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in fns.values():
        fn()  # warm-up: first calls allocate and pick kernels
    wait()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            wait()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="*", default=[s.name for s in bv.list_backbones()])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--captum-repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument(
        "--profile", metavar="BACKBONE", default=None, help="instead: where one analysis spends its time"
    )
    args = parser.parse_args()
    device = bv.resolve_device(args.device)
    image = bv.load_image(Path(__file__).resolve().parents[1] / "assets" / "samples" / "cat.jpg")
    if args.profile:
        profile(args.profile, image, device)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {bv.describe_device(device)}; "
          f"medians of {args.repeats} runs (captum: {args.captum_repeats})")
    header = (
        f"{'backbone':<20}{'layers':>7}{'analysis':>11}{'floor':>9}{'ratio':>7}{'captum':>10}{'speed-up':>10}"
        f"{'activations':>13}{'of analysis':>13}"
    )
    print(header)
    print("-" * len(header))
    for name in args.backbones:
        row = bench_one(name, image, args.repeats, args.captum_repeats, device)
        print(
            f"{name:<20}{row['layers']:>7}{row['analysis'] * 1e3:>9.0f}ms{row['floor'] * 1e3:>7.0f}ms"
            f"{row['analysis'] / row['floor']:>7.2f}{row['captum'] * 1e3:>8.0f}ms"
            f"{row['captum'] / row['analysis']:>9.1f}x{row['activations'] * 1e3:>11.0f}ms"
            f"{row['activations'] / row['analysis']:>13.2f}",
            flush=True,
        )


def bench_one(name: str, image, repeats: int, captum_repeats: int, device: torch.device) -> dict[str, float]:
    """Times one backbone's analysis, floor, captum and activations alone; returns medians in seconds."""
    torch.manual_seed(0)
    bb = bv.load_backbone(name, weights="untrained", device=device)
    layers = [layer.name for layer in bb.spec.layers]
    first = layers[0]
    x = bb.preprocess(image)
    target = int(bv.analyze(bb, image).target.index)

    def floor() -> None:
        xx = x.detach().requires_grad_(True)
        out = bb.extract(xx, [*layers, LOGITS])
        torch.autograd.grad(out[LOGITS][0, target], [out[first]])
        if device.type != "cpu":  # on the CPU the analysis returns its maps without a copy
            torch.cat([out[name].detach().reshape(-1) for name in layers]).cpu()

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
        device,
    )
    medians["captum"] = _median_times({"captum": captum}, captum_repeats, device)["captum"]
    medians["layers"] = len(bb.spec.layers)
    return medians


def profile(name: str, image, device: torch.device) -> None:
    """Prints torch's profile of 5 analyses after a warm-up: the operators that took the most time on
    the device (on a GPU, copies to the host and synchronizations show up as ``aten::_to_copy`` and
    ``cudaStreamSynchronize`` / ``cudaMemcpyAsync``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    bb = bv.load_backbone(name, weights="untrained", device=device)
    bv.analyze(bb, image)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(5):
            bv.analyze(bb, image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{name} on {bv.describe_device(device)}: 5 analyses, sorted by {key}")
    print(prof.key_averages().table(sort_by=key, row_limit=20))
    if device.type == "cuda":
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
