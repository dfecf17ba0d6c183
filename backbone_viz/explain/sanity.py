"""The sanity check of Adebayo et al.: does an attribution map change when the weights go random?

"Sanity Checks for Saliency Maps" (Adebayo et al., NeurIPS 2018) re-initializes a trained network's
layers one group at a time, from the top (the head) down to the stem, and draws the attribution map again
after each step. A map that explains what the network learned must change as its weights are destroyed;
a map that stays the same shows the picture's edges, whatever the network does. They found Guided
Backprop nearly unchanged to the very end, plain gradients and Integrated Gradients changed.

:func:`sanity_check` does the cascade on a PRIVATE copy of the model (``copy.deepcopy``, wrapped as a
:class:`~backbone_viz.Backbone` so that every attribution runs hook-free as on the shared one); the
shared model is never modified. The groups are the head, then the spec's stages from the last to the
first. A re-initialized layer gets new values as PyTorch's own ``reset_parameters`` would draw them
(convolutions and linear layers: Kaiming-uniform weights and uniform biases; batch norms: weight 1,
bias 0, running mean 0, running variance 1), from a ``torch.Generator`` with a fixed seed, never from the
global random state other threads use: the same check gives the same maps every time. Each step's map is
compared with the trained network's by Spearman's rank correlation of the absolute values
(:attr:`Attribution.strength`), as in the paper. :func:`verdict` turns a check's numbers into
passes or fails by two stated limits (:data:`HEAD_LIMIT`, :data:`RANDOM_LIMIT`), so that every place
that shows a check's result judges it the same way.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from scipy import stats
from torch import nn

from backbone_viz.core.backbones import Backbone
from backbone_viz.core.runs import runs_model
from backbone_viz.explain.analysis import Prediction
from backbone_viz.explain.attributions import Attribution, attribute, resolve_options

#: Seed of the generator that draws the random weights.
SANITY_SEED = 0

#: ``progress(done, total)``, called after each step's map.
SanityProgress = Callable[[int, int], None]

#: A map FAILS when it keeps at least this rank correlation with the trained map once only the head is
#: random. The head is what turns the features into a class: a map of "what counts for this class" that
#: stays the same without it cannot come from the class's evidence. Adebayo et al. (2018) saw Guided
#: Backprop stay visually identical at this step; on the bundled EfficientNet-Lite0 and the 7 sample
#: pictures it keeps 0.99 to 1.00, while the other methods keep 0.18 to 0.81 (medians 0.39 to 0.70), so
#: 0.9 separates "unchanged" from "changed" with room on both sides.
HEAD_LIMIT = 0.9
#: A map FAILS when it keeps at least this rank correlation once EVERY weight is random: nothing learned
#: is left, so what still matches the trained map comes from the picture itself (its edges and
#: brightness). Spearman's 0.5 is the usual line of a strong correlation; the paper warned that methods
#: that multiply by the input (Integrated Gradients, Input × gradient) keep the input's look this way.
#: On the bundled backbone the medians are 0.14 to 0.35, and 0.56 for Integrated Gradients.
RANDOM_LIMIT = 0.5


@dataclass(frozen=True)
class SanityStep:
    """One step of the cascade: the map once everything up to ``label`` is random.

    Attributes:
        label: ``"trained"`` (nothing random yet), ``"head"``, then ``"stage N"`` down to ``"stage 1"``.
        random: every group random at this step, in the order they were re-initialized.
        attribution: the map of the partly random network, for the trained network's target class.
        correlation: Spearman's rank correlation of ``attribution.strength`` with the trained map's
            (1.0 for the trained step; NaN where a map is constant, which ranks cannot compare).
    """

    label: str
    random: tuple[str, ...]
    attribution: Attribution = field(repr=False)
    correlation: float


@dataclass(frozen=True)
class SanityCheck:
    """The cascading randomization of one method on one picture.

    Attributes:
        backbone: spec name; weights: its weights; method: the method checked; options: its options.
        target: the class explained at every step (the trained network's), with its trained probability.
        steps: trained first, then one step per group, the last fully random.
        seed: the seed of the random weights.
    """

    backbone: str
    weights: str
    method: str
    options: Mapping[str, Any]
    target: Prediction
    steps: tuple[SanityStep, ...]
    seed: int


@runs_model
def sanity_check(
    backbone: Backbone,
    image: Image.Image,
    method: str,
    target: int | str | None = None,
    *,
    progress: SanityProgress | None = None,
    seed: int = SANITY_SEED,
    **options: Any,
) -> SanityCheck:
    """Re-initializes a private copy of the backbone from the head down, one stage at a time, and
    attributes the picture after each step.

    Args:
        backbone: a loaded backbone; it is not modified (a private copy is randomized).
        image: an RGB PIL image.
        method: a key of :data:`backbone_viz.explain.attributions.METHODS`.
        target: the class explained at every step: None (the trained network's top-1), an index or a
            label.
        progress: called as ``progress(done, total)`` after each step's map.
        seed: seed of the random weights.
        **options: the method's options (see :func:`backbone_viz.attribute`).

    Returns:
        A frozen :class:`SanityCheck` with ``len(spec.stages) + 2`` steps.

    Raises:
        AttributionError, BackboneVizError, ValueError: as :func:`backbone_viz.attribute`.
    """
    resolve_options(method, options)  # refuse bad options before copying the model
    private = Backbone.wrap(
        backbone.spec, copy.deepcopy(backbone.model), backbone.weights, backbone.categories, backbone.device
    )
    groups = cascade_groups(private)
    total = len(groups) + 1
    generator = torch.Generator().manual_seed(seed)
    trained = attribute(private, image, method, target, **options)
    steps = [SanityStep("trained", (), trained, 1.0)]
    if progress is not None:
        progress(1, total)
    for done, (label, modules) in enumerate(groups.items(), start=2):
        for module in modules:
            reinitialize(module, generator)
        result = attribute(private, image, method, trained.target.index, **options)
        random = (*steps[-1].random, label)
        steps.append(SanityStep(label, random, result, rank_correlation(trained.strength, result.strength)))
        if progress is not None:
            progress(done, total)
    return SanityCheck(
        backbone=backbone.spec.name,
        weights=backbone.weights,
        method=method,
        options=trained.options,
        target=trained.target,
        steps=tuple(steps),
        seed=seed,
    )


@dataclass(frozen=True)
class Verdict:
    """Whether an attribution method passes the sanity check, judged by :data:`HEAD_LIMIT` and
    :data:`RANDOM_LIMIT`.

    Attributes:
        passes: the map changed enough both when the head and when every weight went random.
        reason: why it fails: ``"head"`` (it hardly changed with a random head), ``"random"`` (it still
            matches with every weight random), or None when it passes.
        head: the rank correlation once the head is random (NaN: a constant map, counted as changed).
        random: the rank correlation once every weight is random (NaN as above).
    """

    passes: bool
    reason: Literal["head", "random"] | None
    head: float
    random: float


def verdict(head: float, random: float) -> Verdict:
    """Passes or fails from the two correlations that decide it (a single check's, or medians).

    Args:
        head: rank correlation with the trained map after the head is re-initialized.
        random: rank correlation after every group is re-initialized.

    A NaN (a map that became constant) has no likeness left to the trained map, so it counts as changed.
    """
    if head >= HEAD_LIMIT:  # NaN >= x is False: a constant map changed
        return Verdict(False, "head", head, random)
    if random >= RANDOM_LIMIT:
        return Verdict(False, "random", head, random)
    return Verdict(True, None, head, random)


def check_verdict(check: SanityCheck) -> Verdict:
    """:func:`verdict` of one check: its head step (``steps[1]``) and its last, fully random, step."""
    return verdict(check.steps[1].correlation, check.steps[-1].correlation)


def cascade_groups(backbone: Backbone) -> dict[str, tuple[nn.Module, ...]]:
    """The modules with weights of each group, in the cascade's order: the head, then the stages from
    the last to the first.

    A module belongs to the first stage whose last layer comes at or after its call in the traced graph
    (the stem's convolution belongs to stage 1); what comes after the last stage is the head.
    """
    order = {name: i for i, name in enumerate(backbone.node_names)}
    stages = backbone.spec.stages
    ends = [order[backbone.graph.resolve(stage.last.name)] for stage in stages]
    modules = dict(backbone.model.named_modules())
    labels = [f"stage {stage.index}" for stage in stages]
    groups: dict[str, list[nn.Module]] = {label: [] for label in ["head", *reversed(labels)]}
    seen: set[int] = set()
    for name, position in order.items():
        module = modules.get(name)
        if module is None or id(module) in seen or not _has_state(module):
            continue
        seen.add(id(module))
        index = next((i for i, end in enumerate(ends) if position <= end), None)
        groups["head" if index is None else labels[index]].append(module)
    return {label: tuple(members) for label, members in groups.items()}


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


@torch.no_grad()
def reinitialize(module: nn.Module, generator: torch.Generator) -> None:
    """Draws new weights for ``module`` and everything in it, as PyTorch's ``reset_parameters`` would,
    from ``generator``; batch norms forget their running statistics.

    The generator is a CPU one and the values are drawn on the CPU, then copied to the module's device:
    a CUDA generator draws other numbers from the same seed, and a CUDA module's check must be the
    CPU's (torch refuses a CPU generator for a CUDA tensor).
    """
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase | nn.GroupNorm | nn.LayerNorm):
            if getattr(m, "track_running_stats", False) and m.running_mean is not None:
                m.reset_running_stats()
            if m.weight is not None:
                m.weight.fill_(1.0)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.conv._ConvNd | nn.Linear):
            _draw(m.weight, lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=generator))
            if m.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                _draw(m.bias, lambda t, b=bound: nn.init.uniform_(t, -b, b, generator=generator))
        else:
            for p in m.parameters(recurse=False):
                _draw(p, lambda t: nn.init.normal_(t, std=0.02, generator=generator))


def _draw(param: torch.Tensor, init: Callable[[torch.Tensor], object]) -> None:
    """Fills ``param`` with values that ``init`` draws into a CPU float32 tensor of its shape."""
    values = torch.empty(param.shape, dtype=torch.float32)
    init(values)
    param.copy_(values)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps of the same shape; NaN when either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(np.ravel(a), np.ravel(b)).statistic)
