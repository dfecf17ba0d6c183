"""The rows of the Compare page: each a backbone with its own weights, kept as ``"name/weights"`` strings
(one multiselect holds them, so a pretrained and an untrained version of one backbone can stand side by
side)."""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv
from backbone_viz.core.backbones import WEIGHT_CHOICES
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


def default(choices: Choices) -> list[str]:
    """The sidebar's backbone and weights, then ResNet-50 (or the bundled backbone) with the same weights."""
    others = [n for n in ("resnet50", bv.list_backbones()[0].name) if n != choices.backbone]
    return [row(choices.backbone, choices.weights), row(others[0], choices.weights)]


def make_untrained(picked: str) -> None:
    """Replaces the row ``picked`` by the same backbone, untrained (or drops it if that row is there too).
    Usable as on_click."""
    untrained = row(backbone(picked), "untrained")
    rows = st.session_state.get(KEY, [])
    st.session_state[KEY] = list(dict.fromkeys(untrained if r == picked else r for r in rows))
