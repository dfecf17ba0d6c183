"""backbone-viz: see inside a CNN backbone, layer by layer, from a notebook, a terminal or the web app.

Example::

    import backbone_viz as bv
    bb = bv.load_backbone("efficientnet_lite0")          # bundled ImageNet weights, no network needed
    res = bv.analyze(bb, bv.load_image("assets/samples/cat.jpg"))
    res.predictions[0].label, res.activations["blocks.2.1"].shape, res.gradcam["bn2"].shape
"""

from .ablation import AblationRow, block_ablation
from .analysis import (
    Activations,
    AnalysisResult,
    GradCam,
    Prediction,
    analyze,
    analyze_parts,
    layer_activations,
    layer_gradcam,
    upsample,
)
from .atlas import Atlas, AtlasEntry, compute_atlas, gallery_maps, load_atlas
from .attributions import Attribution, attribute
from .backbones import Backbone, load_backbone
from .blocks import BlockSpec, PartSpec
from .contributions import Contributions, head_contributions
from .device import default_device, describe_device, resolve_device
from .errors import AttributionError, BackboneVizError, HeadError, ImageError, KnockoutError, WeightsError
from .featurevis import FeatureVis, visualize_channel, visualize_channels
from .head import Head, check_fits
from .images import load_image
from .inside import InsideBlock, Part, inside_block, list_blocks
from .patches import Patch, top_patches
from .pyramid import PyramidLevel, feature_pyramid
from .samples import example_set
from .sanity import SanityCheck, SanityStep, sanity_check
from .specs import BackboneSpec, LayerSpec, StageSpec, get_spec, list_backbones
from .transfer import LinearHead, LooPrediction, fit_head

__all__ = [
    "AblationRow",
    "Activations",
    "AnalysisResult",
    "Atlas",
    "AtlasEntry",
    "Attribution",
    "AttributionError",
    "Backbone",
    "BackboneSpec",
    "BackboneVizError",
    "BlockSpec",
    "Contributions",
    "FeatureVis",
    "GradCam",
    "Head",
    "HeadError",
    "ImageError",
    "InsideBlock",
    "KnockoutError",
    "LayerSpec",
    "LinearHead",
    "LooPrediction",
    "Part",
    "PartSpec",
    "Patch",
    "Prediction",
    "PyramidLevel",
    "SanityCheck",
    "SanityStep",
    "StageSpec",
    "WeightsError",
    "analyze",
    "analyze_parts",
    "attribute",
    "block_ablation",
    "check_fits",
    "compute_atlas",
    "gallery_maps",
    "default_device",
    "describe_device",
    "example_set",
    "feature_pyramid",
    "fit_head",
    "get_spec",
    "head_contributions",
    "inside_block",
    "layer_activations",
    "layer_gradcam",
    "list_backbones",
    "list_blocks",
    "load_atlas",
    "load_backbone",
    "load_image",
    "resolve_device",
    "sanity_check",
    "top_patches",
    "upsample",
    "visualize_channel",
    "visualize_channels",
]
__version__ = "0.1.0"
