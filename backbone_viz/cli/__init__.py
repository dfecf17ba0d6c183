"""The command line: ``python -m backbone_viz analyze IMAGE [--detector NAME]``, ``... atlas``, ``... box``, ``... segment``, ``... detect``, ``... weights`` and ``... serve``.

For self-study without the web app: ``analyze`` writes a one-page figure (the crop the model saw, the
top-5, one activation map per stage from low to high with its Grad-CAM beside it) and ``--json``
prints the predictions and the layer table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from backbone_viz.cli.progress import progress_printer
from backbone_viz.core.device import DEVICE_HELP
from backbone_viz.errors import BackboneVizError

if TYPE_CHECKING:  # torch stays out of ``--help``
    from PIL import Image

    from backbone_viz.dense.models import DenseModel, DenseResult


def _analyze(args: argparse.Namespace) -> int:
    if args.detector:
        return _analyze_dense(args)
    from backbone_viz.core.backbones import load_backbone
    from backbone_viz.explain.analysis import analyze
    from backbone_viz.files.images import load_image
    from backbone_viz.render import encode, report_figure

    image = load_image(args.image)
    backbone = load_backbone(
        args.backbone, weights=args.weights, device=args.device, progress=progress_printer("weights")
    )
    target: int | str | None = args.target
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    result = analyze(backbone, image, target=target)
    if args.json:
        table = {
            "backbone": result.backbone,
            "weights": result.weights,
            "target": asdict(result.target),
            "predictions": [asdict(p) for p in result.predictions],
            "layers": [
                {
                    **asdict(layer),
                    "shape": list(result.activations[layer.name].shape),
                    "gradcam_max": float(result.gradcam[layer.name].max()),
                }
                for layer in result.layers
            ],
        }
        print(json.dumps(table, indent=2))
    if args.out:
        Path(args.out).write_bytes(encode(report_figure(result)))
        print(f"Report written to {args.out}", file=sys.stderr if args.json else sys.stdout)
    if not args.json:
        for p in result.predictions:
            print(f"{p.probability:7.2%}  {p.label} (class {p.index})")
    return 0


def _analyze_dense(args: argparse.Namespace) -> int:
    """``analyze IMAGE --detector NAME``: a real detector or segmenter's findings, printed and drawn."""
    from backbone_viz.dense.models import detect_objects, draw_result, load_dense
    from backbone_viz.files.images import load_image

    image = load_image(args.image)
    dense = load_dense(
        args.detector, weights=args.weights, device=args.device, progress=progress_printer("weights")
    )
    result = detect_objects(dense, image, threshold=args.threshold)
    if args.json:
        print(json.dumps({
            "model": result.model, "kind": result.kind, "trained": result.trained, "threshold": result.threshold,
            "image_size": result.image_size, "input_size": result.input_size, "ms": round(result.ms, 1),
            "objects": [
                {"label": label, "score": round(float(score), 4), "box": [round(float(v), 1) for v in box]}
                for label, score, box in zip(result.labels, result.scores, result.boxes, strict=True)
            ],
            "legend": [{"label": name, "fraction": round(f, 4)} for _, name, f in result.legend],
        }, indent=2))  # fmt: skip
    else:
        if not result.trained:
            print(f"{dense.spec.full_title} is untrained: what follows is noise, not findings.")
        for label, score, box in zip(result.labels, result.scores, result.boxes, strict=True):
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            print(f"{score:7.2%}  {label}  ({x0}, {y0}) to ({x1}, {y1})")
        for _, name, fraction in result.legend:
            print(f"{fraction:7.2%}  {name} (share of the picture's pixels)")
        if result.kind != "semantic segmenter" and not len(result):
            print(f"nothing scored {result.threshold:.0%} or more")
    if args.out:
        draw_result(image, result).save(args.out)
        print(f"Picture written to {args.out}", file=sys.stderr if args.json else sys.stdout)
    if args.looked:
        _write_looked(dense, image, result, args.looked, sys.stderr if args.json else sys.stdout)
    return 0


def _write_looked(
    dense: DenseModel, image: Image.Image, result: DenseResult, out: str, stream: TextIO
) -> None:
    """Writes where the dense model looked: the map inside its boxes (a segmenter's largest class's map)
    over the picture, and says how it was made."""
    from backbone_viz.dense.looked import where_it_looked
    from backbone_viz.render import overlay

    looked = where_it_looked(dense, image, result, threshold=result.threshold)
    height, width = looked.whole.shape
    small = image.convert("RGB").resize((width, height))
    heat = looked.in_boxes if looked.method == "EigenCAM" else looked.whole
    overlay(small, heat, alpha=0.5, vmin=0.0, vmax=1.0).save(out)
    print(f"{looked.method} from {looked.source.title} written to {out}. {looked.why}", file=stream)


def _atlas(args: argparse.Namespace) -> int:
    from backbone_viz.core.backbones import load_backbone
    from backbone_viz.probes.atlas import compute_atlas, save_atlas

    backbone = load_backbone(
        args.backbone, weights=args.weights, device=args.device, progress=progress_printer("weights")
    )
    atlas = compute_atlas(
        backbone,
        per_stage=args.per_stage,
        size=args.size,
        steps=args.steps,
        seed=args.seed,
        progress=progress_printer("atlas", counts="steps"),
    )
    path = save_atlas(backbone, atlas, Path(args.out))
    print(f"Atlas of {sum(len(r) for r in atlas.rows.values())} channels written to {path.parent}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``backbone_viz`` argument parser with its subcommands."""
    from backbone_viz.zoo import list_backbones

    parser = argparse.ArgumentParser(
        prog="python -m backbone_viz",
        description="See inside a CNN backbone: activations of every layer and Grad-CAM.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    names = [spec.name for spec in list_backbones()]
    analyze = sub.add_parser("analyze", help="analyse one image and write a one-page report")
    analyze.add_argument("image", help="a PNG, JPEG, WebP, GIF, BMP or TIFF file")
    analyze.add_argument("--backbone", default="efficientnet_lite0", choices=names)
    analyze.add_argument(
        "--weights", default="pretrained", help="pretrained, untrained, or a checkpoint path (default: pretrained)"
    )
    analyze.add_argument("--target", default=None, help="class label or index for Grad-CAM (default: top-1)")
    analyze.add_argument("--out", default=None, help="where to write the report PNG (e.g. report.png)")
    analyze.add_argument("--json", action="store_true", help="print predictions and the layer table as JSON")
    analyze.add_argument("--device", default=None, help=DEVICE_HELP)
    from backbone_viz.dense.specs import list_dense

    analyze.add_argument(
        "--detector",
        default=None,
        choices=[s.name for s in list_dense()],
        help="run a real detector or segmenter instead of the backbone: prints what it finds, --out draws it",
    )
    analyze.add_argument(
        "--threshold", type=float, default=0.5, help="with --detector: the score a box needs (default: 0.5)"
    )
    analyze.add_argument(
        "--looked",
        default=None,
        metavar="PNG",
        help="with --detector: write where it looked (EigenCAM rescaled inside each box; a segmenter's "
        "Grad-CAM of its largest class)",
    )
    analyze.set_defaults(func=_analyze)
    atlas = sub.add_parser("atlas", help="feature visualizations of the top channels of each stage")
    atlas.add_argument("--backbone", default="efficientnet_lite0", choices=names)
    atlas.add_argument("--weights", default="pretrained", help="pretrained, untrained, or a checkpoint path")
    atlas.add_argument("--out", required=True, help="folder for the JPEGs and manifest.json")
    atlas.add_argument("--per-stage", type=int, default=8, help="channels per stage (default: 8)")
    atlas.add_argument("--size", type=int, default=128, help="picture side in pixels (default: 128)")
    atlas.add_argument("--steps", type=int, default=None, help="optimization steps (default: 128)")
    atlas.add_argument("--seed", type=int, default=0)
    atlas.add_argument("--device", default=None, help=DEVICE_HELP)
    atlas.set_defaults(func=_atlas)
    from backbone_viz.cli.heads import add_heads_parsers
    from backbone_viz.cli.weights import add_weights_parser
    from backbone_viz.server.serve import add_serve_parser

    add_heads_parsers(sub)
    add_weights_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (0 success, 1 a user-facing error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BackboneVizError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
