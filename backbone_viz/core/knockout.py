"""Knock-outs: what the picture's analysis becomes when a block is removed or channels are switched off.

A knock-out never touches the shared model: it is an edit of a COPY of the traced graph
(:class:`~backbone_viz.core.graph.Bypass`, :class:`~backbone_viz.core.graph.ZeroChannels`) that reuses the same
modules, made and cached by :meth:`backbone_viz.Backbone.extract`.

* Removing a block makes its output its shortcut alone where it has one (a residual block: the input,
  or its 1x1 projection). A plain layer whose output has its input's shape becomes the identity.
  Anything else has nothing that could stand in for it and is refused with the reason.
* Switching off channels of a layer sets them to zero for everything downstream of that layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from backbone_viz.core.block_kinds import get_kind
from backbone_viz.core.blocks import BlockSpec, find_block
from backbone_viz.core.graph import Bypass, Edit, ZeroChannels
from backbone_viz.core.specs import BackboneSpec
from backbone_viz.errors import KnockoutError

#: One knock-out as a user writes it: a block name (remove it) or ``(layer name, [channels])``.
KnockoutItem = str | tuple[str, Sequence[int]]
#: Its normalised form, as results report it: a block name, or ``(layer name, (sorted channels))``.
Knockout = str | tuple[str, tuple[int, ...]]


def resolve_knockout(
    spec: BackboneSpec, items: Sequence[KnockoutItem]
) -> tuple[tuple[Knockout, ...], tuple[Edit, ...]]:
    """Checks knock-outs and turns them into graph edits.

    Args:
        spec: the backbone's spec.
        items: block names or labels, and ``(layer name or label, channel indices)`` pairs.

    Returns:
        ``(knockout, edits)``: the items normalised (names, sorted unique channels), and the edits.

    Raises:
        KnockoutError: a block that cannot be removed (the message says why), unknown channels.
        ValueError: an unknown block or layer name; TypeError: an item of another type.
    """
    normal: list[Knockout] = []
    edits: list[Edit] = []
    for item in items:
        if isinstance(item, str):
            block = find_block(spec, item)
            edits.append(bypass(spec, block))
            normal.append(block.name)
        elif isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
            layer = spec.layer(item[0])
            channels = tuple(sorted({int(c) for c in item[1]}))
            bad = [c for c in channels if not 0 <= c < layer.channels]
            if bad:
                raise KnockoutError(
                    f"{layer.label} has channels 0 to {layer.channels - 1}; there is no channel {bad[0]}.",
                    "Pick channel numbers in that range.",
                )
            if channels:
                edits.append(ZeroChannels(layer.name, channels))
                normal.append((layer.name, channels))
        else:
            raise TypeError(f"a knock-out is a block name or (layer name, [channels]), not {item!r}")
    return tuple(normal), tuple(edits)


def bypass(spec: BackboneSpec, block: BlockSpec) -> Bypass:
    """The edit that removes ``block``.

    Raises:
        KnockoutError: nothing can stand in for the block; the message says why.
    """
    output = block.part("output").name
    shortcut = block.part("shortcut")
    if shortcut is not None:
        return Bypass(output, shortcut.name)
    reason = refusal(spec, block)
    if reason is not None:
        raise KnockoutError(f"{block.label} cannot be removed: {reason}", _HINT)
    return Bypass(output, block.part("input").name)


def refusal(spec: BackboneSpec, block: BlockSpec) -> str | None:
    """Why ``block`` cannot be removed, in one sentence for a learner, or None when it can."""
    if block.has_shortcut:
        return None
    reason = get_kind(block.kind).cannot_remove
    if reason is not None:
        return reason
    if block.part("pool") is not None:
        return "its max pool halves the map, so the next layer would get a map of the wrong size."
    index = spec.blocks.index(block)
    layer = spec.layers[index]
    if index == 0:
        c_in, stride_in = 3, 1
    else:
        before = spec.layers[index - 1]
        # The previous block's max pool, where it has one, is what this block reads.
        pooled = spec.blocks[index - 1].part("pool") is not None
        c_in, stride_in = before.channels, before.stride * (2 if pooled else 1)
    if c_in != layer.channels:
        return (
            f"it turns {c_in} channels into {layer.channels}, so without it the next layer would get "
            f"{c_in} channels where it expects {layer.channels}."
        )
    if stride_in != layer.stride:
        return "it shrinks the map, so the next layer would get a map of the wrong size."
    return None


def bypassable(spec: BackboneSpec) -> tuple[BlockSpec, ...]:
    """The blocks that can be removed, in forward order."""
    return tuple(b for b in spec.blocks if refusal(spec, b) is None)


_HINT = "Remove a block with a shortcut (ResNet, EfficientNet), or switch off some of its channels instead."
