"""The four kinds of block, one object each: what a learner is told, how it is drawn, what its numbers are.

A block's kind (:attr:`backbone_viz.core.blocks.BlockSpec.kind`) names one registered :class:`Kind`, which
holds everything that differs between kinds: its name for a learner, the roles its diagram draws in a row
(or its branches side by side), the numbers :func:`backbone_viz.inside_block` measures on a picture, the
sentences that say what to notice in them, and why it cannot be knocked out without a shortcut. What
every block with a shortcut shares (the shortcut's share of the sum) is computed beside the kind, for
all kinds alike. A new kind is one subclass here, registered with :func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from backbone_viz.core.registry import Registry

if TYPE_CHECKING:
    from backbone_viz.core.backbones import Backbone
    from backbone_viz.core.blocks import BlockSpec, Role

#: The maps of a block's parts on one picture, by part name, each (C, h, w).
Maps = Mapping[str, np.ndarray]

_KINDS: Registry[Kind] = Registry("block kind")


class Kind:
    """One kind of block.

    Class attributes:
        name: its identifier in a :class:`~backbone_viz.core.blocks.BlockSpec` (``"residual"``).
        title: what it is, for a learner (``"a residual block (with a shortcut)"``).
        chain: the roles the diagram draws in a row, input first (empty: :attr:`side_by_side`).
        side_by_side: its branches are drawn side by side, top to bottom (inception).
        telling: it shows what makes its backbone different even without a shortcut (the page opens on
            the first such block, or the first with a shortcut).
        no_shortcut: what a lesson says of such a block without a shortcut.
        cannot_remove: why such a block without a shortcut cannot be removed at all (None: the shapes
            decide, see :func:`backbone_viz.core.knockout.refusal`).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    chain: ClassVar[tuple[Role, ...]] = ()
    side_by_side: ClassVar[bool] = False
    telling: ClassVar[bool] = False
    no_shortcut: ClassVar[str] = "It has no shortcut: every map goes through every layer."
    cannot_remove: ClassVar[str | None] = None

    def summary(self, backbone: Backbone, block: BlockSpec, maps: Maps) -> dict[str, Any]:
        """The kind's telling numbers for this picture (added to the shortcut's, if any)."""
        return {}

    def notice(self, block: BlockSpec, summary: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        """What to notice in those numbers, in sentences (markdown) for a learner.

        Args:
            shapes: each role's map shape (C, h, w) on this picture.
        """
        return []


def register_kind(cls: type[Kind]) -> type[Kind]:
    """Adds a kind (a class decorator).

    Raises:
        ValueError: a kind of that name is registered already.
    """
    _KINDS.add(cls.name, cls())
    return cls


def get_kind(name: str) -> Kind:
    """A registered kind by name.

    Raises:
        ValueError: an unknown name; the message lists the choices.
    """
    return _KINDS.get(name)


def macs(value: float) -> str:
    """Multiply-adds in millions: ``"4.1 M"``, ``"585 M"``, ``"1,850 M"``."""
    return f"{value / 1e6:,.1f} M" if value < 1e7 else f"{value / 1e6:,.0f} M"


def _of(block: BlockSpec, maps: Maps) -> Callable[[Role], np.ndarray]:
    return lambda role: maps[block.part(role).name]


@register_kind
class Plain(Kind):
    """A convolution and its activation, with the max pool that may follow (VGG, every stem)."""

    name = "plain"
    title = "a plain block"
    chain = ("input", "conv", "relu", "pool")

    def summary(self, backbone: Backbone, block: BlockSpec, maps: Maps) -> dict[str, Any]:
        conv = backbone.model.get_submodule(block.part("conv").name)
        c_out, h, w = _of(block, maps)("relu").shape
        kh, kw = conv.kernel_size
        return {
            "in_channels": int(conv.in_channels),
            "out_channels": int(c_out),
            "macs": h * w * c_out * conv.in_channels * kh * kw // conv.groups,
        }

    def notice(self, block: BlockSpec, summary: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        _, h, w = shapes["relu"]
        pool = " Then a max pool halves the map." if block.part("pool") is not None else ""
        return [
            f"A plain block is one convolution and its activation: {summary['in_channels']} channels in, "
            f"{summary['out_channels']} out, **{macs(summary['macs'])} multiply-adds** for this {h} × {w} "
            f"map. There is no shortcut: everything after it sees only what it makes.{pool}"
        ]


@register_kind
class Residual(Kind):
    """A branch F(x) added to its input x (ResNet's basic and bottleneck blocks)."""

    name = "residual"
    title = "a residual block (with a shortcut)"
    chain = ("input", "residual", "sum", "output")


@register_kind
class Inception(Kind):
    """Branches of several filter sizes side by side, their maps stacked (GoogLeNet)."""

    name = "inception"
    title = "an inception module"
    side_by_side = True
    telling = True
    no_shortcut = "It has no shortcut: its branches filter the input side by side and their maps are stacked."
    cannot_remove = (
        "an inception module has no shortcut. Its output is only what its four branches make, so "
        "there is nothing to pass on in its place."
    )

    def summary(self, backbone: Backbone, block: BlockSpec, maps: Maps) -> dict[str, Any]:
        branches = tuple(
            MappingProxyType(
                {"label": p.label, "channels": int(maps[p.name].shape[0]), "mean_activation": float(maps[p.name].mean())}
            )
            for p in block.parts
            if p.role == "branch"
        )
        return {"branches": branches}

    def notice(self, block: BlockSpec, summary: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        branches = summary["branches"]
        sizes = " + ".join(str(b["channels"]) for b in branches)
        means = ", ".join(f"{b['mean_activation']:.3g}" for b in branches)
        strongest = max(range(len(branches)), key=lambda i: branches[i]["mean_activation"])
        return [
            "The four branches look at the same input through windows of different sizes at once "
            "(1×1, 3×3, 3×3 where the paper has 5×5, and a 3×3 max pool) and their maps are stacked: "
            f"{sizes} = {shapes['output'][0]} channels. Their mean activations here are {means}: "
            f"**branch {strongest + 1} reacts most to this picture**."
        ]


@register_kind
class InvertedResidual(Kind):
    """Widen, filter each channel alone, narrow again (EfficientNet's MBConv)."""

    name = "inverted_residual"
    title = "an inverted residual block"
    chain = ("input", "expand", "depthwise", "project", "sum")

    def summary(self, backbone: Backbone, block: BlockSpec, maps: Maps) -> dict[str, Any]:
        channels, h, w = _of(block, maps)("depthwise").shape
        k = block.kernel
        return {
            "expansion": block.expansion,
            "depthwise_macs": h * w * channels * k * k,
            "plain_macs": h * w * channels * channels * k * k,
        }

    def notice(self, block: BlockSpec, summary: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        channels, h, w = shapes["depthwise"]
        k = block.kernel
        ratio = summary["plain_macs"] / summary["depthwise_macs"]
        grow = (
            f"It widens {shapes['input'][0]} channels {summary['expansion']}× to {channels}, then "
            if summary["expansion"] > 1
            else ""
        )
        return [
            f"{grow}{'the' if grow else 'The'} depthwise step filters each of its {channels} channels alone "
            f"with one {k}×{k} filter: **{macs(summary['depthwise_macs'])} multiply-adds** on this {h} × {w} "
            f"map, where a plain {k}×{k} convolution of the same width would need "
            f"{macs(summary['plain_macs'])} ({ratio:.0f}× more). That is why the block is cheap."
        ]
