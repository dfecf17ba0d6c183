"""Hook-free access to any of a model's graph nodes, through traced graphs made per node set.

A model cached for all sessions is shared by threads, and a forward hook registered by one thread would
fire in every other thread's forward. Instead of hooks, each backbone is traced ONCE, at load, into a
torch.fx graph (with timm's list of modules that must stay opaque); :class:`NodeGraph` then cuts from it,
for each set of nodes asked for, a ``GraphModule`` that returns exactly those nodes and stops at the last
one (no logits when nobody asked for them). Cutting is graph surgery only: the model is never traced
again, never switched between train and eval, never changed. Each cut refers to the model's own
submodules (no copied parameters) and has no state of its own, so any number of threads may call it.

Node names are torchvision's qualified names (``get_graph_node_names``): a module's dotted name for its
call (``"layer2.0.conv1"``), with the operation for functional calls (``"layer2.0.add"``,
``"layer2.0.relu_2"``, ``"inception4c.branch2.1.bn"``). A module name that is not itself a node, such as
``"layer2.0"``, means the module's last node (its output), as in torchvision's feature extraction.
"""

from __future__ import annotations

import difflib
import math
import operator
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn
from torchvision.models.feature_extraction import NodePathTracer

from backbone_viz.core.lru import LRU

#: Aliases accepted beside node names: the head's output (the logits) and the vector the head reads.
LOGITS = "__logits__"
POOLED = "__pooled__"

#: Most cut graph modules kept per backbone; each is small (it shares the model's modules).
MAX_CUTS = 32

# In-place operations that the traced graph makes out-of-place: a node asked for must keep its value even
# when a later operation would overwrite it. GoogLeNet's BasicConv2d calls F.relu(inplace=True) on its
# batch-norm output, so "conv1.bn" would silently read as the ReLU's output (pytorch/pytorch#61519).
_INPLACE_FUNCTIONS = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
    torch.relu_: torch.relu,
    torch.nn.functional.relu_: torch.nn.functional.relu,
}


@dataclass(frozen=True)
class Bypass:
    """A graph edit: every use of node ``node`` reads node ``replacement`` instead (a block removed)."""

    node: str
    replacement: str


@dataclass(frozen=True)
class ZeroChannels:
    """A graph edit: channels ``channels`` of node ``node``'s output are zero for everything downstream."""

    node: str
    channels: tuple[int, ...]


Edit = Bypass | ZeroChannels


def zero_channels(x: torch.Tensor, channels: tuple[int, ...]) -> torch.Tensor:
    """``x`` (N, C, ...) with the given channels set to zero, out-of-place (the original is kept)."""
    index = torch.tensor(channels, dtype=torch.long, device=x.device)
    return x.index_fill(1, index, 0.0)


class _ThisThreadTracer(NodePathTracer):
    """torchvision's node-path tracer that traces only the calls of the thread that runs it.

    While it traces, torch.fx replaces ``nn.Module.__call__`` and ``nn.Module.__getattr__`` for the whole
    process, so any other thread that runs a model meanwhile (another session's analysis, a head) would
    go through this tracer and fail ("module is not installed as a submodule"). Those calls are passed
    to the module as if nothing were patched.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._thread = threading.get_ident()

    # The signatures are fx's own (Tracer.call_module and Tracer.getattr).
    def call_module(self, m: nn.Module, forward, args, kwargs):
        if threading.get_ident() != self._thread:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if threading.get_ident() != self._thread:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


class NodeGraph:
    """A model traced once, from which extractors for any set of nodes are cut on demand.

    Args:
        model: an eval-mode network; it is read, never modified. Trace it before sharing it.

    Attributes:
        node_names: every node's name, in forward order (the input ``"x"`` first).
    """

    def __init__(self, model: nn.Module) -> None:
        # Here, not at the top: a torchvision backbone needs no timm, and importing it costs ~0.5 s.
        from timm.layers import get_notrace_functions, get_notrace_modules

        tracer = _ThisThreadTracer(
            leaf_modules=list(get_notrace_modules()), autowrap_functions=list(get_notrace_functions())
        )
        graph = tracer.trace(model)
        _make_out_of_place(graph)
        self._model = model
        self._graph = graph
        self._by_name = {name: node for node, name in tracer.node_to_qualname.items()}
        self.node_names: tuple[str, ...] = tuple(
            tracer.node_to_qualname[n] for n in graph.nodes if n in tracer.node_to_qualname
        )
        self._cuts: LRU[tuple, fx.GraphModule] = LRU(MAX_CUTS)

    def resolve(self, name: str) -> str:
        """The node a name stands for: the node itself, or a module's last node.

        Raises:
            ValueError: no such node; the message suggests close names.
        """
        if name in self._by_name:
            return name
        prefix = name + "."
        inside = [n for n in self.node_names if n.startswith(prefix)]
        if inside:
            return inside[-1]
        close = difflib.get_close_matches(name, self.node_names, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see Backbone.node_names)."
        raise ValueError(f"The model has no node or module {name!r}{hint}")

    def extractor(self, nodes: Sequence[str], edits: Sequence[Edit] = (), *, keep: bool = True) -> fx.GraphModule:
        """A graph module mapping an input batch (N, 3, H, W) to ``{name: tensor}`` for ``nodes``.

        The module computes only what those nodes need. Made once per node set (and edits) and kept (at
        most :data:`MAX_CUTS`, least recently used out); safe to call from any thread.

        Args:
            nodes: node or module names; each is a key of the module's output dict, as given.
            edits: knock-outs applied to the copy of the graph, in order (the model is not touched). A
                requested node that an edit replaces returns the edited value.
            keep: keep the cut for later calls; False for one-off cuts (an ablation makes one per
                block), which would only push the kept ones out.

        Raises:
            ValueError: an unknown name, or no names.
        """
        key = (tuple(dict.fromkeys(nodes)), tuple(edits))
        if not key[0]:
            raise ValueError("Ask for at least one node.")
        cut = self._cuts.get(key)
        if cut is not None:
            return cut
        targets = {name: self._by_name[self.resolve(name)] for name in key[0]}
        resolved = [
            (e, self._by_name[self.resolve(e.node)], self._by_name[self.resolve(e.replacement)])
            if isinstance(e, Bypass)
            else (e, self._by_name[self.resolve(e.node)], None)
            for e in key[1]
        ]
        cut = _cut(self._model, self._graph, targets, resolved)
        return self._cuts.put(key, cut) if keep else cut


def _make_out_of_place(graph: fx.Graph) -> None:
    """Rewrites every in-place operation of a traced graph into its out-of-place twin."""
    for node in graph.nodes:
        if node.op == "call_function":
            if node.target in _INPLACE_FUNCTIONS:
                node.target = _INPLACE_FUNCTIONS[node.target]
            if node.kwargs.get("inplace") is True:
                node.kwargs = {**node.kwargs, "inplace": False}
        elif node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
            # Tensor methods such as relu_, add_, clamp_ have an out-of-place twin without the underscore.
            node.target = node.target[:-1]


def _cut(
    model: nn.Module,
    graph: fx.Graph,
    targets: dict[str, fx.Node],
    edits: Sequence[tuple[Edit, fx.Node, fx.Node | None]] = (),
) -> fx.GraphModule:
    """A copy of ``graph`` returning ``{name: value of node}`` for ``targets``, edited, unused nodes removed."""
    cut = fx.Graph()
    mapping: dict[fx.Node, fx.Node] = {}
    cut.graph_copy(graph, mapping)
    cut.output({name: mapping[node] for name, node in targets.items()})
    for edit, node, replacement in edits:
        # Edits run after the output exists, so that a requested node reports its edited value too.
        old = mapping[node]
        if isinstance(edit, Bypass):
            old.replace_all_uses_with(mapping[replacement])
        else:
            with cut.inserting_after(old):
                zeroed = cut.call_function(zero_channels, (old, edit.channels))
            old.replace_all_uses_with(zeroed, delete_user_cb=lambda user, z=zeroed: user is not z)
    module = fx.GraphModule(model, cut, class_name=type(model).__name__ + "Cut")
    # Dead-code elimination needs the owning module (its purity check reads it); it drops every node
    # after the last one asked for, so the cut stops there.
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    module.recompile()
    return module.eval()


def receptive_fields(extractor: fx.GraphModule) -> dict[str, tuple[int, int]]:
    """Theoretical receptive field and stride of each output of an extractor, from its graph.

    Walks the graph in order: a convolution or pooling window of size ``k`` (dilation ``d``) grows the
    receptive field by ``(k - 1) * d * jump`` and multiplies the jump (the stride so far) by its stride;
    every other operation keeps the largest receptive field and jump of its inputs (the widest path of a
    branching block). Padding does not change the theoretical field.

    Returns:
        ``{output key: (receptive field in input pixels, stride relative to the input)}`` for the outputs
        that are still spatial (global pooling gives ``math.inf``-free results only before it).
    """
    field: dict[fx.Node, tuple[float, float]] = {}
    modules = dict(extractor.named_modules())
    for node in extractor.graph.nodes:
        inputs = [field[a] for a in node.all_input_nodes if a in field]
        rf, jump = (max(r for r, _ in inputs), max(j for _, j in inputs)) if inputs else (1.0, 1.0)
        if node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                k, s, d = (first_int(getattr(module, a, 1)) for a in ("kernel_size", "stride", "dilation"))
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


def first_int(value: int | tuple[int, ...]) -> int:
    """The first of a module's per-dimension sizes (``kernel_size=(3, 3)`` -> 3)."""
    return value[0] if isinstance(value, tuple) else int(value)
