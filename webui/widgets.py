"""Small drawing helpers the pages share: explanations, pictures with a PNG download, stage labels."""

from __future__ import annotations

import io
from collections.abc import Callable

import streamlit as st
from matplotlib.figure import Figure
from PIL import Image

import backbone_viz as bv
from backbone_viz import render

LEVEL_COLOURS = {"low": "blue", "mid": "green", "high": "orange"}
LEVEL_WORDS = {"low": "edges & colours", "mid": "textures & parts", "high": "objects"}


def png(image: Image.Image) -> bytes:
    """PNG bytes for ``st.image``: lossless, for maps (flat colour cells compress well and fast)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def jpeg(image: Image.Image) -> bytes:
    """JPEG bytes for ``st.image``: for photos and overlays, where PNG costs ~20 ms per 224 px picture
    on every rerun (measured by bench/app.py) and JPEG well under 1 ms."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def explain(text: str) -> None:
    """The page's 2 to 4 plain sentences: what the learner sees and what to notice."""
    st.info(text, icon=":material/lightbulb:")


def level_badge(level: str) -> str:
    """Markdown for a coloured level badge: ``low``, ``mid`` or ``high``."""
    return f":{LEVEL_COLOURS[level]}-badge[{level} · {LEVEL_WORDS[level]}]"


def shape_text(array_shape: tuple[int, ...]) -> str:
    """``(40, 28, 28)`` -> ``"40 × 28 × 28"`` (channels × height × width)."""
    return " × ".join(str(n) for n in array_shape)


def stage_label(result: bv.AnalysisResult, stage: bv.StageSpec) -> str:
    """Two lines for a stage's picture: ``stage 3 · mid`` and ``40 × 28 × 28``."""
    return f"stage {stage.index} · {stage.level}\n{shape_text(result.activations[stage.last.name].shape)}"


def download_png(
    make: Callable[[], Image.Image | Figure], file_name: str, *, key: str, label: str = "PNG"
) -> None:
    """A download button whose PNG is made only when clicked (no cost on reruns, no rerun after)."""
    st.download_button(
        label,
        data=lambda: render.to_png(make()),
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
    st.image(jpeg(image) if photo else png(image), caption=caption, width=width)
    if file_name is not None:
        download_png(lambda: image, file_name, key=key or f"dl.{file_name}")


def report_button(result: bv.AnalysisResult, file_stem: str, *, key: str) -> None:
    """Downloads the one-page report (crop, top-5, every stage's map and Grad-CAM) as a PNG."""
    download_png(
        lambda: render.report_figure(result),
        f"{file_stem}-report.png",
        key=key,
        label="One-page report (PNG)",
    )


def top5(result: bv.AnalysisResult, *, mark_target: bool = True) -> None:
    """The head's top-5 as labelled bars; with ``mark_target``, the class Grad-CAM explains is marked."""
    for p in result.predictions:
        mark = "  ← Grad-CAM explains this class" if mark_target and p.index == result.target.index else ""
        st.progress(min(max(p.probability, 0.0), 1.0), text=f"**{p.label}** — {p.probability:.1%}{mark}")
    if mark_target and result.target.index not in {p.index for p in result.predictions}:
        st.caption(
            f"Grad-CAM explains **{result.target.label}** ({result.target.probability:.2%}), "
            "which is not in the top-5."
        )


def top5_lines(result: bv.AnalysisResult) -> str:
    """The top-5 as short markdown lines, for narrow cells."""
    return "  \n".join(f"{p.probability:.0%} {p.label}" for p in result.predictions)
