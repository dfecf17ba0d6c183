"""Pretrained weights in the web app: where they are, their download with a progress bar, and what a page
shows when they cannot be had (``st.error`` and buttons to a backbone that needs no download).

Weights that must be downloaded are fetched *before* the cached loader runs (``weights.ensure`` with a
progress callback driving ``st.progress``), so that no element is drawn inside a cached function (which
Streamlit would replay on every cache hit) and a failure is never cached.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

import backbone_viz as bv
from backbone_viz.files import weights as weights_mod
from webui.compute.caches import cached_backbone
from webui.shell.state import WEIGHTS, set_backbone, set_choice


def weights_status(spec: bv.BackboneSpec) -> str:
    """Where the pretrained weights are: ``"bundled"``, ``"in cache"`` or ``"download needed"``."""
    if spec.bundled:
        return "bundled"
    return "in cache" if weights_mod.cached_path(spec.weights_file) is not None else "download needed"


def weights_size(spec: bv.BackboneSpec) -> str:
    """The pretrained weights' file size for people ("98 MB")."""
    if spec.weights_file is not None:
        return weights_mod.describe_size(spec.weights_file.size_bytes)
    path = weights_mod.bundled_path(spec)
    return weights_mod.describe_size(path.stat().st_size) if path is not None else "unknown size"


def download_with_progress(file: weights_mod.WeightsFile, what: str) -> None:
    """Fetches a weights file into the torch cache (the mirror first when one is set, SHA-256 checked),
    showing a progress bar that says ``what`` is downloading and how big it is.

    Raises:
        WeightsError: offline, mirror unreachable, damaged download...
    """
    text = f"Downloading {what} ({weights_mod.describe_size(file.size_bytes)}), once for everyone…"
    bar = st.progress(0.0, text=text)
    shown = [-1]

    def progress(done: int, total: int | None) -> None:
        # The callback fires per chunk; redraw only when the whole percent changes.
        fraction = min(done / total, 1.0) if total else 0.0
        if int(fraction * 100) != shown[0]:
            shown[0] = int(fraction * 100)
            bar.progress(fraction, text=f"{text} {weights_mod.describe_size(done)}")

    try:
        weights_mod.ensure(file, progress=progress)
    finally:
        bar.empty()


def load(
    name: str,
    weights: str,
    *,
    key: str = "load",
    offer_bundled: bool = True,
    use_untrained: Callable[[], None] | None = None,
) -> bv.Backbone | None:
    """The backbone for this run, or ``None`` after explaining on the page why it cannot be loaded.

    Downloads pretrained weights first when needed (with a progress bar). A ``WeightsError`` (offline, a
    damaged file) is shown with ``st.error`` and buttons that switch to the bundled or the untrained
    backbone; never a traceback.

    Args:
        name: backbone spec name.
        weights: ``"pretrained"`` or ``"untrained"``.
        key: prefix of the buttons' keys (several backbones may fail on one page).
        offer_bundled: offer a button that switches the sidebar to the bundled backbone.
        use_untrained: what the "untrained" button does (see :func:`weights_problem`).
    """
    spec = bv.get_spec(name)
    try:
        if weights == "pretrained" and weights_status(spec) == "download needed":
            download_with_progress(spec.weights_file, f"the pretrained weights of {spec.title}")
        with st.spinner(f"Loading {spec.title} ({weights})…"):
            return cached_backbone(name, weights)
    except bv.WeightsError as error:
        weights_problem(spec, error, key=key, offer_bundled=offer_bundled, use_untrained=use_untrained)
        return None
    except bv.BackboneVizError as error:  # the server's device is not there: the teacher must fix it
        st.error(f"**{spec.title} cannot run on this server.** {error.message}\n\n{error.hint}")
        return None


def _bundled_spec() -> bv.BackboneSpec:
    """The backbone whose weights ship with backbone-viz (the first bundled one listed)."""
    return next(spec for spec in bv.list_backbones() if spec.bundled)


def weights_problem(
    spec: bv.BackboneSpec,
    error: bv.WeightsError,
    *,
    key: str,
    offer_bundled: bool = True,
    use_untrained: Callable[[], None] | None = None,
) -> None:
    """Explains a weights failure in one sentence and offers backbones that need no download; the
    details (why, the environment variable, the commands) are folded away for the teacher.

    Args:
        use_untrained: what the "untrained" button does (default: the sidebar's weights become untrained;
            a Compare row changes only itself).
    """
    bundled = _bundled_spec()
    st.error(
        f"**{spec.title}: the pretrained weights are not available.** Keep exploring with one of these:",
        icon=":material/cloud_off:",
    )
    left, right = st.columns(2)
    if offer_bundled and not spec.bundled:
        left.button(
            f"Use the bundled {bundled.title}",
            key=f"{key}.bundled.{spec.name}",
            on_click=set_backbone,
            args=(bundled.name, "pretrained"),
            type="primary",
            help=f"{bundled.title}'s real weights come with backbone-viz.",
        )
    right.button(
        f"Use an untrained {spec.title}",
        key=f"{key}.untrained.{spec.name}",
        on_click=use_untrained or (lambda: set_choice(WEIGHTS, "untrained")),
        help="The same layers with random weights: what the architecture does before any learning.",
    )
    with st.expander("For the teacher: why, and how to get these weights"):
        st.markdown(f"{error.message}\n\n{error.hint}")
