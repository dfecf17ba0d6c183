"""backbone-viz: see inside a CNN backbone, layer by layer, from a notebook, a terminal or the web app.

Example::

    import backbone_viz as bv
    bb = bv.load_backbone("efficientnet_lite0")          # bundled ImageNet weights, no network needed
    res = bv.analyze(bb, bv.load_image("assets/samples/cat.jpg"))
    res.predictions[0].label, res.activations["blocks.2.1"].shape, res.gradcam["bn2"].shape

Importing the package loads nothing heavy: each name below is imported from its module on first use
(PEP 562, as scipy does), so the command line's ``--help`` and the class server's supervisor start without
torch, and a notebook that never runs the sanity check never loads scipy (nor captum, scikit-learn...).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

#: Every public name, by the module that defines it.
_MODULES: dict[str, tuple[str, ...]] = {
    "probes.ablation": (
        "AblationRow",
        "block_ablation",
    ),
    "explain.analysis": (
        "Activations",
        "AnalysisResult",
        "GradCam",
        "Prediction",
        "analyze",
        "analyze_parts",
        "layer_activations",
        "layer_gradcam",
        "upsample",
    ),
    "probes.atlas": (
        "Atlas",
        "AtlasEntry",
        "compute_atlas",
        "gallery_maps",
        "load_atlas",
    ),
    "explain.attributions": (
        "Attribution",
        "attribute",
    ),
    "explain.cams": (
        "CamMethod",
        "get_cam",
        "list_cams",
        "register_cam",
    ),
    "explain.cam_family": (
        "CamFamily",
        "cam_family",
    ),
    "explain.score_cam": (
        "ScoreCam",
        "ScoreCamCost",
        "score_cam",
        "score_cam_cost",
    ),
    "core.backbones": (
        "Backbone",
        "load_backbone",
    ),
    "core.blocks": (
        "BlockSpec",
        "PartSpec",
    ),
    "explain.faithfulness": (
        "DeletionInsertion",
        "PixelCurve",
        "RankedMap",
        "Ranking",
        "Road",
        "curves_cost",
        "deletion_insertion",
        "random_map",
        "rank_maps",
        "road",
        "sobel_map",
    ),
    "explain.occlusion": (
        "Occlusion",
        "occlusion",
        "occlusion_cost",
    ),
    "explain.contributions": (
        "Contributions",
        "head_contributions",
    ),
    "core.device": (
        "default_device",
        "describe_device",
        "resolve_device",
    ),
    "errors": (
        "AttributionError",
        "BackboneVizError",
        "BoxError",
        "CamError",
        "DetectError",
        "HeadError",
        "ImageError",
        "KnockoutError",
        "PerturbationError",
        "SegmentError",
        "WeightsError",
    ),
    "probes.featurevis": (
        "FeatureVis",
        "visualize_channel",
        "visualize_channels",
    ),
    "heads.cam_box": (
        "CamBox",
        "box_from_cam",
        "box_iou",
        "boxes_by_stage",
        "mask_box",
        "mask_iou",
    ),
    "heads.detect": (
        "Detections",
        "Detector",
        "detect",
        "fit_detector",
    ),
    "heads.examples": (
        "Composite",
        "composite",
        "paste_examples",
    ),
    "heads.head": (
        "Head",
        "check_fits",
    ),
    "files.images": ("load_image",),
    "probes.inside": (
        "InsideBlock",
        "Part",
        "inside_block",
        "list_blocks",
    ),
    "probes.patches": (
        "Patch",
        "patches_from_maps",
        "top_patches",
    ),
    "heads.pyramid": (
        "PyramidLevel",
        "feature_pyramid",
    ),
    "files.samples": ("example_set",),
    "heads.segment": (
        "SegmentHead",
        "Segmentation",
        "apply_segmenter",
        "fit_segmenter",
    ),
    "explain.sanity": (
        "SanityCheck",
        "SanityStep",
        "sanity_check",
    ),
    "dense.cka": ("linear_cka",),
    "dense.inside": (
        "BackboneComparison",
        "ClassifierTrunk",
        "StageComparison",
        "backbone_state",
        "classifier_trunk",
        "compare_backbones",
        "dense_stage_maps",
        "frozen_stages",
    ),
    "dense.looked": (
        "LookSource",
        "LookedMaps",
        "LookedRegion",
        "look_sources",
        "renormalise_in_boxes",
        "where_it_looked",
    ),
    "dense.models": (
        "DenseModel",
        "DenseResult",
        "detect_objects",
        "draw_result",
        "load_dense",
        "missing_weights_message",
    ),
    "dense.specs": (
        "DenseSpec",
        "get_dense_spec",
        "list_dense",
    ),
    "core.specs": (
        "BackboneSpec",
        "LayerSpec",
        "StageSpec",
    ),
    "zoo": (
        "get_spec",
        "list_backbones",
    ),
    "heads.transfer": (
        "LinearHead",
        "LooPrediction",
        "fit_head",
    ),
}
_OWNER = {name: module for module, names in _MODULES.items() for name in names}
#: The package's modules and sub-packages, importable as attributes too (``bv.render``, ``bv.explain``...).
_SUBMODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

__all__ = sorted(_OWNER)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _OWNER:
        value = getattr(importlib.import_module(f".{_OWNER[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
