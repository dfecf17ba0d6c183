"""Small drawing helpers the pages share: explanations, pictures with a PNG download, stage labels,
and the heads page's strips and contribution bars."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from matplotlib.figure import Figure
from PIL import Image

import backbone_viz as bv
from backbone_viz import render
from webui.shell import projector
from webui.shell.state import persistent

LEVEL_COLOURS = {"low": "blue", "mid": "green", "high": "orange"}
LEVEL_WORDS = {"low": "edges & colours", "mid": "textures & parts", "high": "objects"}


def shown(image: Image.Image, *, photo: bool = False) -> bytes:
    """The bytes ``st.image`` gets for a picture drawn on every rerun.

    Args:
        photo: the picture is photo-like (the crop, an overlay): JPEG, well under 1 ms; else PNG with the
            lightest compression, so that a map's cells stay crisp.
    """
    return render.encode(image, "jpeg" if photo else "png", fast=True)


@dataclass(frozen=True)
class Metric:
    """One number for :func:`metrics`: its label, the value as shown, and an optional tooltip."""

    label: str
    value: str
    help: str | None = None


def metrics(items: Sequence[Metric], *, per_row: int) -> None:
    """``st.metric`` cells, ``per_row`` to a row, in reading order."""
    for start in range(0, len(items), per_row):
        for cell, item in zip(st.columns(per_row), items[start : start + per_row], strict=False):
            cell.metric(item.label, item.value, help=item.help)


def choice(
    label: str,
    labels: Mapping[str, str],
    *,
    key: str,
    horizontal: bool = False,
    label_visibility: Literal["visible", "hidden", "collapsed"] = "visible",
) -> str:
    """A radio over the keys of ``labels``, each shown as its text, kept as the session choice ``key``
    (the first one until the learner picks another)."""
    options = list(labels)
    return st.radio(
        label,
        options,
        format_func=labels.__getitem__,
        horizontal=horizontal,
        label_visibility=label_visibility,
        **persistent(key, options[0], options=options),
    )


def explain(text: str) -> None:
    """The page's 2 to 4 plain sentences: what the learner sees and what to notice.

    In projector mode they are folded under "What to notice", so that the figure comes first.
    """
    if projector.on():
        with st.expander("What to notice", icon=":material/lightbulb:"):
            st.markdown(text)
    else:
        st.info(text, icon=":material/lightbulb:")


def level_badge(level: str) -> str:
    """Markdown for a coloured level badge: ``low``, ``mid`` or ``high``."""
    return f":{LEVEL_COLOURS[level]}-badge[{level} · {LEVEL_WORDS[level]}]"


def shape_text(array_shape: tuple[int, ...]) -> str:
    """``(40, 28, 28)`` -> ``"40 × 28 × 28"`` (channels × height × width)."""
    return " × ".join(str(n) for n in array_shape)


def stages_sentence(spec: bv.BackboneSpec) -> str:
    """How ``spec``'s stages change the picture's size and channels, from its spec (VGG's stage 1 keeps the
    full size; the others halve it at once), e.g. "stage 1 halves the 224 × 224 picture to 112 × 112, each
    later stage halves it again, down to 7 × 7 at stage 5, while the channels grow from 16 to 1280"."""
    stages, crop = spec.stages, spec.preprocessing.crop
    sides = [crop // stage.stride for stage in stages]
    first = (
        f"stage 1 keeps the full {crop} × {crop} picture"
        if stages[0].stride == 1
        else f"stage 1 shrinks the {crop} × {crop} picture to {sides[0]} × {sides[0]}"
    )
    if all(b.stride == 2 * a.stride for a, b in zip(stages, stages[1:], strict=False)):
        later = (
            f"each later stage halves it again, down to {sides[-1]} × {sides[-1]} at stage {stages[-1].index}"
        )
    else:
        later = "the later stages shrink it to " + ", ".join(f"{side} × {side}" for side in sides[1:])
    channels = [stage.channels for stage in stages]
    grow = "grow" if channels == sorted(channels) else "change"
    return f"{first}, {later}, while the channels {grow} from {channels[0]} to {channels[-1]}"


#: A receptive field this small (px) is called a speck: a few pixels, enough for an edge or a colour.
SPECK = 16


def receptive_field_note(layer: bv.LayerSpec, crop: int) -> str:
    """What the receptive field of ``layer`` means, and why it may be tiny or larger than the picture."""
    rf = layer.receptive_field
    text = (
        f"One map pixel of {layer.label} can be changed by a {rf} × {rf} px square of the picture, its "
        "receptive field: every layer looks at a few neighbouring pixels of the layer before, so the "
        "square grows layer after layer."
    )
    if rf <= SPECK:
        text += f" Here it is a speck of the {crop} × {crop} picture: enough for an edge or a colour, not an object."
    elif rf > crop:
        text += (
            f" {rf} px is more than the {crop} px picture: the square is counted through all the layers, "
            "and the zero border (padding) each layer adds around its maps counts too. So one map pixel can "
            "see the whole picture."
        )
    return text


def stage_label(result: bv.Activations, stage: bv.StageSpec) -> str:
    """Two lines for a stage's picture: ``stage 3 · mid`` and ``40 × 28 × 28``."""
    return f"stage {stage.index} · {stage.level}\n{shape_text(result.activations[stage.last.name].shape)}"


def download_png(
    make: Callable[[], Image.Image | Figure], file_name: str, *, key: str, label: str = "PNG"
) -> None:
    """A download button whose PNG is made only when clicked (no cost on reruns, no rerun after)."""
    st.download_button(
        label,
        data=lambda: render.encode(make()),
        file_name=file_name,
        mime="image/png",
        key=key,
        on_click="ignore",
        icon=":material/download:",
        help="Download this picture as a PNG file",
    )


def picture(
    image: Image.Image,
    *,
    photo: bool = False,
    caption: str | None = None,
    file_name: str | None = None,
    key: str | None = None,
    width: int | str = "stretch",
) -> None:
    """``st.image`` plus, when ``file_name`` is given, a PNG download of the same picture.

    Args:
        photo: the picture is photo-like (the crop, an overlay): sent as JPEG; else as PNG, so that a
            map's cells stay crisp.
    """
    st.image(shown(image, photo=photo), caption=caption, width=width)
    if file_name is not None:
        download_png(lambda: image, file_name, key=key or f"dl.{file_name}")


def report_button(result: Callable[[], bv.AnalysisResult], file_stem: str, *, key: str) -> None:
    """Downloads the one-page report (crop, top-5, every stage's map and Grad-CAM) as a PNG.

    Args:
        result: gives the analysis when the button is clicked (a page without Grad-CAM passes
            :func:`webui.full_analysis`, so its Grad-CAM is made only for a download).
    """
    download_png(
        lambda: render.report_figure(result()),
        f"{file_stem}-report.png",
        key=key,
        label="One-page report (PNG)",
    )


def class_bars(predictions: Sequence[bv.Prediction], target: bv.Prediction | None = None) -> None:
    """A head's predictions as labelled probability bars; the class Grad-CAM explains, ``target``, is
    marked (and named below the bars when it is not among them)."""
    for p in predictions:
        mark = "  ← Grad-CAM explains this class" if target is not None and p.index == target.index else ""
        st.progress(min(max(p.probability, 0.0), 1.0), text=f"**{p.label}** — {p.probability:.1%}{mark}")
    if target is not None and target.index not in {p.index for p in predictions}:
        st.caption(
            f"Grad-CAM explains **{target.label}** ({target.probability:.2%}), which is not in the top-5."
        )


def top5_lines(result: bv.Activations) -> str:
    """The top-5 as short markdown lines, for narrow cells."""
    return "  \n".join(f"{_percent(p.probability)} {p.label}" for p in result.predictions)


def top5_inline(result: bv.Activations) -> str:
    """The top-5 on one line: ``"37% tiger cat, 37% Egyptian cat, ..."``."""
    return ", ".join(f"{_percent(p.probability)} {p.label}" for p in result.predictions)


def _percent(probability: float) -> str:
    """``"37%"``, or ``"0.1%"`` below 1 % (an untrained head's guesses would all read 0 %)."""
    return f"{probability:.0%}" if probability >= 0.01 else f"{probability:.1%}"


# ------------------------------------------------------------------------------------------------ heads

#: Colours for what a channel adds to a class score: green pushes it up, pink pulls it down.
CONTRIBUTION_CMAP = "PiYG"
UP_COLOUR = "#4d9221"
DOWN_COLOUR = "#c51b7d"


def value_strip(
    values: np.ndarray,
    *,
    cmap: str = render.ACTIVATION_CMAP,
    symmetric: bool = False,
    height: int | None = None,
) -> Image.Image:
    """A (D,) vector as a colour strip one pixel column per value, ``height`` px tall.

    Args:
        height: default ``D / 28`` (at least 24), so that strips of 1024 and 4096 values look alike.
        symmetric: colour from ``-m`` to ``+m`` with ``m`` the largest magnitude, so that zero sits in
            the middle of a diverging colormap.
    """
    row = np.asarray(values, dtype=np.float32)[None, :]
    limits = {}
    if symmetric:
        m = float(np.abs(row).max()) or 1.0
        limits = {"vmin": -m, "vmax": m}
    strip = Image.fromarray(render.colorize(row, cmap=cmap, **limits))
    height = height or max(24, round(row.shape[1] / 28))
    return strip.resize((row.shape[1], height), Image.Resampling.NEAREST)


def contribution_table(contributions: bv.Contributions, up: np.ndarray, down: np.ndarray) -> pd.DataFrame:
    """One row per channel of ``up`` then ``down``: its name, contribution, direction and the factors."""
    channels = [int(c) for c in (*up, *down)]
    return pd.DataFrame(
        {
            "channel": [f"#{c}" for c in channels],
            "contribution": [float(contributions.values[c]) for c in channels],
            "direction": ["pushes up" if contributions.values[c] > 0 else "pulls down" for c in channels],
            "weight": [float(contributions.weights[c]) for c in channels],
            "average": [float(contributions.pooled[c]) for c in channels],
        }
    )


def contribution_chart(table: pd.DataFrame) -> alt.Chart:
    """Horizontal bars of :func:`contribution_table`, largest push up on top, green up and pink down."""
    return (
        alt.Chart(table, height=26 * len(table))
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q", title="what the channel adds to the score"),
            y=alt.Y("channel:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=["pushes up", "pulls down"], range=[UP_COLOUR, DOWN_COLOUR]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[
                "channel",
                alt.Tooltip("contribution:Q", format="+.3f"),
                alt.Tooltip("weight:Q", format="+.4f"),
                alt.Tooltip("average:Q", format=".3f", title="channel's average"),
            ],
        )
    )


def contribution_figure(table: pd.DataFrame, title: str) -> Figure:
    """The same bars as :func:`contribution_chart`, as a matplotlib ``Figure`` for the PNG download."""
    figure = Figure(figsize=(6.4, 0.28 * len(table) + 1.2), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    rows = list(range(len(table)))[::-1]  # first row on top
    colours = [UP_COLOUR if v > 0 else DOWN_COLOUR for v in table["contribution"]]
    axes.barh(rows, table["contribution"], color=colours)
    axes.set_yticks(rows, table["channel"])
    axes.axvline(0.0, color="#444444", linewidth=0.8)
    axes.set_xlabel("what the channel adds to the score (weight × channel's average)")
    axes.set_title(title, fontsize=10)
    return figure
