"""The heads page, tab 1, what the head sees: the class to split, the numbers the head reads, what
each channel adds to the score, the sum, and where the channels that matter most fire on the picture."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import backbone_viz as bv
from backbone_viz import render
from webui import analysis_or_stop
from webui.compute import heads_state
from webui.shell.state import Choices, persistent
from webui.views import widgets
from webui.views.widgets import Metric

CHANNELS_SHOWN = 6  # channel maps per row: the ones that push the score up most, then down most
BARS = 8  # channels per direction in the bars' PNG download
LARGEST = 8  # the largest numbers the head reads, as labelled bars
SPLIT_BARS = 4  # channels per direction in the figure's contribution bars
BAR_PX = 22  # height of one bar: 14 px labels with a little air
LARGEST_COLOUR = "#3b528b"  # viridis's blue, the colour of the activation maps


def class_to_split(choices: Choices, result: bv.AnalysisResult) -> bv.AnalysisResult:
    """Asks which top-5 class's score to split (a head that splits only); returns its analysis."""
    if not choices.spec.head_splits:
        return result
    options = [p.index for p in result.predictions]
    chosen = st.radio(
        "Which class's score should be split into channels?",
        options,
        format_func=lambda i: f"{result.categories[i]} ({result.probabilities[i]:.0%})",
        horizontal=True,
        **persistent("heads.split_class", options[0], options=options),
    )
    return result if chosen == options[0] else analysis_or_stop(choices, chosen)


def score_split(
    choices: Choices, split: bv.AnalysisResult
) -> tuple[bv.Contributions | None, bv.HeadError | None]:
    """What each channel adds to ``split``'s target score, or why it cannot be split (nothing drawn).

    Returns:
        ``(contributions, None)``, or ``(None, error)`` when the engine refuses, or ``(None, None)`` for
        a head that does not split (VGG: the page explains why with :func:`why_no_split`).
    """
    if not choices.spec.head_splits:
        return None, None
    try:
        return heads_state.contributions(choices.backbone, choices.weights, split), None
    except bv.HeadError as error:
        return None, error


def largest_table(values: np.ndarray, k: int = LARGEST) -> pd.DataFrame:
    """The ``k`` largest of the numbers a head reads, largest first, as rows for :func:`value_bars`.

    Args:
        values: (D,) the pooled vector, one number per channel (per unit for VGG's head).
        k: how many rows at most.

    Returns:
        Columns ``name`` (``"#112"``, the number's index), ``value`` and ``label`` (the value as written
        at the end of its bar, 3 significant digits).
    """
    order = np.argsort(-np.asarray(values), kind="stable")[: max(k, 0)]
    shown = [float(values[i]) for i in order]
    return pd.DataFrame(
        {
            "name": [f"#{int(i)}" for i in order],
            "value": shown,
            "label": [f"{v:.3g}" for v in shown],
            "colour": LARGEST_COLOUR,
        }
    )


def contribution_rows(contributions: bv.Contributions, k: int = SPLIT_BARS) -> pd.DataFrame:
    """The ``k`` channels that add most to the score, then the ``k`` that pull it down most.

    Returns:
        :func:`widgets.contribution_table`'s columns plus ``name``, ``value``, ``label`` (``"+0.546"``)
        and ``colour``, as :func:`value_bars` reads them.
    """
    table = widgets.contribution_table(contributions, contributions.top_up(k), contributions.top_down(k))
    table["name"] = table["channel"]
    table["value"] = table["contribution"]
    table["label"] = [f"{v:+.3f}" for v in table["contribution"]]
    table["colour"] = [widgets.UP_COLOUR if v > 0 else widgets.DOWN_COLOUR for v in table["contribution"]]
    return table


def value_bars(table: pd.DataFrame) -> alt.Chart:
    """Horizontal bars, first row on top, each named on the left and its value written at its end.

    Fonts are 14 px, readable on a projector at 1280x720; the x range leaves room for the numbers.

    Args:
        table: rows with ``name``, ``value``, ``label`` and ``colour`` (``#rrggbb``).
    """
    low, high = min(float(table["value"].min()), 0.0), max(float(table["value"].max()), 0.0)
    pad = 0.3 * ((high - low) or 1.0)
    x = alt.X("value:Q", axis=None, scale=alt.Scale(domain=[low - (pad if low < 0 else 0), high + pad]))
    y = alt.Y(
        "name:N",
        sort=None,
        title=None,
        axis=alt.Axis(labelFontSize=14, labelColor="#31333f", labelOverlap=False, ticks=False),
    )
    base = alt.Chart(table, height=BAR_PX * len(table)).encode(y=y)
    bars = base.mark_bar().encode(x=x, color=alt.Color("colour:N", scale=None, legend=None))
    right = base.transform_filter("datum.value >= 0").mark_text(align="left", dx=4, fontSize=14)
    left = base.transform_filter("datum.value < 0").mark_text(align="right", dx=-4, fontSize=14)
    zero = alt.Chart(pd.DataFrame({"value": [0.0]})).mark_rule(color="#444444").encode(x=x)
    return alt.layer(bars, right.encode(x=x, text="label:N"), left.encode(x=x, text="label:N"), zero)


def show_bars(table: pd.DataFrame) -> None:
    """:func:`value_bars` at the height its rows need."""
    st.altair_chart(value_bars(table), width="stretch", height=BAR_PX * len(table) + 16)


def what_the_head_reads(
    choices: Choices, split: bv.AnalysisResult, contributions: bv.Contributions | None
) -> None:
    """The crop beside the largest numbers the head reads and, when the score splits, the channels that
    add most to it and pull it down most; every number as a stripe below, folded."""
    spec, width = choices.spec, split.pooled.shape[0]
    largest = largest_table(split.pooled)
    picture, reads, adds = st.columns([1, 2, 2])
    picture.image(
        widgets.shown(split.input_image, photo=True), caption="the crop the backbone saw", width="stretch"
    )
    with reads:
        st.markdown(f"**The head reads {width} numbers: the {len(largest)} largest**")
        show_bars(largest)
    with adds:
        if contributions is not None:
            st.markdown(f"**What each channel adds to “{split.target.label}”**")
            show_bars(contribution_rows(contributions))
        elif not spec.head_splits:
            why_no_split(spec)
    first = str(largest["name"].iloc[0])
    if contributions is not None:
        st.caption(
            f"Left: the channels of `{split.layers[-1].label}` with the largest averages over the picture "
            f"({first} is channel {first[1:]}). Right: the {SPLIT_BARS} channels that push “{split.target.label}” "
            f"up most and the {SPLIT_BARS} that pull it down most; what a channel adds is its average × the "
            "head's weight for it."
        )
    elif spec.head_splits:
        st.caption(
            f"The channels of `{split.layers[-1].label}` with the largest averages over the picture "
            f"({first} is channel {first[1:]})."
        )
    else:
        st.caption(
            f"The largest of the {width} numbers that {spec.title}'s last fully connected layer reads "
            f"({first} is number {first[1:]}): they are not channels, each mixes all the channels of the last "
            "maps."
        )
    every_number(choices, split, contributions)


def every_number(choices: Choices, split: bv.AnalysisResult, contributions: bv.Contributions | None) -> None:
    """All the numbers the head reads (and what each adds) as thin stripes, folded in an expander."""
    spec, width = choices.spec, split.pooled.shape[0]
    stem = heads_state.file_stem(choices)
    with st.expander(f"All {width} numbers as stripes", icon=":material/view_week:"):
        if spec.head_splits:
            st.markdown(
                f"**What the head reads: {width} numbers.** Each thin stripe is one channel of "
                f"`{split.layers[-1].label}`, its map averaged to one number (bright = large, dark = near zero)."
            )
        else:
            st.markdown(
                f"**What the head's last layer reads: {width} numbers**, made by two fully connected layers "
                "from the last stage's pooled maps (bright = large, dark = near zero)."
            )
        widgets.picture(
            widgets.value_strip(split.pooled), file_name=f"{stem}-pooled.png", key="heads.dl.pooled"
        )
        if contributions is None:
            return
        st.markdown(
            f"**What each channel adds to the score of “{split.target.label}”**: its number times the head's "
            "weight for it. Green pushes the score up, pink pulls it down, pale adds almost nothing."
        )
        widgets.picture(
            widgets.value_strip(contributions.values, cmap=widgets.CONTRIBUTION_CMAP, symmetric=True),
            file_name=f"{stem}-contributions-{split.target.index}.png",
            key="heads.dl.contrib",
        )


def why_no_split(spec: bv.BackboneSpec) -> None:
    """Why a head of fully connected layers with ReLUs (VGG) has no share per channel."""
    st.subheader("Why this score does not split into channels")
    st.info(
        f"**{spec.title}'s score does not split into channels.** Its head is three fully connected "
        "layers with a ReLU between them. A ReLU turns every negative number into zero, so how much "
        "one channel matters depends on all the others: the score is not a sum over channels, and no "
        "channel has a share of its own. ResNet, GoogLeNet and EfficientNet average each channel and "
        "use ONE linear layer, which is why their scores split exactly.",
        icon=":material/block:",
    )
    st.page_link(
        "app_pages/gradcam.py",
        label="Grad-CAM shows instead which places in the picture drive the score",
        icon=":material/target:",
    )


def score_added_up(choices: Choices, split: bv.AnalysisResult, contributions: bv.Contributions) -> None:
    """The sum of the contributions plus the bias beside the head's own score (the bars are above)."""
    label, values = split.target.label, contributions.values
    st.subheader(f"The score of “{label}”, added up channel by channel")
    total = float(values.sum())
    pushed, pulled = values[values > 0].sum(), values[values < 0].sum()
    widgets.metrics(
        [
            Metric(
                "Sum of contributions",
                f"{total:.3f}",
                f"All {len(values)} channels added up: those pushing up add {pushed:+.3f}, "
                f"those pulling down {pulled:+.3f}.",
            ),
            Metric("+ bias", f"{contributions.bias:+.3f}", "One extra number per class, learned too."),
            Metric("= sum + bias", f"{total + contributions.bias:.3f}"),
            Metric(
                "Head's score (logit)",
                f"{contributions.logit:.3f}",
                "The score the network computed for this class, before softmax turned all the "
                "scores into probabilities.",
            ),
        ],
        per_row=4,
    )
    st.caption(
        "The last two numbers agree: the split is exact, not an estimate. Channels pushing up add "
        f"{pushed:+.3f} in total, channels pulling down {pulled:+.3f}; most channels add almost "
        "nothing."
    )
    table = widgets.contribution_table(
        contributions, contributions.top_up(BARS), contributions.top_down(BARS)
    )
    widgets.download_png(
        lambda: widgets.contribution_figure(table, f"What each channel adds to the score of “{label}”"),
        f"{heads_state.file_stem(choices)}-contribution-bars-{split.target.index}.png",
        key="heads.dl.bars",
        label=f"The {len(table)} channels that matter most (PNG)",
    )


def channels_on_the_picture(
    choices: Choices, split: bv.AnalysisResult, contributions: bv.Contributions
) -> None:
    """Where the channels that push the score up most, and pull it down most, fire on the crop."""
    label, values, crop = split.target.label, contributions.values, split.input_image
    last_layer, width = split.layers[-1], len(values)
    activation = split.activations[last_layer.name]
    if activation.shape[0] != width:
        st.caption(
            f"`{last_layer.label}` has {activation.shape[0]} channels, not the {width} the head reads, "
            "so its maps are not shown here."
        )
        return
    for title, picked, direction in (
        (f"Channels that push “{label}” up most", contributions.top_up(CHANNELS_SHOWN), "up"),
        (f"Channels that pull “{label}” down most", contributions.top_down(CHANNELS_SHOWN), "down"),
    ):
        st.markdown(f"**{title}**, and where they fire on the picture")
        if len(picked) == 0:
            st.caption("No channel does.")
            continue
        images = [render.overlay(crop, activation[c], alpha=0.6, cmap=render.ACTIVATION_CMAP) for c in picked]
        captions = [
            f"#{c} adds {values[c]:+.3f}\n= {contributions.weights[c]:.3g} × {contributions.pooled[c]:.3g}"
            for c in picked
        ]
        for cell, image, caption in zip(st.columns(CHANNELS_SHOWN), images, captions, strict=False):
            cell.image(widgets.shown(image, photo=True), width="stretch")
            cell.caption(caption.replace("\n", "  \n"))
        widgets.download_png(
            lambda images=images, captions=captions: render.image_row(images, labels=captions),
            f"{heads_state.file_stem(choices)}-channels-{direction}-{split.target.index}.png",
            key=f"heads.dl.maps.{direction}",
            label="Maps (PNG)",
        )
    st.caption(
        "Each picture is one channel's map laid over the crop (bright = strongly active). Under it: "
        "what the channel adds = the head's weight × the channel's average."
    )
