"""Hook-free access to a model's intermediate outputs, through a traced graph.

A model cached for all sessions is shared by threads, and a forward hook registered by one thread would
fire in every other thread's forward. Instead of hooks, each backbone is traced once (torch.fx, with
timm's list of modules that must stay opaque) into a ``GraphModule`` that returns the listed layers'
outputs and the head's input and output as a dict. The graph module holds references to the model's own
submodules (no copied parameters) and has no state of its own, so any number of threads may call it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from timm.models import create_feature_extractor
from torch import nn

#: Keys of the extractor's output beside the layer names (which are dotted module names).
LOGITS = "__logits__"
POOLED = "__pooled__"


def build_extractor(
    model: nn.Module, layers: Sequence[str], *, head: str, pooled: str
) -> torch.fx.GraphModule:
    """Traces ``model`` into a module that returns the listed layers' outputs, its logits and head input.

    Args:
        model: an eval-mode network; it is not modified (the graph module refers to its submodules).
        layers: dotted module names whose outputs are returned, e.g. ``["layer1.0", "layer2.0"]``.
        head: graph node name of the final classifier (its output are the logits, shape (N, K)).
        pooled: graph node name of the vector the head reads, shape (N, D).

    Returns:
        A graph module mapping an input batch (N, 3, H, W) to ``{name: tensor}`` with the keys ``layers``
        plus :data:`LOGITS` and :data:`POOLED`.
    """
    return_nodes = {name: name for name in layers}
    return_nodes[head] = LOGITS
    return_nodes[pooled] = POOLED
    extractor = create_feature_extractor(model, return_nodes=return_nodes)
    return extractor.eval()


def receptive_fields(extractor: torch.fx.GraphModule) -> dict[str, tuple[int, int]]:
    """Theoretical receptive field and stride of each output of an extractor, from its graph.

    Walks the graph in order: a convolution or pooling window of size ``k`` (dilation ``d``) grows the
    receptive field by ``(k - 1) * d * jump`` and multiplies the jump (the stride so far) by its stride;
    every other operation keeps the largest receptive field and jump of its inputs (the widest path of a
    branching block). Padding does not change the theoretical field.

    Returns:
        ``{output key: (receptive field in input pixels, stride relative to the input)}`` for the outputs
        that are still spatial (global pooling gives ``math.inf``-free results only before it).
    """
    field: dict[torch.fx.Node, tuple[float, float]] = {}
    modules = dict(extractor.named_modules())
    for node in extractor.graph.nodes:
        inputs = [field[a] for a in node.all_input_nodes if a in field]
        rf, jump = (max(r for r, _ in inputs), max(j for _, j in inputs)) if inputs else (1.0, 1.0)
        if node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                k, s, d = (_first(getattr(module, a, 1)) for a in ("kernel_size", "stride", "dilation"))
                rf, jump = rf + (k - 1) * d * jump, jump * s
            elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Linear)):
                rf = math.inf
        elif node.op == "call_function" and getattr(node.target, "__name__", "") in {
            "adaptive_avg_pool2d",
            "flatten",
        }:
            rf = math.inf
        field[node] = (rf, jump)
    (outputs,) = [n for n in extractor.graph.nodes if n.op == "output"]
    result = {}
    for key, node in outputs.args[0].items():
        rf, jump = field[node]
        if math.isfinite(rf):
            result[key] = (int(rf), int(jump))
    return result


def _first(value: int | tuple[int, ...]) -> int:
    return value[0] if isinstance(value, tuple) else int(value)
