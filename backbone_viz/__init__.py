"""backbone-viz: see inside a CNN backbone, layer by layer, from a notebook, a terminal or the web app.

Example::

    import backbone_viz as bv
    bb = bv.load_backbone("efficientnet_lite0")          # bundled ImageNet weights, no network needed
    res = bv.analyze(bb, bv.load_image("assets/samples/cat.jpg"))
    res.predictions[0].label, res.activations["blocks.2.1"].shape, res.gradcam["bn2"].shape
"""

from .analysis import AnalysisResult, Prediction, analyze, upsample
from .backbones import Backbone, default_device, load_backbone
from .errors import BackboneVizError, HeadError, ImageError, WeightsError
from .heads import (
    Contributions,
    LinearHead,
    LooPrediction,
    PyramidLevel,
    example_set,
    feature_pyramid,
    fit_head,
    head_contributions,
)
from .images import load_image
from .specs import BackboneSpec, LayerSpec, StageSpec, get_spec, list_backbones

__all__ = [
    "AnalysisResult",
    "Backbone",
    "BackboneSpec",
    "BackboneVizError",
    "Contributions",
    "HeadError",
    "ImageError",
    "LayerSpec",
    "LinearHead",
    "LooPrediction",
    "Prediction",
    "PyramidLevel",
    "StageSpec",
    "WeightsError",
    "analyze",
    "default_device",
    "example_set",
    "feature_pyramid",
    "fit_head",
    "get_spec",
    "head_contributions",
    "list_backbones",
    "load_backbone",
    "load_image",
    "upsample",
]
__version__ = "0.1.0"
