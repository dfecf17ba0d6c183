"""The rows of the Compare page: each a backbone with its own weights, kept as ``"name/weights"`` strings
(one multiselect holds them, so a pretrained and an untrained version of one backbone can stand side by
side)."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz.core.backbones import WEIGHT_CHOICES
from backbone_viz.files import weights as weights_mod
from webui.shell.state import Choices

#: Session key of the chosen rows.
KEY = "compare.rows"


def row(name: str, weights: str) -> str:
    return f"{name}/{weights}"


def backbone(picked: str) -> str:
    return picked.split("/", 1)[0]


def weights(picked: str) -> str:
    return picked.split("/", 1)[1]


def options() -> list[str]:
    """Every backbone with each weights choice, in the sidebar's order."""
    return [row(spec.name, w) for spec in bv.list_backbones() for w in WEIGHT_CHOICES]


def title(picked: str) -> str:
    """``"ResNet-50 · untrained"``."""
    return f"{bv.get_spec(backbone(picked)).title} · {weights(picked)}"


#: The partner Compare offers first when it is ready: the most familiar backbone, built unlike Lite0.
_FIRST_PARTNER = "resnet50"


def ready(picked: str) -> bool:
    """Whether the row runs on this machine without a download (untrained, bundled or in the cache)."""
    if weights(picked) == "untrained":
        return True
    spec = bv.get_spec(backbone(picked))
    return spec.bundled or (
        spec.weights_file is not None and weights_mod.cached_path(spec.weights_file) is not None
    )


def default(choices: Choices) -> list[str]:
    """The sidebar's backbone and weights, then a partner that is ready on this machine: another backbone
    with the same weights (ResNet-50 first), else the same backbone with the other weights, so that a
    class's first sight of the page is never a failed download."""
    first = row(choices.backbone, choices.weights)
    names = sorted((spec.name for spec in bv.list_backbones()), key=lambda n: n != _FIRST_PARTNER)
    partners = [row(n, choices.weights) for n in names if n != choices.backbone]
    other = next(w for w in WEIGHT_CHOICES if w != choices.weights)
    for candidate in [*partners, row(choices.backbone, other)]:
        if ready(candidate):
            return [first, candidate]
    return [first]


def make_untrained(picked: str) -> None:
    """Replaces the row ``picked`` by the same backbone, untrained (or drops it if that row is there too).
    Usable as on_click."""
    untrained = row(backbone(picked), "untrained")
    rows = st.session_state.get(KEY, [])
    st.session_state[KEY] = list(dict.fromkeys(untrained if r == picked else r for r in rows))
