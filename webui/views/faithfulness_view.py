"""The "Which map is right?" page's figures: the maps measured, occlusion, the deletion and insertion curves
with the pictures along them, the ranking, and ROAD.

Every sentence here is made from the numbers beside it (which map won, which beat the random map), so it
holds for every backbone and for untrained weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.explain.faithfulness import RANDOM, SOBEL
from webui.compute.faithfulness_cache import OCCLUSION
from webui.views import widgets

#: Baselines' names on the page.
BASELINE_TITLES = {RANDOM: "random map", SOBEL: "Sobel edges"}
OTHER_TITLES = {**BASELINE_TITLES, OCCLUSION: "Occlusion"}


def titles(maps: Sequence[str]) -> dict[str, str]:
    """Each map's name on the page: a CAM method's title, "occlusion", the baselines' names."""
    methods = {m.name: m.title for m in bv.list_cams()}
    return {name: methods.get(name, OTHER_TITLES.get(name, name)) for name in maps}


def show_maps(crop: Image.Image, maps: Mapping[str, np.ndarray], baselines: Mapping[str, np.ndarray]) -> None:
    """The maps measured, over the picture, then the two baselines, one row."""
    named = {**maps, **baselines}
    names = titles(list(named))
    cells = st.columns(len(named))
    for cell, (name, saliency) in zip(cells, named.items(), strict=True):
        cmap = render.GRADCAM_CMAP
        cell.image(
            widgets.shown(render.overlay(crop, saliency, alpha=0.6, cmap=cmap), photo=True), width="stretch"
        )
        cell.markdown(f"**{names[name]}**" + (" · explains nothing" if name in baselines else ""))


def ranking_table(ranking: bv.Ranking) -> pd.DataFrame:
    """One row per map, best first: its two areas and its place."""
    names = titles([row.name for row in ranking.rows])
    return pd.DataFrame(
        {
            "map": [names[row.name] + (" (baseline)" if row.baseline else "") for row in ranking.rows],
            "deletion area (lower is better)": [round(row.deletion_auc, 3) for row in ranking.rows],
            "insertion area (higher is better)": [round(row.insertion_auc, 3) for row in ranking.rows],
            "place": [row.rank for row in ranking.rows],
        }
    )


def verdict(ranking: bv.Ranking) -> str:
    """What the ranking says, from its numbers: the winner, and which maps beat the random one."""
    names = titles([row.name for row in ranking.rows])
    first = ranking.rows[0]
    measured = [row.name for row in ranking.rows if not row.baseline]
    beat = [name for name in ranking.beats_random if name in measured]
    if beat == measured:
        versus = "Every map measured beat the random map on both curves"
    elif beat:
        versus = (
            f"{_listed([names[n] for n in beat])} beat the random map on both curves; "
            f"{_listed([names[n] for n in measured if n not in beat])} did not"
        )
    else:
        versus = "No map measured beat the random map on both curves"
    lead = (
        f"**{names[first.name]}** comes first on this picture"
        + (", though it is a baseline that explains nothing" if first.baseline else "")
        + f" (deletion area {first.deletion_auc:.3f}, insertion area {first.insertion_auc:.3f})."
    )
    return f"{lead} {versus}: on this picture, for *{ranking.target.label}*."


def curves_chart(ranking: bv.Ranking, kind: str) -> pd.DataFrame:
    """The ``kind`` curve ("deletion" or "insertion") of every map: index the share of pixels changed."""
    names = titles(list(ranking.curves))
    first = next(iter(ranking.curves.values()))
    fractions = getattr(first, kind).fractions
    data = {names[name]: getattr(pair, kind).scores for name, pair in ranking.curves.items()}
    return pd.DataFrame(data, index=pd.Index(np.round(fractions * 100, 1), name="% of pixels changed"))


def show_steps(ranking: bv.Ranking, name: str, step: int) -> None:
    """The picture along both curves of one map at ``step``, with the probability the model gives it."""
    pair = ranking.curves[name]
    left, right = st.columns(2)
    for place, curve, what in ((left, pair.deletion, "deleted"), (right, pair.insertion, "put back")):
        index = min(step, len(curve.scores) - 1)
        place.image(widgets.shown(curve.picture(index), photo=True), width="stretch")
        place.caption(
            f"{curve.kind.capitalize()}: {curve.fractions[index]:.0%} of the pixels {what}, "
            f"*{ranking.target.label}* {curve.scores[index]:.1%}"
        )


def road_table(roads: Mapping[str, bv.Road]) -> pd.DataFrame:
    """ROAD's figures per map: the mean probability with the most and the least relevant pixels removed."""
    names = titles(list(roads))
    ordered = sorted(roads, key=lambda n: -roads[n].combined)
    return pd.DataFrame(
        {
            "map": [names[n] + (" (baseline)" if n == RANDOM else "") for n in ordered],
            "most relevant removed (lower is better)": [round(roads[n].morf_mean, 3) for n in ordered],
            "least relevant removed (higher is better)": [round(roads[n].lerf_mean, 3) for n in ordered],
            "score (higher is better)": [round(roads[n].combined, 3) for n in ordered],
        }
    )


def road_verdict(roads: Mapping[str, bv.Road], ranking: bv.Ranking | None) -> str:
    """ROAD's winner, and whether it agrees with deletion and insertion's."""
    names = titles([*roads, *(row.name for row in ranking.rows)] if ranking is not None else list(roads))
    best = max(roads, key=lambda n: roads[n].combined)
    text = f"ROAD puts **{names[best]}** first (score {roads[best].combined:.3f})."
    if ranking is not None:
        first = ranking.rows[0].name
        text += (
            " Deletion and insertion agree."
            if first == best
            else f" Deletion and insertion put {names[first]} first: the two tests disagree here."
        )
    return text


def occlusion_caption(occluded: bv.Occlusion) -> str:
    """What the occlusion map shows, from its numbers."""
    fall = float(occluded.map.max())
    rise = float(-occluded.map.min())
    text = (
        f"{len(occluded.tops)} × {len(occluded.lefts)} places of a {occluded.patch} px grey square, "
        f"{occluded.passes} forward passes. Covering the brightest place lowers *{occluded.target.label}* "
        f"from {occluded.base_score:.1%} by {fall:.1%}."
    )
    if rise > 0:
        text += f" Somewhere covering raises it, by up to {rise:.1%}: that part spoke against the class."
    return text


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


__all__ = [
    "curves_chart",
    "occlusion_caption",
    "ranking_table",
    "road_table",
    "road_verdict",
    "show_maps",
    "show_steps",
    "titles",
    "verdict",
]
