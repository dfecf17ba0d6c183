"""The command line of the three dense heads: ``box``, ``segment`` and ``detect``.

Every coordinate here is a pixel of the backbone's crop (``backbone.crop(picture)``: the shorter side
resized, then the centre cut square, 224 x 224 for every bundled backbone), as in
:mod:`backbone_viz.heads`; boxes are inclusive ``x0,y0,x1,y1`` (a box over the whole crop is
``0,0,223,223``).

* ``box IMAGE``: Grad-CAM's box at every stage (:func:`backbone_viz.boxes_by_stage`); ``--out`` writes a
  row of crops, one per stage with its box, so the box can be seen tightening from low to high stages.
* ``segment IMAGE --strokes STROKES.png``: a segmenter fitted on painted strokes
  (:func:`backbone_viz.fit_segmenter`); ``--out`` writes the mask over the crop in the strokes' colours.
* ``detect --example IMAGE:x0,y0,x1,y1 --on IMAGE``: a detector trained on boxes
  (:func:`backbone_viz.fit_detector`), optionally from one boxed picture pasted onto the sample pictures
  (:func:`backbone_viz.paste_examples`); ``--out`` writes the first ``--on`` picture with what it found.

**Strokes.** ``STROKES.png`` is a picture a learner paints in any paint program:

* its size is IMAGE's (paint on a copy of IMAGE, or on a new transparent layer above it) or the crop's
  (224 x 224, painted on the crop); a picture with IMAGE's shape at another scale is scaled to IMAGE first;
* unpainted pixels are transparent, pure white, pure black, or (on a copy of IMAGE) unchanged from IMAGE;
* each label is painted in one solid colour, other than white and black; each colour covering at least
  :data:`MIN_COLOUR_PIXELS` pixels is one label, rarer colours within :data:`SAME_COLOUR` of one join
  it (a soft brush's edge), the rest are ignored;
* ``--labels cat,background`` names the colours in the order they first appear, reading the strokes
  picture from its top row down, each row left to right; ``--labels cat=red,background=#0000ff`` names
  them by colour (the nearest painted colour); without ``--labels`` each label is called by its colour.

The strokes are carried into the crop by the same resize and centre cut as the picture, with
nearest-neighbour resampling, so that every painted pixel keeps its label.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from backbone_viz.cli.progress import progress_printer
from backbone_viz.core.device import DEVICE_HELP
from backbone_viz.errors import DetectError, SegmentError

if TYPE_CHECKING:
    from backbone_viz.core.backbones import Backbone
    from backbone_viz.core.specs import Preprocessing

__all__ = [
    "Strokes",
    "add_heads_parsers",
    "parse_example",
    "read_strokes",
    "strokes_to_crop",
    "training_set",
]

#: A colour is a label when it covers at least this many pixels of the strokes picture.
MIN_COLOUR_PIXELS = 20
#: Colours closer than this (Euclidean RGB distance) are one label: a soft brush's edge, JPEG noise.
SAME_COLOUR = 60.0
#: A pixel whose channels are all at least this is white (unpainted); all at most 255 minus it, black.
WHITE = 245
#: A pixel of a copy of IMAGE that differs from IMAGE by at most this in every channel is unpainted.
UNCHANGED = 24
#: Names for painted colours, by the nearest of these (a student reads "red", not "#e62828").
COLOUR_NAMES: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "orange": (255, 150, 0),
    "yellow": (250, 230, 0),
    "green": (30, 170, 60),
    "cyan": (0, 200, 220),
    "blue": (30, 80, 230),
    "purple": (130, 50, 180),
    "magenta": (230, 0, 200),
    "pink": (255, 150, 190),
    "brown": (130, 80, 30),
    "grey": (128, 128, 128),
}
#: The box's colours on a crop: a light line inside a dark one, visible on light and dark pictures.
LIGHT, DARK = (255, 214, 0), (0, 0, 0)

Box = tuple[int, int, int, int]

STROKES_HELP = (
    "a PNG painted in any paint program, the size of IMAGE (or of the backbone's 224x224 crop): unpainted "
    "pixels transparent, white, black or unchanged from IMAGE; one solid colour per label"
)
LABELS_HELP = (
    "label names, one per painted colour, in the order the colours first appear reading the strokes top to "
    "bottom (cat,background), or by colour (cat=red,background=#0000ff); default: the colours' names"
)
SEGMENT_EPILOG = """\
How to paint STROKES.png in any paint program:
  - paint on a copy of IMAGE, or on a transparent layer above it (or on the 224x224 crop),
    and save it as PNG at that size (JPEG smudges the colours);
  - leave unpainted pixels transparent, pure white or pure black, or unchanged from IMAGE;
  - paint each label in one solid colour other than white and black, 2 to 4 colours;
    rare colours (a soft brush's edge) are left out.
  --labels cat,background names the colours in the order they first appear, reading the
  strokes from the top row down; --labels cat=red,background=blue names them by colour.

Example:
  python -m backbone_viz segment cat.jpg --strokes strokes.png --labels cat,background --out mask.png
"""
EXAMPLE_HELP = (
    "a picture and its boxes, IMAGE:x0,y0,x1,y1[:x0,y0,x1,y1...], in pixels of the backbone's 224x224 crop "
    "of that picture (left, top, right, bottom; inclusive); repeat for more pictures"
)


# ----------------------------------------------------------------------------------------------- the parsers


def add_heads_parsers(sub: argparse._SubParsersAction) -> None:
    """Adds the ``box``, ``segment`` and ``detect`` subcommands to the ``backbone_viz`` parser."""
    box = sub.add_parser(
        "box",
        help="Grad-CAM's box around the class at every stage (no detector trained)",
        description="Grad-CAM's box at every stage: pixels above THRESHOLD x the map's maximum, the largest "
        "region, the box around it. Boxes are x0,y0,x1,y1 in pixels of the backbone's 224x224 crop.",
    )
    box.add_argument("image", help="a PNG, JPEG, WebP, GIF, BMP or TIFF file")
    _backbone_options(box)
    box.add_argument("--target", default=None, help="class label or index to box (default: top-1)")
    box.add_argument(
        "--threshold", type=float, default=0.2, help="share of the map's maximum kept (default: 0.2)"
    )
    box.add_argument(
        "--out", default=None, help="where to write the crops with each stage's box (e.g. boxed.png)"
    )
    box.add_argument("--json", action="store_true", help="print the boxes as JSON")
    box.set_defaults(func=_box)

    segment = sub.add_parser(
        "segment",
        help="label every pixel from a few painted strokes",
        description="Paint to segment: a per-pixel linear head, fitted on a few painted strokes, labels every "
        "pixel of the backbone's crop (224x224 for every bundled backbone).",
        epilog=SEGMENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    segment.add_argument("image", help="the picture to segment (PNG, JPEG, ...)")
    segment.add_argument("--strokes", required=True, help=STROKES_HELP)
    segment.add_argument("--labels", default=None, help=LABELS_HELP)
    segment.add_argument(
        "--levels",
        default=None,
        help="stages whose features are read: indices or levels, e.g. 1,3 or low,mid (default: all)",
    )
    _backbone_options(segment)
    segment.add_argument("--out", default=None, help="where to write the mask over the crop (e.g. mask.png)")
    segment.add_argument("--json", action="store_true", help="print labels, shares, stages and times as JSON")
    segment.set_defaults(func=_segment)

    detect = sub.add_parser(
        "detect",
        help="train a detector on a few boxes and look for the thing on pictures",
        description="A one-class detector (a tiny CenterNet head on one stage) trained on boxes you give, "
        "in pixels of the backbone's 224x224 crop of each picture (run 'box' or 'analyze --out' to see the crop).",
    )
    detect.add_argument(
        "--example", action="append", required=True, metavar="IMAGE:x0,y0,x1,y1", help=EXAMPLE_HELP
    )
    detect.add_argument(
        "--paste-onto-samples",
        action="store_true",
        help="make more examples by pasting each boxed thing onto the bundled sample pictures",
    )
    detect.add_argument(
        "--on", action="append", required=True, metavar="IMAGE", help="a picture to look at (repeatable)"
    )
    detect.add_argument(
        "--stage", type=int, default=None, help="stage to read (default: the one of stride 16)"
    )
    detect.add_argument(
        "--threshold", type=float, default=0.3, help="least centre heat of a found box (default: 0.3)"
    )
    detect.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    detect.add_argument("--seed", type=int, default=0)
    _backbone_options(detect)
    detect.add_argument("--out", default=None, help="where to write the first --on picture with its boxes")
    detect.add_argument("--json", action="store_true", help="print the detector and the found boxes as JSON")
    detect.set_defaults(func=_detect)


def _backbone_options(parser: argparse.ArgumentParser) -> None:
    from backbone_viz.zoo import list_backbones

    parser.add_argument(
        "--backbone", default="efficientnet_lite0", choices=[spec.name for spec in list_backbones()]
    )
    parser.add_argument("--weights", default="pretrained", help="pretrained, untrained, or a checkpoint path")
    parser.add_argument("--device", default=None, help=DEVICE_HELP)


def _backbone(args: argparse.Namespace) -> Backbone:
    """The backbone the options name (tests put a loaded one in its place)."""
    from backbone_viz.core.backbones import load_backbone

    return load_backbone(
        args.backbone, weights=args.weights, device=args.device, progress=progress_printer("weights")
    )


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Prints to stdout, or to stderr when stdout is kept for --json."""
    stream = sys.stderr if args.json else sys.stdout
    return lambda text: print(text, file=stream)


# ----------------------------------------------------------------------------------------------------- box


def _box(args: argparse.Namespace) -> int:
    from backbone_viz.explain.analysis import analyze
    from backbone_viz.files.images import load_image
    from backbone_viz.heads.cam_box import boxes_by_stage
    from backbone_viz.render import encode

    image = load_image(args.image)
    backbone = _backbone(args)
    target: int | str | None = args.target
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    result = analyze(backbone, image, target=target)
    boxes = boxes_by_stage(result, args.threshold)
    stages = {s.index: s for s in backbone.spec.stages}
    size = result.input_image.width
    rows = []
    for index, box in boxes.items():
        stage = stages[index]
        rows.append(
            {
                "stage": index,
                "level": stage.level,
                "layer": stage.last.label,
                "box": None if box is None else list(box.box),
                "width": None if box is None else box.width,
                "height": None if box is None else box.height,
                "box_share": None if box is None else round(box.box_share, 4),
                "region_share": None if box is None else round(box.share, 4),
                "regions": None if box is None else box.regions,
            }
        )
    say = _say(args)
    if args.json:
        table = {
            "backbone": result.backbone,
            "weights": result.weights,
            "crop": [result.input_image.width, result.input_image.height],
            "target": {
                "index": result.target.index,
                "label": result.target.label,
                "probability": result.target.probability,
            },
            "threshold": args.threshold,
            "stages": rows,
        }
        print(json.dumps(table, indent=2))
    else:
        print(
            f"Grad-CAM boxes of '{result.target.label}' ({result.target.probability:.1%}), {backbone.spec.title} "
            f"({backbone.weights}), in pixels x0,y0,x1,y1 of the {size}x{size} crop:"
        )
        width = max(len(row["layer"]) for row in rows)
        for row in rows:
            head = f"stage {row['stage']} {row['level']:<4} {row['layer']:<{width}}"
            if row["box"] is None:
                print(f"{head}  no box: Grad-CAM is zero everywhere at this layer")
                continue
            regions = "1 region" if row["regions"] == 1 else f"largest of {row['regions']} regions"
            print(
                f"{head}  {','.join(map(str, row['box'])):<15} {row['width']:>3}x{row['height']:<3} px  "
                f"box {row['box_share']:4.0%} of the crop, {regions}"
            )
    if args.out:
        from backbone_viz.render import image_row, overlay

        tiles, labels = [], []
        for row, box in zip(rows, boxes.values(), strict=True):
            # The box over the Grad-CAM it was drawn from: the largest bright region, inside the box.
            cam = overlay(result.input_image, result.gradcam[stages[row["stage"]].last.name], alpha=0.45)
            tiles.append(_boxed(cam, None if box is None else box.box))
            shown = "no box" if box is None else f"{box.width}×{box.height} px, {box.box_share:.0%}"
            labels.append(f"stage {row['stage']} · {row['level']}\n{row['layer']}\n{shown}")
        picture = image_row(tiles, labels=labels, height=size, font_size=14)
        title = (
            f"Grad-CAM and its box for '{result.target.label}' ({result.target.probability:.0%}) at each stage, "
            f"{backbone.spec.title} ({backbone.weights})"
        )
        Path(args.out).write_bytes(encode(_titled(picture, title)))
        say(f"Boxes written to {args.out}")
    return 0


# ------------------------------------------------------------------------------------------------- segment


@dataclass(frozen=True, eq=False)
class Strokes:
    """Painted strokes read from a picture, in the backbone's crop.

    Attributes:
        labels: (crop, crop) int64: -1 unpainted, ``k`` where colour ``k`` is painted.
        colours: the K painted colours (RGB), in the order they first appear reading the strokes picture.
        pixels: (K,) painted pixels of each colour in the strokes picture (before the crop).
        ignored: painted pixels of no label (rare colours far from every label's).
        painted_on: ``"image"`` (IMAGE's size), ``"scaled image"`` (IMAGE's shape at another scale) or
            ``"crop"`` (the crop's size).
    """

    labels: np.ndarray
    colours: tuple[tuple[int, int, int], ...]
    pixels: tuple[int, ...]
    ignored: int
    painted_on: str


def read_strokes(path: str | Path, image: Image.Image, preprocessing: Preprocessing) -> Strokes:
    """Reads a strokes picture (see the module docstring) into a label map of the backbone's crop.

    Args:
        path: the strokes picture.
        image: the picture painted on, as :func:`backbone_viz.load_image` reads it (upright RGB).
        preprocessing: the backbone's (its resize and crop are applied to the strokes).

    Raises:
        ImageError: the strokes file is not a picture.
        SegmentError: strokes of another size, nothing painted, more colours than labels can be.
    """
    from backbone_viz.files.images import load_image
    from backbone_viz.heads.segment import MAX_LABELS

    # load_image puts transparent pixels on white: a transparent layer's unpainted pixels become white.
    strokes = load_image(path)
    crop = preprocessing.crop
    if strokes.size == image.size:
        painted_on = "image"
    elif strokes.size == (crop, crop):
        painted_on = "crop"
    elif abs(strokes.width * image.height - strokes.height * image.width) <= max(image.size):
        painted_on = "scaled image"
        strokes = strokes.resize(image.size, Image.Resampling.NEAREST)
    else:
        raise SegmentError(
            f"The strokes are {strokes.width}x{strokes.height} px, but the picture is {image.width}x{image.height} "
            f"and the backbone's crop {crop}x{crop}.",
            "Paint on a copy of the picture (or on a layer above it) and save it at the picture's size as PNG.",
        )
    rgb = np.asarray(strokes, dtype=np.int16)
    painted = ~((rgb >= WHITE).all(axis=-1) | (rgb <= 255 - WHITE).all(axis=-1))
    if painted_on != "crop":
        original = np.asarray(image.convert("RGB"), dtype=np.int16)
        painted &= (np.abs(rgb - original) > UNCHANGED).any(axis=-1)
    colours, counts, first, assigned = _main_colours(rgb, painted)
    if not colours:
        raise SegmentError(
            "Nothing is painted on the strokes picture.",
            "Paint a stroke of each label in its own solid colour (not white or black) and save as PNG.",
        )
    if len(colours) > MAX_LABELS:
        listed = ", ".join(f"{_colour_name(c)} ({n} px)" for c, n in zip(colours, counts, strict=True))
        raise SegmentError(
            f"The strokes hold {len(colours)} colours ({listed}); at most {MAX_LABELS} labels can be painted.",
            "Paint each label in one solid colour with a hard brush (no soft edges or blending), and save as PNG, not JPEG.",
        )
    # Reading order of each colour's first pixel: the order --labels names them in.
    order = sorted(range(len(colours)), key=lambda k: first[k])
    remap = np.full(len(colours) + 1, -1, dtype=np.int64)
    for new, old in enumerate(order):
        remap[old] = new
    full = np.full(painted.shape, -1, dtype=np.int64)
    full[painted] = remap[assigned]  # -1 (no label) indexes the last entry, which is -1
    pixels = np.bincount(full[full >= 0], minlength=len(colours))
    labels = full if painted_on == "crop" else strokes_to_crop(full, preprocessing)
    return Strokes(
        labels=labels,
        colours=tuple(colours[k] for k in order),
        pixels=tuple(int(n) for n in pixels),
        ignored=int(np.count_nonzero(assigned < 0)),
        painted_on=painted_on,
    )


def strokes_to_crop(labels: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """An (H, W) label map of a picture carried into the backbone's crop as the picture is.

    The backbone resizes the picture's shorter side to ``preprocessing.resize`` and cuts the centre
    ``crop`` x ``crop`` square (:meth:`backbone_viz.Backbone.crop`); the same resize with nearest-neighbour
    resampling keeps every value a label (a smooth resize would mix two labels into a third).

    Args:
        labels: (H, W) ints from -1 (unpainted) to 254.

    Returns:
        (crop, crop) int64 label map.
    """
    import torchvision.transforms.functional as TF

    shifted = Image.fromarray((np.asarray(labels) + 1).astype(np.uint8), mode="L")
    resized = TF.resize(shifted, preprocessing.resize, interpolation=TF.InterpolationMode.NEAREST)
    return np.asarray(TF.center_crop(resized, preprocessing.crop), dtype=np.int64) - 1


def _main_colours(
    rgb: np.ndarray, painted: np.ndarray
) -> tuple[list[tuple[int, int, int]], list[int], list[int], np.ndarray]:
    """The label colours of the painted pixels of an (H, W, 3) picture.

    A label colour covers :data:`MIN_COLOUR_PIXELS` pixels or more and is not within :data:`SAME_COLOUR`
    of a more common one; every painted pixel within :data:`SAME_COLOUR` of a label colour joins the
    nearest. Distances are taken once per distinct colour, not per pixel (a photo-sized picture).

    Returns:
        The K colours (most painted first), their pixel counts, the reading-order position (flat index)
        of their first pixel, and (N,) int64 the label of each of the N painted pixels (in ``painted``'s
        C order), -1 for a pixel of no label.
    """
    where = np.flatnonzero(painted.ravel())
    flat = rgb.reshape(-1, 3)[where].astype(np.int64)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, first, inverse, counts = np.unique(
        packed, return_index=True, return_inverse=True, return_counts=True
    )
    every = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1).astype(np.float32)
    chosen: list[int] = []
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] < MIN_COLOUR_PIXELS:
            break
        if all(np.linalg.norm(every[i] - every[j]) > SAME_COLOUR for j in chosen):
            chosen.append(int(i))
    if not chosen:
        return [], [], [], np.full(where.size, -1, dtype=np.int64)
    distance = np.linalg.norm(every[:, None] - every[chosen][None], axis=-1)  # (distinct colours, K)
    label = np.where(distance.min(axis=1) <= SAME_COLOUR, distance.argmin(axis=1), -1)
    colours = [tuple(int(v) for v in every[i]) for i in chosen]
    totals = [int(counts[label == k].sum()) for k in range(len(chosen))]
    firsts = [int(where[first[label == k]].min()) for k in range(len(chosen))]
    return colours, totals, firsts, label[inverse.ravel()]  # type: ignore[return-value]


def _colour_name(rgb: Sequence[int]) -> str:
    """``(237, 28, 36)`` -> ``"red (#ed1c24)"``: the nearest of :data:`COLOUR_NAMES` and the exact colour."""
    name = min(
        COLOUR_NAMES, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOUR_NAMES[n], rgb, strict=True))
    )
    return f"{name} ({_hex(rgb)})"


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _label_names(text: str | None, colours: Sequence[tuple[int, int, int]]) -> list[str]:
    """The label of each painted colour, from ``--labels`` (see the module docstring), in colour order."""
    if text is None:
        bare = [
            min(
                COLOUR_NAMES,
                key=lambda n, c=c: sum((a - b) ** 2 for a, b in zip(COLOUR_NAMES[n], c, strict=True)),
            )
            for c in colours
        ]
        return bare if len(set(bare)) == len(bare) else [_hex(c) for c in colours]
    parts = [part.strip() for part in text.split(",")]
    found = ", ".join(_colour_name(c) for c in colours)
    if not any("=" in part for part in parts):
        if len(parts) != len(colours):
            raise SegmentError(
                f"{len(parts)} label names were given ({', '.join(parts)}) but {len(colours)} colours are painted: {found}.",
                f"Give one name per colour, in the order listed, e.g. --labels {','.join(f'label{k + 1}' for k in range(len(colours)))}.",
            )
        return parts
    names: list[str | None] = [None] * len(colours)
    for part in parts:
        name, _, colour = part.partition("=")
        try:
            wanted = ImageColor.getrgb(colour.strip())[:3]
        except ValueError:
            raise SegmentError(
                f"{colour.strip()!r} in --labels is not a colour.",
                "Write name=colour with a colour name or #rrggbb, e.g. --labels cat=red,background=#0000ff.",
            ) from None
        k = int(np.argmin([sum((a - b) ** 2 for a, b in zip(wanted, c, strict=True)) for c in colours]))
        if names[k] is not None:
            raise SegmentError(
                f"Both {names[k]!r} and {name.strip()!r} name the painted colour {_colour_name(colours[k])}.",
                f"The painted colours are: {found}; give each its own name.",
            )
        names[k] = name.strip()
    missing = [_colour_name(c) for c, n in zip(colours, names, strict=True) if n is None]
    if missing:
        raise SegmentError(
            f"No label is named for the painted colour{'s' if len(missing) > 1 else ''} {', '.join(missing)}.",
            f"Name every painted colour ({found}), e.g. --labels cat=red,background=blue.",
        )
    return [str(n) for n in names]


def _in_label_order(strokes: Strokes, text: str | None) -> Strokes:
    """The strokes with their colours in the order ``--labels cat=red,background=blue`` names them (as
    they are for plain names: reading order)."""
    if text is None or "=" not in text:
        return strokes
    wanted = [
        ImageColor.getrgb(part.partition("=")[2].strip())[:3] for part in text.split(",") if _is_colour(part)
    ]
    order: list[int] = []
    for rgb in wanted:
        k = int(np.argmin([sum((a - b) ** 2 for a, b in zip(rgb, c, strict=True)) for c in strokes.colours]))
        if k not in order:
            order.append(k)
    order += [k for k in range(len(strokes.colours)) if k not in order]
    lut = np.full(len(order) + 1, -1, dtype=np.int64)
    for new, old in enumerate(order):
        lut[old] = new
    return Strokes(
        labels=lut[strokes.labels],
        colours=tuple(strokes.colours[k] for k in order),
        pixels=tuple(strokes.pixels[k] for k in order),
        ignored=strokes.ignored,
        painted_on=strokes.painted_on,
    )


def _is_colour(part: str) -> bool:
    try:
        ImageColor.getrgb(part.partition("=")[2].strip())
    except ValueError:
        return False
    return True


def _levels(text: str | None) -> list[int | str] | None:
    if text is None:
        return None
    return [int(part) if part.strip().isdigit() else part.strip() for part in text.split(",") if part.strip()]


def _segment(args: argparse.Namespace) -> int:
    from backbone_viz.files.images import load_image
    from backbone_viz.heads.segment import fit_segmenter
    from backbone_viz.render import encode

    image = load_image(args.image)
    backbone = _backbone(args)
    strokes = read_strokes(args.strokes, image, backbone.preprocessing)
    if len(strokes.colours) == 1:
        raise SegmentError(
            f"Only one colour is painted ({_colour_name(strokes.colours[0])}): with one label there is nothing to tell apart.",
            "Paint everything else (the background) in a second colour, such as blue.",
        )
    strokes = _in_label_order(strokes, args.labels)
    names = _label_names(args.labels, strokes.colours)
    size = backbone.preprocessing.crop
    outside = [k for k in range(len(names)) if not np.any(strokes.labels == k)]
    if outside and strokes.painted_on != "crop":
        listed = " and ".join(f"{names[k]!r} ({_colour_name(strokes.colours[k])})" for k in outside)
        raise SegmentError(
            f"Every stroke of {listed} lies outside the part of the picture the backbone sees: it resizes the "
            f"picture and keeps only the centre {size}x{size} square.",
            "Paint nearer the middle of the picture, away from the edges of its longer side.",
        )
    seg = fit_segmenter(backbone, image, strokes.labels, names, levels=_levels(args.levels))
    shares = np.bincount(seg.mask.ravel(), minlength=len(names)) / seg.mask.size
    layers = {s.index: s.last.label for s in backbone.spec.stages}
    say = _say(args)
    if args.json:
        table = {
            "backbone": backbone.spec.name,
            "weights": backbone.weights,
            "crop": [size, size],
            "painted_on": strokes.painted_on,
            "labels": [
                {
                    "name": name,
                    "colour": _hex(colour),
                    "painted_pixels": strokes.pixels[k],
                    "painted_in_crop": int(np.count_nonzero(strokes.labels == k)),
                    "share": round(float(shares[k]), 4),
                }
                for k, (name, colour) in enumerate(zip(names, strokes.colours, strict=True))
            ],
            "ignored_pixels": strokes.ignored,
            "stages": list(seg.stages),
            "layers": [layers[i] for i in seg.stages],
            "forward_ms": round(seg.forward_ms, 1),
            "fit_ms": round(seg.fit_ms, 1),
            "predict_ms": round(seg.predict_ms, 1),
        }
        print(json.dumps(table, indent=2))
    else:
        where = {
            "image": "a copy of the picture",
            "scaled image": "a scaled copy of the picture",
            "crop": "the crop",
        }
        print(f"Strokes painted on {where[strokes.painted_on]}, read in the backbone's {size}x{size} crop.")
        if strokes.ignored:
            print(f"{strokes.ignored} painted pixels of rarer colours (a brush's soft edge) were left out.")
        width = max(len(n) for n in names)
        for k, name in enumerate(names):
            print(
                f"{name:<{width}}  {_colour_name(strokes.colours[k]):<22} painted {int(np.count_nonzero(strokes.labels == k)):>5} px"
                f"  ->  {shares[k]:6.1%} of the crop"
            )
        if args.labels is not None and "=" not in args.labels:
            print(
                "(Names follow the colours' order from the top of the strokes; --labels name=colour sets them by colour.)"
            )
        stages = ", ".join(f"{i} ({layers[i]})" for i in seg.stages)
        print(
            f"Features of stage{'s' if len(seg.stages) > 1 else ''} {stages}; fitted in {seg.fit_ms:.0f} ms."
        )
    if args.out:
        Path(args.out).write_bytes(encode(mask_over(seg.input_image, seg.mask, strokes.colours)))
        say(f"Mask written to {args.out}")
    return 0


def mask_over(crop: Image.Image, mask: np.ndarray, colours: Sequence[tuple[int, int, int]]) -> Image.Image:
    """The crop with each pixel half tinted by its label's colour: ``(crop + colour) / 2``, rounded.

    Args:
        crop: the (H, W) RGB crop the backbone saw.
        mask: (H, W) label indices into ``colours``.
    """
    tint = np.asarray(colours, dtype=np.float32)[np.asarray(mask)]
    base = np.asarray(crop.convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.floor(0.5 * base + 0.5 * tint + 0.5).astype(np.uint8))


# -------------------------------------------------------------------------------------------------- detect


def parse_example(text: str) -> tuple[str, list[Box]]:
    """``"cat.jpg:28,50,104,118:120,50,190,118"`` -> ``("cat.jpg", [(28, 50, 104, 118), (120, 50, 190, 118)])``.

    The boxes are the colon-separated parts after the picture's path that hold commas, so a path may
    hold colons itself (``C:/pictures/cat.jpg:...``).

    Raises:
        DetectError: no box, or a box that is not four whole numbers.
    """
    parts = text.split(":")
    boxes_from = len(parts)
    while boxes_from > 1 and "," in parts[boxes_from - 1]:
        boxes_from -= 1
    path, boxes_text = ":".join(parts[:boxes_from]), parts[boxes_from:]
    form = "IMAGE:x0,y0,x1,y1 (more boxes: IMAGE:x0,y0,x1,y1:x0,y0,x1,y1), in pixels of the 224x224 crop, e.g. cat.jpg:28,50,104,118"
    if not boxes_text or not path:
        raise DetectError(
            f"--example {text!r} has no {'box' if path else 'picture'}.", f"Write it as {form}."
        )
    boxes = []
    for box in boxes_text:
        values = [v.strip() for v in box.split(",")]
        if len(values) != 4 or not all(v.lstrip("-").isdigit() for v in values):
            raise DetectError(
                f"The box {box!r} of --example {text!r} is not four whole numbers x0,y0,x1,y1.",
                f"Write it as {form}.",
            )
        x0, y0, x1, y1 = (int(v) for v in values)
        boxes.append((x0, y0, x1, y1))
    return path, boxes


def training_set(
    backbone: Backbone, boxed: Sequence[tuple[str, Image.Image, Sequence[Box]]], *, paste: bool, seed: int = 0
) -> list[tuple[str, Image.Image, list[Box]]]:
    """The detector's examples: each boxed picture, and with ``paste`` its boxed things pasted onto every
    bundled sample picture that is not one of the boxed pictures (:func:`backbone_viz.paste_examples`).

    Args:
        backbone: whose crop the boxes are in.
        boxed: ``(path, picture, boxes)``: boxes in inclusive pixels of ``backbone.crop(picture)``.
        paste: whether to add the pasted pictures.
        seed: seeds the pasted copies' places and sizes (``seed + i`` for the ``i``-th boxed picture).

    Returns:
        ``(description, picture, boxes)`` for :func:`backbone_viz.fit_detector`, the boxes in pixels of
        ``backbone.crop(picture)``.
    """
    from backbone_viz.files.images import load_image
    from backbone_viz.files.samples import list_samples
    from backbone_viz.heads.examples import paste_examples

    made: list[tuple[str, Image.Image, list[Box]]] = [
        (path, picture, list(boxes)) for path, picture, boxes in boxed
    ]
    if not paste:
        return made
    own = {Path(path).resolve() for path, _, _ in boxed}
    samples = [s for s in list_samples() if s.path.resolve() not in own]
    backgrounds = [load_image(s.path) for s in samples]
    for i, (path, picture, boxes) in enumerate(boxed):
        pasted = paste_examples(backbone, picture, boxes, backgrounds, seed=seed + i)[1:]
        for sample, (made_picture, made_boxes) in zip(samples, pasted, strict=True):
            made.append((f"{Path(path).name} pasted onto {sample.name}", made_picture, made_boxes))
    return made


def _detect(args: argparse.Namespace) -> int:
    from backbone_viz.files.images import load_image
    from backbone_viz.heads.detect import detect, fit_detector
    from backbone_viz.render import encode

    parsed = [parse_example(text) for text in args.example]
    pictures = [load_image(path) for path, _ in parsed]
    on = [load_image(path) for path in args.on]
    backbone = _backbone(args)
    size = backbone.preprocessing.crop
    say = _say(args)
    training = training_set(
        backbone,
        [(path, picture, boxes) for (path, boxes), picture in zip(parsed, pictures, strict=True)],
        paste=args.paste_onto_samples,
        seed=args.seed,
    )
    examples = [(picture, boxes) for _, picture, boxes in training]
    described = [{"picture": name, "boxes": [list(b) for b in boxes]} for name, _, boxes in training]
    if args.paste_onto_samples:
        onto = sorted({name.rsplit(" ", 1)[1] for name, _, _ in training[len(parsed) :]})
        say(
            f"{len(parsed)} boxed picture{'s' if len(parsed) > 1 else ''} + {len(examples) - len(parsed)} made by pasting "
            f"onto the samples ({', '.join(onto)})."
        )
    say(f"Boxes are in pixels of the backbone's {size}x{size} crop of each picture.")
    detector = fit_detector(
        backbone,
        examples,
        stage=args.stage,
        steps=args.steps,
        seed=args.seed,
        progress=progress_printer("train", counts="steps"),
    )
    found = [detect(backbone, detector, picture, threshold=args.threshold) for picture in on]
    if args.json:
        table = {
            "backbone": backbone.spec.name,
            "weights": backbone.weights,
            "crop": [size, size],
            "stage": detector.stage,
            "layer": next(s.last.label for s in backbone.spec.stages if s.index == detector.stage),
            "stride": detector.stride,
            "why": detector.why,
            "examples": described,
            "features_ms": round(detector.features_ms, 1),
            "fit_ms": round(detector.fit_ms, 1),
            "threshold": args.threshold,
            "found": [
                {
                    "picture": path,
                    "boxes": [
                        {"box": list(b), "score": round(s, 4)} for b, s in zip(d.boxes, d.scores, strict=True)
                    ],
                }
                for path, d in zip(args.on, found, strict=True)
            ],
        }
        print(json.dumps(table, indent=2))
    else:
        print(detector.why)
        print(
            f"Trained on {len(examples)} pictures in {detector.fit_ms / 1000:.1f} s; final loss {float(detector.losses[-1]):.3f}."
        )
        for path, d in zip(args.on, found, strict=True):
            if not d.boxes:
                print(f"{path}: nothing found above a heat of {args.threshold}")
                continue
            print(f"{path}: {len(d.boxes)} found (x0,y0,x1,y1 in the {size}x{size} crop)")
            for b, s in zip(d.boxes, d.scores, strict=True):
                print(f"  {','.join(map(str, b)):<16} score {s:.2f}")
    if args.out:
        first = found[0]
        drawn = first.input_image.convert("RGB")
        for b, s in zip(first.boxes, first.scores, strict=True):
            drawn = _boxed(drawn, b, f"{s:.2f}")
        Path(args.out).write_bytes(encode(drawn))
        say(f"Found boxes on {args.on[0]} written to {args.out}")
    return 0


# ------------------------------------------------------------------------------------------------- drawing


def _boxed(picture: Image.Image, box: Box | None, text: str | None = None) -> Image.Image:
    """A copy of the crop with ``box`` (inclusive crop pixels) drawn, and ``text`` at its top-left corner."""
    from backbone_viz.render import font

    drawn = picture.convert("RGB").copy()
    if box is None:
        return drawn
    draw = ImageDraw.Draw(drawn)
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1, y1), outline=DARK, width=4)
    draw.rectangle((x0 + 1, y0 + 1, x1 - 1, y1 - 1), outline=LIGHT, width=2)
    if text:
        face = font(13, bold=True)
        left, top, right, bottom = draw.textbbox((x0 + 3, y0 + 3), text, font=face)
        draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=DARK)
        draw.text((x0 + 3, y0 + 3), text, fill=LIGHT, font=face)
    return drawn


def _titled(picture: Image.Image, title: str, size: int = 16) -> Image.Image:
    """``picture`` under a one-line title on white."""
    from backbone_viz.render import font

    face = font(size, bold=True)
    band = round(size * 2)
    canvas = Image.new("RGB", (picture.width, picture.height + band), "white")
    canvas.paste(picture, (0, band))
    ImageDraw.Draw(canvas).text((8, band // 2), title, fill="#111111", font=face, anchor="lm")
    return canvas
