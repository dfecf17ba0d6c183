"""Per-session choices: which backbone, which weights, which image, and the widget values pages keep.

Every choice lives under a plain ``st.session_state`` key (``"backbone"``, ``"weights"``, ``"image"``...).
A widget that shows a choice gets its own key (``"_w_backbone"``) and copies its value to the plain key
when the user changes it. Why not key the widget by the choice directly: Streamlit forgets a widget's
value when the widget is not drawn in a run, and gives widgets drawn by different page files different
identities, so values would be lost on a page switch (and under AppTest, which runs a switched-to page
without ``app.py``). The plain keys are ordinary session state and survive everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import streamlit as st

import backbone_viz as bv
from backbone_viz.files.samples import Sample, list_samples

#: Session keys of the sidebar's choices (the one place that names them).
BACKBONE = "backbone"
WEIGHTS = "weights"
IMAGE = "image"
SAMPLE = "sample"
USE_CAMERA = "use_camera"
IMAGE_ERROR = "image_error"

DEFAULT_BACKBONE = bv.list_backbones()[0].name  # the bundled EfficientNet-Lite0

ImageKind = Literal["sample", "upload", "camera"]


@dataclass(frozen=True)
class ImageChoice:
    """The picture being analysed, as the bytes the user gave (the analysis cache keys on their hash).

    Attributes:
        kind: where it came from.
        name: sample name or file name, for captions and download names.
        caption: what to call it on the page ("A tabby cat (Chelsea)", "your upload photo.png").
        data: the file's bytes, exactly as read or uploaded.
        sha256: hex digest of ``data``.
    """

    kind: ImageKind
    name: str
    caption: str
    data: bytes
    sha256: str

    @classmethod
    def from_bytes(cls, kind: ImageKind, name: str, caption: str, data: bytes) -> ImageChoice:
        return cls(kind, name, caption, data, hashlib.sha256(data).hexdigest())

    @property
    def stem(self) -> str:
        """A file-name-safe short name for downloads."""
        stem = Path(self.name).stem or "image"
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:40]


@dataclass(frozen=True)
class Choices:
    """What the sidebar decided for this run."""

    backbone: str
    weights: str
    image: ImageChoice

    @property
    def spec(self) -> bv.BackboneSpec:
        return bv.get_spec(self.backbone)


@cache
def samples() -> tuple[Sample, ...]:
    """The sample gallery, the cat first."""
    return tuple(list_samples())


@cache
def sample_choice(name: str) -> ImageChoice:
    """A sample picture as an :class:`ImageChoice` (bytes read once per process)."""
    for sample in samples():
        if sample.name == name:
            return ImageChoice.from_bytes("sample", sample.name, sample.caption, sample.path.read_bytes())
    raise ValueError(f"No sample called {name!r}; choose one of: {', '.join(s.name for s in samples())}")


def init_defaults() -> None:
    """Sets the first visit's choices: the bundled backbone, pretrained, the first sample (the cat)."""
    state = st.session_state
    if BACKBONE not in state:
        state[BACKBONE] = DEFAULT_BACKBONE
    if WEIGHTS not in state:
        state[WEIGHTS] = "pretrained"
    if SAMPLE not in state:
        state[SAMPLE] = samples()[0].name
    if IMAGE not in state:
        state[IMAGE] = sample_choice(samples()[0].name)


def current() -> Choices:
    """The choices of this session (defaults on the first visit)."""
    init_defaults()
    return Choices(st.session_state[BACKBONE], st.session_state[WEIGHTS], st.session_state[IMAGE])


def set_choice(key: str, value: Any) -> None:
    """Sets a choice; the widget showing it picks the value up on the next run. Usable as on_click."""
    st.session_state[key] = value


def set_backbone(backbone: str, weights: str) -> None:
    """Sets the backbone and its weights together. Usable as on_click."""
    set_choice(BACKBONE, backbone)
    set_choice(WEIGHTS, weights)


def persistent(
    key: str,
    default: Any,
    *,
    options: Sequence[Any] | None = None,
    on_change: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Keyword arguments that bind a widget to the session choice ``key`` (see the module docstring).

    Pass them to a widget that is given no ``index``/``value``/``default`` of its own (Streamlit warns
    when both the Session State API and a default set a widget's value)::

        st.selectbox("Weights", WEIGHT_CHOICES, **persistent(WEIGHTS, "pretrained"))

    Args:
        key: the session key of the choice.
        default: its value when unset, or when the stored value is not among ``options``.
        options: the widget's options, to drop a stored value they no longer contain.
        on_change: called after the choice is updated by the user.
    """
    state = st.session_state
    value = state.get(key, default)
    if options is not None and value not in options:
        value = default
    state[key] = value
    widget_key = f"_w_{key}"
    state[widget_key] = value

    def sync() -> None:
        state[key] = state[widget_key]
        if on_change is not None:
            on_change()

    return {"key": widget_key, "on_change": sync}
