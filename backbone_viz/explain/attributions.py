"""Pixel-level attributions through captum: which pixels of the crop count for a class, and how.

Grad-CAM answers "where" at the coarse resolution of a stage; the methods here answer at the
resolution of the input, one value per pixel and colour channel:

* ``"saliency"``: the gradient of the class score with respect to the input (Simonyan et al. 2013);
* ``"input_x_gradient"``: the input times that gradient (Shrikumar et al. 2016);
* ``"integrated_gradients"``: the gradient averaged along a straight path from a baseline picture to
  the input, times the difference (Sundararajan et al. 2017); captum's convergence delta says how far
  the attributions' sum is from the score difference they should add up to;
* ``"smoothgrad"``: the gradient averaged over noisy copies of the input (Smilkov et al. 2017; captum's
  ``NoiseTunnel`` over ``Saliency``);
* ``"guided_backprop"``: the gradient where every rectifier also stops negative gradients on the way
  back (Springenberg et al. 2015).

The shared model is never touched. The first four only need the gradient with respect to the input:
captum runs them on a forward function that calls :meth:`Backbone.extract` (the hook-free traced graph),
and ``torch.autograd.grad`` with respect to the input writes no parameter ``.grad``.

Guided Backprop: a traced variant, not a private copy of the model. captum's ``GuidedBackprop`` registers
backward hooks on the model's ``nn.ReLU`` modules, which would fire in every other session's backward
pass on the shared model, and it overrides ``nn.ReLU`` modules only (captum 0.9): EfficientNet-Lite0's
``ReLU6`` inside timm's ``BatchNormAct2d`` and GoogLeNet's functional ``F.relu`` would silently stay
plain. A private deep copy per backbone would cost the model's memory again (VGG-16: 550 MB). Instead,
the logits' traced graph (:meth:`Backbone.extractor`) is copied and every rectifier node is replaced by
:func:`guided_rectify`, an autograd function whose backward lets a gradient through only where it is
positive and where the rectifier passed its input on. ``BatchNormAct2d``, a leaf of the trace, becomes
its batch norm (read from the same buffers), its dropout and a guided rectifier. The copy refers to the
model's own parameters (no copy), has no state and no hooks, and is made once per backbone. A backbone
with an activation that cannot be guided this way (SiLU, GELU, a leaf module hiding one...) is refused
with an :class:`~backbone_viz.errors.AttributionError` that names it, rather than giving an ordinary
gradient under the name of Guided Backprop.

SmoothGrad's noise comes from a ``torch.Generator`` of its own with a fixed seed, never from the global
random state other threads draw from, so a result is the same in every thread and every run.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency
from PIL import Image
from timm.layers import BatchNormAct2d
from torch import fx, nn

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.graph import LOGITS
from backbone_viz.core.registry import Registry
from backbone_viz.core.runs import runs_model
from backbone_viz.errors import AttributionError
from backbone_viz.explain.analysis import Prediction, frozen_numpy, ranked_classes, resolve_target

#: Integrated Gradients' default step count: the smallest of 32, 64, 128, 256 that kept captum's
#: convergence delta under 10% of the attributions' sum on every sample picture with EfficientNet-Lite0
#: pretrained (``python bench/attributions.py``; with 64 steps the cat's was 14%).
IG_STEPS = 128
#: SmoothGrad's defaults: noisy copies, and the noise's standard deviation as a share of the input's
#: range (Smilkov et al. found 10-20% best), and the seed of its own generator.
SMOOTHGRAD_SAMPLES = 16
SMOOTHGRAD_NOISE = 0.15
SMOOTHGRAD_SEED = 0
#: Inputs per forward pass inside Integrated Gradients and SmoothGrad: bounds the memory of one call
#: (ResNet-50 keeps ~100 MB of activations per input for the backward pass).
BATCH = 8

#: Integrated Gradients' baselines: a black picture, or the mean colour of the training pictures (zero
#: after the model's normalisation).
BASELINES = ("black", "mean")

class PixelMethod:
    """A pixel attribution method: one class each, registered (as captum's ``Attribution`` classes carry
    their own name and properties, so that a page can list them from the classes themselves).

    Class attributes:
        name: its identifier (``"integrated_gradients"``).
        title: its display name (``"Integrated Gradients"``).
        sentence: what it computes, in one sentence for a learner.
        slow: it runs the model many times (a page asks before it runs on a large backbone).
        has_convergence_delta: it reports how far its attributions are from adding up (captum's name).
        options: its options with their defaults.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    sentence: ClassVar[str]
    slow: ClassVar[bool] = False
    has_convergence_delta: ClassVar[bool] = False
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def check(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """The options, checked and in their types.

        Raises:
            ValueError: a value out of range.
        """
        return chosen

    def forward(self, backbone: Backbone) -> Callable[[torch.Tensor], torch.Tensor]:
        """The function from the input (N, 3, H, W) to the logits (N, K) whose gradient it reads."""
        return _plain_forward(backbone)

    def run(
        self, backbone: Backbone, forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: int,
        chosen: Mapping[str, Any],
    ) -> tuple[torch.Tensor, float | None]:  # fmt: skip
        """The attribution (1, 3, H, W) of ``target``'s score to ``x`` (which requires grad), and the
        convergence delta where the method has one."""
        raise NotImplementedError


_METHODS: Registry[PixelMethod] = Registry("attribution method")


def register_method(cls: type[PixelMethod]) -> type[PixelMethod]:
    """Adds a method (a class decorator); its place is its place on the page.

    Raises:
        ValueError: a method of that name is registered already.
    """
    _METHODS.add(cls.name, cls())
    return cls


def get_method(name: str) -> PixelMethod:
    """A registered method by name.

    Raises:
        ValueError: an unknown name; the message lists the choices.
    """
    return _METHODS.get(name)


@register_method
class SaliencyMethod(PixelMethod):
    name = "saliency"
    title = "Saliency (gradient)"
    sentence = "The gradient: how much the class score would change if this pixel changed a little."

    def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
        return Saliency(forward).attribute(x, target=target, abs=False), None


@register_method
class InputXGradientMethod(PixelMethod):
    name = "input_x_gradient"
    title = "Input × gradient"
    sentence = (
        "The gradient times the pixel's own value: a pixel counts if it is both sensitive and strong."
    )

    def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
        return InputXGradient(forward).attribute(x, target=target), None


@register_method
class IntegratedGradientsMethod(PixelMethod):
    name = "integrated_gradients"
    title = "Integrated Gradients"
    sentence = (
        "The gradient averaged along a path from a black picture to yours, times the difference: the "
        "values add up to the score's change from black to your picture."
    )
    slow = True
    has_convergence_delta = True
    options = MappingProxyType({"steps": IG_STEPS, "baseline": "black"})

    def check(self, chosen: dict[str, Any]) -> dict[str, Any]:
        if int(chosen["steps"]) < 1:
            raise ValueError(f"Integrated Gradients needs at least 1 step, not {chosen['steps']}")
        if chosen["baseline"] not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {chosen['baseline']!r}")
        chosen["steps"] = int(chosen["steps"])
        return chosen

    def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
        channels, deltas = IntegratedGradients(forward).attribute(
            x,
            baselines=baseline(backbone, chosen["baseline"]),
            target=target,
            n_steps=chosen["steps"],
            internal_batch_size=BATCH,
            return_convergence_delta=True,
        )
        return channels, float(deltas[0])


@register_method
class SmoothGradMethod(PixelMethod):
    name = "smoothgrad"
    title = "SmoothGrad"
    sentence = (
        "The gradient averaged over noisy copies of your picture, so that the speckles of a single "
        "gradient cancel out."
    )
    slow = True
    options = MappingProxyType({"samples": SMOOTHGRAD_SAMPLES, "noise": SMOOTHGRAD_NOISE, "seed": SMOOTHGRAD_SEED})

    def check(self, chosen: dict[str, Any]) -> dict[str, Any]:
        if int(chosen["samples"]) < 1 or not float(chosen["noise"]) > 0:
            raise ValueError(f"SmoothGrad needs samples >= 1 and noise > 0, not {chosen}")
        chosen.update(samples=int(chosen["samples"]), noise=float(chosen["noise"]), seed=int(chosen["seed"]))
        return chosen

    def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
        generator = torch.Generator().manual_seed(chosen["seed"])
        stdev = chosen["noise"] * float(x.detach().max() - x.detach().min())
        channels = _SeededNoiseTunnel(Saliency(forward), generator).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=chosen["samples"],
            nt_samples_batch_size=BATCH,
            stdevs=stdev,
            target=target,
            abs=False,
        )
        return channels, None


@register_method
class GuidedBackpropMethod(PixelMethod):
    name = "guided_backprop"
    title = "Guided Backprop"
    sentence = (
        "The gradient where every ReLU also stops the negative gradients on the way back: only what "
        "pushes the score up gets through."
    )

    def forward(self, backbone: Backbone) -> Callable[[torch.Tensor], torch.Tensor]:
        return _guided_forward(backbone)

    def run(self, backbone, forward, x, target, chosen):  # type: ignore[no-untyped-def]
        return Saliency(forward).attribute(x, target=target, abs=False), None


class _Titles(Mapping[str, str]):
    """The registered methods' titles by name, in the page's order, read from the registry at each use."""

    def __getitem__(self, name: str) -> str:
        if name not in _METHODS:
            raise KeyError(name)
        return _METHODS.get(name).title

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in _METHODS])

    def __len__(self) -> int:
        return len(_METHODS)


#: The methods, by name, with their display titles, in the page's order.
METHODS: Mapping[str, str] = _Titles()


@dataclass(frozen=True, eq=False)
class Attribution:
    """One method's attribution of one class score to the pixels of the crop: read-only CPU arrays.

    Attributes:
        backbone: spec name of the backbone.
        weights: its weights.
        method: a key of :data:`METHODS`.
        options: the options it ran with, defaults filled in (``{"steps": 128, "baseline": "black"}``).
        target: the class whose score is explained, with its probability.
        channels: (3, H, W) float32, the raw attribution of each colour channel of each input pixel
            (in the units of the model's normalised input).
        map: (H, W) float32, ``channels`` summed over the colour channels, signed. For Integrated
            Gradients, ``map.sum()`` is the score difference from the baseline, up to ``delta``.
        strength: (H, W) float32, the absolute values of ``channels`` summed over the colour channels:
            how much each pixel counts, whichever way. What the page draws and the sanity check compares.
        delta: Integrated Gradients' convergence delta (sum of attributions minus the score difference
            from the baseline); None for the other methods.
        input_image: the crop the model saw, RGB PIL image (H x W).
    """

    backbone: str
    weights: str
    method: str
    options: Mapping[str, Any]
    target: Prediction
    channels: np.ndarray = field(repr=False)
    map: np.ndarray = field(repr=False)
    strength: np.ndarray = field(repr=False)
    delta: float | None
    input_image: Image.Image = field(repr=False)

    @property
    def relative_delta(self) -> float | None:
        """``|delta|`` as a share of ``|map.sum()|`` (Integrated Gradients only)."""
        if self.delta is None:
            return None
        total = abs(float(self.map.sum(dtype=np.float64)))
        return abs(self.delta) / total if total > 0 else float("inf")


@runs_model
def attribute(
    backbone: Backbone,
    image: Image.Image,
    method: str,
    target: int | str | None = None,
    **options: Any,
) -> Attribution:
    """Attributes a class score of the picture to its pixels with one method.

    Args:
        backbone: from :func:`backbone_viz.load_backbone`; it is not modified.
        image: an RGB PIL image.
        method: a key of :data:`METHODS`.
        target: the class explained: None (the top-1), a class index or a label.
        **options: ``integrated_gradients``: ``steps`` (default :data:`IG_STEPS`), ``baseline``
            (``"black"`` or ``"mean"``); ``smoothgrad``: ``samples`` (default 16), ``noise`` (standard
            deviation as a share of the input's range, default 0.15), ``seed``. No options for the others.

    Returns:
        A frozen :class:`Attribution`.

    Raises:
        AttributionError: Guided Backprop on a backbone whose activations cannot be guided (the
            message says which).
        BackboneVizError: a target the head does not have.
        ValueError: an unknown method or option.
    """
    chosen = resolve_options(method, options)
    chosen_method = get_method(method)
    crop = backbone.crop(image)
    x = backbone.to_tensor(crop)
    forward = chosen_method.forward(backbone)
    with torch.no_grad():
        probabilities, ranked = ranked_classes(forward(x))
    index = resolve_target(target, backbone.categories, ranked)
    x.requires_grad_(True)  # a fresh tensor of this call; captum would set it and warn
    with torch.enable_grad():
        channels, delta = chosen_method.run(backbone, forward, x, index, chosen)
    c = channels.detach()[0]
    return Attribution(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        method=method,
        options=MappingProxyType(chosen),
        target=Prediction(index, backbone.categories[index], float(probabilities[index])),
        channels=frozen_numpy(c),
        map=frozen_numpy(c.sum(dim=0)),
        strength=frozen_numpy(c.abs().sum(dim=0)),
        delta=delta,
        input_image=crop,
    )


def resolve_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A method's options with its defaults filled in.

    Raises:
        ValueError: an unknown method, an option the method does not take, or a value out of range.
    """
    chosen_method = get_method(method)
    defaults = chosen_method.options
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        takes = ", ".join(defaults) or "no options"
        raise ValueError(f"{method} takes {takes}, not {', '.join(unknown)}")
    return chosen_method.check({**defaults, **options})


def baseline(backbone: Backbone, kind: str) -> torch.Tensor:
    """Integrated Gradients' starting picture as the model's input, (1, 3, H, W)."""
    size = backbone.preprocessing.crop
    if kind == "mean":
        return torch.zeros(1, 3, size, size, device=backbone.device)
    return backbone.to_tensor(Image.new("RGB", (size, size)))


class _SeededNoiseTunnel(NoiseTunnel):
    """captum's ``NoiseTunnel`` drawing its noise from its own generator, not the global random state
    (``torch.normal`` in ``NoiseTunnel._add_noise_to_input``, captum 0.9).

    The generator is a CPU one and the noise is drawn on the CPU, then moved to the input's device: a
    CUDA generator draws other numbers from the same seed, and a GPU's SmoothGrad must be the CPU's.
    """

    def __init__(self, method: Saliency, generator: torch.Generator) -> None:
        super().__init__(method)
        self._generator = generator

    def _add_noise_to_input(  # type: ignore[override]
        self, input: torch.Tensor, stdev: float, nt_samples_partition: int
    ) -> torch.Tensor:
        expanded = input.repeat_interleave(nt_samples_partition, dim=0)
        noise = torch.randn(expanded.shape, generator=self._generator, dtype=input.dtype).to(input.device)
        return expanded + stdev * noise


def _plain_forward(backbone: Backbone) -> Callable[[torch.Tensor], torch.Tensor]:
    """The logits (N, K) through the backbone's hook-free traced graph."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return backbone.extract(x, [LOGITS])[LOGITS]

    return forward


# ------------------------------------------------------------------------------------- guided backprop


class _GuidedRectifier(torch.autograd.Function):
    """``clamp(x, low, high)`` forward; backward passes a gradient only where it is positive AND where
    the input lay strictly between ``low`` and ``high`` (the rectifier's own gradient mask)."""

    @staticmethod
    def forward(x: torch.Tensor, low: float, high: float | None) -> torch.Tensor:
        return x.clamp(min=low, max=high)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.low, ctx.high = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        passes = x > ctx.low
        if ctx.high is not None:
            passes = passes & (x < ctx.high)
        return grad.clamp(min=0) * passes, None, None


def guided_rectify(x: torch.Tensor, low: float = 0.0, high: float | None = None) -> torch.Tensor:
    """A rectifier (ReLU: ``high=None``; ReLU6: ``high=6``) whose backward is Guided Backprop's."""
    return _GuidedRectifier.apply(x, low, high)


# Nonlinearities that guided backprop would have to treat and cannot: refused where found.
_OTHER_ACTIVATIONS = (
    nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU, nn.ELU, nn.SELU,
    nn.CELU, nn.Mish, nn.PReLU, nn.Softplus, nn.RReLU, nn.GLU,
)  # fmt: skip
_RELU_FUNCTIONS = {torch.relu, F.relu}
_OTHER_FUNCTIONS = {
    F.silu, F.gelu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.hardswish, F.hardsigmoid, F.leaky_relu,
    F.elu, F.selu, F.mish, F.softplus, F.hardtanh, torch.clamp,
}  # fmt: skip
_OTHER_METHODS = {"sigmoid", "tanh", "clamp", "clip", "hardtanh"}

_GUIDED: weakref.WeakKeyDictionary[Backbone, fx.GraphModule] = weakref.WeakKeyDictionary()
_GUIDED_LOCK = threading.Lock()


def guided_refusal(backbone: Backbone) -> str | None:
    """Why Guided Backprop cannot be done right on ``backbone``, in one sentence, or None when it can."""
    try:
        _guided_module(backbone)
    except AttributionError as error:
        return error.message
    return None


def _guided_forward(backbone: Backbone) -> Callable[[torch.Tensor], torch.Tensor]:
    """The logits (N, K) through the backbone's guided graph (made on first use, then kept)."""
    module = _guided_module(backbone)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return next(iter(module(x).values()))

    return forward


def _guided_module(backbone: Backbone) -> fx.GraphModule:
    """The logits' traced graph with every rectifier guided; one per backbone, kept while it lives.

    Raises:
        AttributionError: an activation that cannot be guided; the message names it.
    """
    with _GUIDED_LOCK:
        module = _GUIDED.get(backbone)
    if module is not None:
        return module
    plain = backbone.extractor([LOGITS])
    graph = fx.Graph()
    mapping: dict[fx.Node, fx.Node] = {}
    output = graph.graph_copy(plain.graph, mapping)
    graph.output(output)
    modules = dict(plain.named_modules())
    for node in list(graph.nodes):
        replacement = _guided_node(graph, node, modules, backbone.spec.title)
        if replacement is not None:
            node.replace_all_uses_with(replacement)
            graph.erase_node(node)
    module = fx.GraphModule(plain, graph, class_name=type(backbone.model).__name__ + "Guided")
    module.graph.eliminate_dead_code()
    module.recompile()
    module.eval()
    with _GUIDED_LOCK:
        return _GUIDED.setdefault(backbone, module)


def _guided_node(graph: fx.Graph, node: fx.Node, modules: dict[str, nn.Module], title: str) -> fx.Node | None:
    """The guided replacement of one node, None when the node is no rectifier.

    Raises:
        AttributionError: the node is, or hides, an activation that cannot be guided.
    """
    if node.op == "call_function":
        if node.target in _RELU_FUNCTIONS:
            return _insert(graph, node, node.args[0], 0.0, None)
        if node.target is F.relu6:
            return _insert(graph, node, node.args[0], 0.0, 6.0)
        if node.target in _OTHER_FUNCTIONS:
            raise _refuse(title, f"its {getattr(node.target, '__name__', node.target)} function")
        return None
    if node.op == "call_method":
        if node.target == "relu":
            return _insert(graph, node, node.args[0], 0.0, None)
        if node.target in _OTHER_METHODS:
            raise _refuse(title, f"its .{node.target}() call")
        return None
    if node.op != "call_module":
        return None
    module = modules[node.target]
    bounds = _rectifier_bounds(module)
    if bounds is not None:
        return _insert(graph, node, node.args[0], *bounds)
    if isinstance(module, BatchNormAct2d):
        return _guided_batchnorm_act(graph, node, module, title)
    for name, inner in module.named_modules():
        if (
            isinstance(inner, _OTHER_ACTIVATIONS)
            or (isinstance(inner, nn.Hardtanh | nn.ReLU) and _rectifier_bounds(inner) is None)
            or (name and _rectifier_bounds(inner) is not None)
        ):
            what = type(inner).__name__
            where = f"{node.target}.{name}" if name else node.target
            raise _refuse(title, f"the {what} of {where}")
    return None


def _rectifier_bounds(module: nn.Module) -> tuple[float, float | None] | None:
    """``(low, high)`` of a rectifier module (ReLU, ReLU6, Hardtanh from 0), None for anything else."""
    if type(module) is nn.ReLU:
        return 0.0, None
    if isinstance(module, nn.Hardtanh) and module.min_val == 0.0:  # nn.ReLU6 is a Hardtanh(0, 6)
        return 0.0, float(module.max_val)
    return None


def _guided_batchnorm_act(graph: fx.Graph, node: fx.Node, module: BatchNormAct2d, title: str) -> fx.Node:
    """timm's ``BatchNormAct2d`` (a leaf of the trace) as batch norm, dropout, guided rectifier.

    The batch norm reads the module's own buffers and parameters (eval mode: running statistics), as
    ``BatchNormAct2d.forward`` does outside training.
    """
    if module.running_mean is None or module.running_var is None:
        raise _refuse(title, f"the batch norm of {node.target}, which has no running statistics")
    bounds = _rectifier_bounds(module.act)
    if bounds is None and not isinstance(module.act, nn.Identity):
        raise _refuse(title, f"the {type(module.act).__name__} of {node.target}.act")
    t = node.target
    with graph.inserting_before(node):
        stats = [
            graph.get_attr(f"{t}.{name}") if getattr(module, name) is not None else None
            for name in ("running_mean", "running_var", "weight", "bias")
        ]
        x = graph.call_function(F.batch_norm, (node.args[0], *stats, False, 0.0, module.eps))
        x = graph.call_module(f"{t}.drop", (x,))
        if bounds is not None:
            x = graph.call_function(guided_rectify, (x, *bounds))
    return x


def _insert(graph: fx.Graph, node: fx.Node, x: fx.Node, low: float, high: float | None) -> fx.Node:
    with graph.inserting_before(node):
        return graph.call_function(guided_rectify, (x, low, high))


def _refuse(title: str, what: str) -> AttributionError:
    return AttributionError(
        f"Guided Backprop cannot be done right on {title}: {what} is not a ReLU, and Guided Backprop only "
        "knows how to treat ReLUs.",
        "Pick another method, or a backbone whose activations are all ReLUs.",
    )
