"""The web app's shared UI: the sidebar, the session's choices, the caches and small page helpers.

Pages start with::

    import webui
    choices = webui.page_setup()
    result = webui.analysis_or_stop(choices)

and then only draw. ``webui.models`` is the only module that calls the engine's ``load_backbone`` and
``analyze``.
"""

from __future__ import annotations

import streamlit as st

import backbone_viz as bv

from . import models
from .sidebar import render_sidebar, sidebar_for_this_run
from .state import IMAGE_ERROR, Choices

__all__ = ["Choices", "analysis_or_stop", "page_setup", "render_sidebar", "sidebar_for_this_run"]


def page_setup() -> Choices:
    """What every page calls first: the sidebar (drawn once per run) and the notes every page needs.

    Returns:
        The session's choices of backbone, weights and picture.
    """
    choices = render_sidebar()
    problem = st.session_state.get(IMAGE_ERROR)
    if problem is not None:
        name, message, hint = problem
        st.error(
            f"**{name} could not be used.** {message}\n\n{hint}\n\n"
            f"Still showing the previous picture: {choices.image.caption}."
        )
    if choices.weights == "untrained":
        st.warning(
            "**Untrained weights: random numbers instead of learned ones.** The maps look like noise and "
            "the top-5 is a guess. That is the point of this sanity check: the build-up from edges to "
            "objects only appears after training. Switch back to *pretrained* in the sidebar to compare."
        )
    return choices


def analysis_or_stop(choices: Choices, target: int | None = None) -> bv.AnalysisResult:
    """The analysis of the chosen picture by the chosen backbone; on failure the page explains and stops.

    Args:
        choices: from :func:`page_setup`.
        target: class index for Grad-CAM, or ``None`` for the top prediction.
    """
    result = models.analysis(choices.backbone, choices.weights, choices.image, target)
    if result is None:
        st.stop()
    return result
