"""The zoo: every backbone backbone-viz can show, registered by the module of its family.

A family module (:mod:`~backbone_viz.zoo.efficientnet`, :mod:`~backbone_viz.zoo.vgg`,
:mod:`~backbone_viz.zoo.resnet`, :mod:`~backbone_viz.zoo.googlenet`) describes its backbones as data
(layer rows, blocks, preprocessing, weights file, how to build the untrained model) and registers each
with :func:`register_backbone`, and its card with :func:`register_family`, as torchvision's
``@register_model`` fills its table. A new backbone is one entry in its family's module; a new family is
one module and its import at the end of this file. Nothing here imports torch (a backbone's ``build``
imports it when called), so the command line lists the backbones without loading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backbone_viz.core.registry import Registry
from backbone_viz.core.specs import BackboneSpec

if TYPE_CHECKING:
    from torch import nn

_BACKBONES: Registry[BackboneSpec] = Registry("backbone")
_FAMILIES: list[Family] = []


@dataclass(frozen=True)
class Family:
    """A family of backbones as the "Inside a block" page introduces it: its one idea, on a card.

    Attributes:
        title: its name (``"ResNet"``).
        year: the year of its paper.
        members: its backbones' spec names, the typical one first.
        block: a typical block of the first member, drawn on the card.
        idea: one or two sentences: what the family brought.
        paper: who published it, and when (``"He et al., 2015"``).
    """

    title: str
    year: int
    members: tuple[str, ...]
    block: str
    idea: str
    paper: str


def torchvision_builder(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    """``build`` for a spec: torchvision's builder ``name`` called with ``kwargs`` (untrained), torchvision
    imported only when a model is built, so that listing the backbones needs no torch."""

    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(**kwargs)

    build.__name__ = build.__qualname__ = f"build_{name}"
    return build


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Adds a backbone to the zoo (in the order of registration, which is the order learners see).

    Raises:
        ValueError: a backbone of that name is registered already.
    """
    return _BACKBONES.add(spec.name, spec)


def register_family(family: Family) -> Family:
    """Adds a family's card; its members must be registered first.

    Raises:
        ValueError: a member that is not a registered backbone, or a block it does not have.
    """
    unknown = [m for m in family.members if m not in _BACKBONES]
    if unknown:
        raise ValueError(f"Family {family.title} names unregistered backbones: {', '.join(unknown)}")
    if all(b.name != family.block for b in _BACKBONES.get(family.members[0]).blocks):
        raise ValueError(f"{family.members[0]} has no block {family.block!r} for the {family.title} card")
    _FAMILIES.append(family)
    return family


def list_backbones() -> tuple[BackboneSpec, ...]:
    """All backbones, the bundled EfficientNet-Lite0 first."""
    return tuple(_BACKBONES)


def get_spec(name: str) -> BackboneSpec:
    """Finds a backbone by name.

    Raises:
        ValueError: unknown name; the message lists the choices.
    """
    return _BACKBONES.get(name)


def families() -> tuple[Family, ...]:
    """Every family's card, in the order of their papers."""
    return tuple(sorted(_FAMILIES, key=lambda f: f.year))


# The order of these imports is the order of the backbones in every list: the bundled one first.
from backbone_viz.zoo import efficientnet, vgg, resnet, googlenet  # noqa: E402, F401, I001
