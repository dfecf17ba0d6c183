"""The feature atlas: one row of feature visualizations per stage, low to high, and the one that ships.

For each stage, the atlas visualizes the channels of the stage's last layer that fire most on the sample
gallery (their mean activation averaged over the sample photos), each with a fixed seed
(:mod:`backbone_viz.probes.featurevis`). ``python -m backbone_viz atlas`` computes it once and writes small JPEGs
plus ``manifest.json``; the atlas of the bundled backbone ships in ``assets/atlas/<backbone>/``, so the
app shows it at once and offline.

A shipped atlas belongs to one weights file: its manifest records the file's sha256, and
:func:`load_atlas` returns it only for a backbone loaded from a file with that hash (never for untrained
weights or another checkpoint), so a stale atlas is never shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from PIL import Image

from backbone_viz.core.backbones import WEIGHT_CHOICES, Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.core.specs import LayerSpec
from backbone_viz.files import weights as weights_mod
from backbone_viz.files.images import load_image
from backbone_viz.files.samples import list_samples
from backbone_viz.files.shipped import assets_dir
from backbone_viz.probes.featurevis import DEFAULT_STEPS, channel_means, visualize_channels

#: Where shipped atlases live: ``assets/atlas/<backbone name>/``.
ATLAS_DIR: Final[Path] = assets_dir() / "atlas"
MANIFEST: Final[str] = "manifest.json"
#: JPEG quality of the shipped pictures (about 5 kB each at 128 px).
JPEG_QUALITY: Final[int] = 90

#: ``progress(done, total)``: optimization steps done over the whole atlas; may raise to cancel.
AtlasProgress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class AtlasEntry:
    """One channel's feature visualization in the atlas.

    Attributes:
        stage: the stage's index (from 1).
        layer: the layer's dotted name (the stage's last layer).
        channel: the channel.
        image: its feature visualization, RGB, ``size`` × ``size``.
        activation: the channel's mean value on ``image`` (as in :class:`~backbone_viz.probes.featurevis.FeatureVis`).
        gallery_max: the largest mean value of the channel over the sample photos (their model crops).
        seed: the seed the visualization was made with.
    """

    stage: int
    layer: str
    channel: int
    image: Image.Image = field(repr=False)
    activation: float
    gallery_max: float
    seed: int


@dataclass(frozen=True, eq=False)
class Atlas:
    """Feature visualizations of a few channels per stage of one backbone.

    Attributes:
        backbone: the backbone's name.
        weights: ``"pretrained"``, ``"untrained"`` or a checkpoint path.
        size: side of each picture in pixels.
        steps: optimization steps of each picture.
        rows: ``{stage index: entries}``, stages low to high, entries strongest on the gallery first.
    """

    backbone: str
    weights: str
    size: int
    steps: int
    rows: Mapping[int, tuple[AtlasEntry, ...]]

    def entry(self, layer: str, channel: int) -> AtlasEntry | None:
        """The entry of ``channel`` of ``layer``, or None when the atlas does not hold it."""
        for entries in self.rows.values():
            for e in entries:
                if e.layer == layer and e.channel == channel:
                    return e
        return None


@runs_model
def gallery_maps(
    backbone: Backbone, layers: Sequence[str | LayerSpec], pictures: Sequence[Image.Image] | None = None
) -> dict[str, np.ndarray]:
    """Each layer's maps on the sample photos, from ONE no-grad pass that stops at the deepest layer.

    Args:
        backbone: a loaded backbone; it is only run.
        layers: layers of ``backbone.spec`` (dotted names, labels or specs).
        pictures: the sample photos already decoded (a cache), in :func:`list_samples` order; by default
            they are read here.

    Returns:
        ``{layer name: (pictures, channels, h, w) float32 array}``.
    """
    names = [
        layer.name if isinstance(layer, LayerSpec) else backbone.spec.layer(layer).name for layer in layers
    ]
    if pictures is None:
        pictures = [load_image(s.path) for s in list_samples()]
    x = torch.cat([backbone.preprocess(picture) for picture in pictures])
    with torch.no_grad():
        out = backbone.extract(x, names)
    return {name: out[name].float().cpu().numpy() for name in names}


@runs_model
def gallery_means(backbone: Backbone, layer: str | LayerSpec) -> np.ndarray:
    """(pictures, channels) float32: each channel's mean value over the layer's map, for each sample photo."""
    return next(iter(gallery_maps(backbone, [layer]).values())).mean(axis=(2, 3))


@runs_model
def compute_atlas(
    backbone: Backbone,
    *,
    per_stage: int = 8,
    size: int = 128,
    steps: int | None = None,
    seed: int = 0,
    progress: AtlasProgress | None = None,
) -> Atlas:
    """Visualizes the ``per_stage`` channels of each stage's last layer that fire most on the gallery.

    Args:
        backbone: a loaded backbone; it is only run.
        per_stage: channels per stage (fewer where a layer has fewer).
        size, steps, seed: as in :func:`~backbone_viz.probes.featurevis.visualize_channels`.
        progress: called as ``progress(done, total)`` with optimization steps over the whole atlas; an
            exception it raises stops the work.
    """
    steps = DEFAULT_STEPS if steps is None else steps
    plan = []
    for stage in backbone.spec.stages:
        means = gallery_means(backbone, stage.last)
        channels = np.argsort(-means.mean(axis=0), kind="stable")[:per_stage]
        plan.append((stage.index, stage.last, [int(c) for c in channels], means.max(axis=0)))
    total = steps * sum(len(channels) for *_, channels, _ in plan)
    rows: dict[int, tuple[AtlasEntry, ...]] = {}
    done = 0
    for stage, layer, channels, gallery_max in plan:

        def stage_progress(d: int, _total: int, before: int = done) -> None:
            if progress is not None:
                progress(before + d, total)

        visuals = visualize_channels(
            backbone, layer, channels, size=size, steps=steps, seed=seed, progress=stage_progress
        )
        done += steps * len(channels)
        rows[stage] = tuple(
            AtlasEntry(
                stage, layer.name, v.channel, v.image, v.activation, float(gallery_max[v.channel]), seed
            )
            for v in visuals
        )
    return Atlas(backbone.name, backbone.weights, size, steps, rows)


def save_atlas(backbone: Backbone, atlas: Atlas, folder: Path) -> Path:
    """Writes the atlas's pictures as JPEGs and ``manifest.json`` into ``folder``; returns the manifest's path.

    The manifest records the sha256 of ``backbone``'s weights file, and each ``activation`` measured
    again on the JPEG as written (what a reader of the atlas will see).
    """
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for stage, row in atlas.rows.items():
        for e in row:
            name = f"stage{stage}-{e.layer}-c{e.channel}.jpg"
            e.image.save(folder / name, "JPEG", quality=JPEG_QUALITY)
            with Image.open(folder / name) as written:
                (activation,) = channel_means(backbone, e.layer, [written.convert("RGB")], [e.channel])
            entries.append(
                {
                    "stage": stage,
                    "layer": e.layer,
                    "channel": e.channel,
                    "seed": e.seed,
                    "steps": atlas.steps,
                    "size": atlas.size,
                    "activation": activation,
                    "gallery_max": e.gallery_max,
                    "file": name,
                }
            )
    manifest = {
        "backbone": atlas.backbone,
        "weights": atlas.weights if atlas.weights in WEIGHT_CHOICES else Path(atlas.weights).name,
        "weights_sha256": atlas_sha256(backbone),
        "entries": entries,
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return path


def weights_file(backbone: Backbone) -> Path | None:
    """The file the backbone's weights came from: the bundled file, a checkpoint, or None (untrained, or
    pretrained weights that are not bundled)."""
    if backbone.weights == "pretrained":
        return weights_mod.bundled_path(backbone.spec)
    if backbone.weights == "untrained":
        return None
    return Path(backbone.weights)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, computed once per (path, size, modification time)."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_problem(manifest: Mapping[str, Any], backbone: Backbone) -> str | None:
    """Why a manifest does not describe this backbone's weights, in one sentence; None when it does."""
    if manifest.get("backbone") != backbone.name:
        return f"the atlas is of {manifest.get('backbone')!r}, not {backbone.name!r}"
    path = weights_file(backbone)
    if path is None or not path.is_file():
        return f"the atlas was made with other weights than {backbone.weights!r}"
    if manifest.get("weights_sha256") != file_sha256(path):
        return f"the atlas was made with another weights file than {path.name}"
    return None


def load_atlas(backbone: Backbone, *, root: Path = ATLAS_DIR) -> Atlas | None:
    """The shipped atlas of this backbone when it was made with exactly these weights, else None."""
    path = root / backbone.name / MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest_problem(manifest, backbone) is not None:
        return None
    return read_atlas(path)


def read_atlas(path: Path) -> Atlas:
    """The atlas described by the manifest at ``path`` (no check against any weights)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries = manifest["entries"]
    rows: dict[int, list[AtlasEntry]] = {}
    for e in entries:
        with Image.open(path.parent / e["file"]) as image:
            picture = image.convert("RGB")
        rows.setdefault(int(e["stage"]), []).append(
            AtlasEntry(
                int(e["stage"]),
                e["layer"],
                int(e["channel"]),
                picture,
                float(e["activation"]),
                float(e["gallery_max"]),
                int(e["seed"]),
            )
        )
    first = entries[0] if entries else {"size": 0, "steps": 0}
    return Atlas(
        manifest["backbone"],
        manifest["weights"],
        int(first["size"]),
        int(first["steps"]),
        {stage: tuple(row) for stage, row in sorted(rows.items())},
    )


def atlas_sha256(backbone: Backbone) -> str | None:
    """The hash to record in a manifest for this backbone's weights (None when they have no file)."""
    path = weights_file(backbone)
    return file_sha256(path) if path is not None and path.is_file() else None
