"""The sidebar every page shares: backbone, weights and picture (sample, upload or camera).

``app.py`` draws it once per run, before the page, inside :func:`sidebar_for_this_run`; each page also
calls :func:`render_sidebar` (through :func:`webui.page_setup`), which then does nothing. A page run on
its own (AppTest's ``switch_page`` runs only the page file) draws the sidebar itself. The choices live in
session state (:mod:`webui.shell.state`), so they are the same whichever file drew the widgets.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import streamlit as st
from PIL import Image, ImageOps

import backbone_viz as bv
from backbone_viz import render
from backbone_viz.core.backbones import WEIGHT_CHOICES
from backbone_viz.files.images import EXTENSIONS, MAX_BYTES, MAX_PIXELS
from webui.compute.caches import cached_picture
from webui.shell.links import apply_url
from webui.shell.state import (
    BACKBONE,
    DEFAULT_BACKBONE,
    IMAGE,
    IMAGE_ERROR,
    SAMPLE,
    USE_CAMERA,
    WEIGHTS,
    Choices,
    ImageChoice,
    current,
    init_defaults,
    persistent,
    sample_choice,
    samples,
)
from webui.shell.weights_ui import weights_size, weights_status

# Set while app.py's run draws the page, so that the page's own call draws nothing twice. A thread-local,
# not session state: a session runs its script in its own thread, and a write to st.session_state is a
# point where Streamlit may abort the run for a newer one, which could leave a session-state flag
# standing and hide the next run's sidebar (seen after two quick uploads).
_run = threading.local()
UPLOAD_KEY = "_w_upload"
CAMERA_KEY = "_w_camera"
THUMB = 96
#: Shorter side, in pixels, below which an upload is never shrunk: the largest size any backbone resizes
#: the shorter side to before it crops (232 or 256). The session keeps and analyses a copy whose shorter
#: side lies between this and twice this (a 12-megapixel phone photo: 504 x 378), so nothing the model
#: sees is lost, and the JPEG decoder works at 1/8 scale with no resize after it: 18 ms for a
#: 12-megapixel photo, where a resize after it took 45 (bench/profile_page.py).
WORKING_SHORT_SIDE = max(spec.preprocessing.resize for spec in bv.list_backbones())
#: A shrunk upload is kept as a new JPEG only when the file was larger than this.
_WORKING_BYTES = 400_000

WEIGHT_CAPTIONS = {
    "pretrained": "learned from ImageNet",
    "untrained": "random: the sanity check",
}


@contextmanager
def sidebar_for_this_run() -> Iterator[Choices]:
    """For ``app.py``: draws the sidebar, then lets the page run without drawing it again."""
    _run.drawn = False
    choices = render_sidebar()
    _run.drawn = True
    try:
        yield choices
    finally:
        _run.drawn = False


def render_sidebar() -> Choices:
    """Draws the shared sidebar (once per run) and returns this session's choices.

    A link's choices (the URL query, :mod:`webui.shell.links`) are taken first, so the widgets show them.
    """
    apply_url()
    init_defaults()
    if getattr(_run, "drawn", False):
        return current()
    with st.sidebar:
        _picture_picker()
        _backbone_picker()
    return current()


def _backbone_picker() -> None:
    specs = {spec.name: spec for spec in bv.list_backbones()}
    st.radio(
        "Backbone",
        list(specs),
        format_func=lambda name: specs[name].title,
        captions=[_describe(spec) for spec in specs.values()],
        help="The network that turns the picture into features: its size in millions of parameters, the "
        "size of its pretrained weights file, and whether that file is already here. Only "
        "EfficientNet-Lite0's weights come with backbone-viz; the others are downloaded once, the first "
        "time you pick them.",
        **persistent(BACKBONE, DEFAULT_BACKBONE, options=list(specs)),
    )
    st.radio(
        "Weights",
        WEIGHT_CHOICES,
        captions=[WEIGHT_CAPTIONS[w] for w in WEIGHT_CHOICES],
        horizontal=True,
        help="An untrained backbone has the same layers but random weights. Its early stages still pass "
        "edges and colours, but nothing it does was learned and its top-5 is a guess: comparing the two "
        "shows what training adds.",
        **persistent(WEIGHTS, "pretrained", options=WEIGHT_CHOICES),
    )
    st.caption(f"The model runs on {_where_it_runs()}.")


def _where_it_runs() -> str:
    """Where this server runs its models (the teacher's ``--device``), for the sidebar."""
    try:
        return bv.describe_device(bv.default_device())
    except bv.BackboneVizError as error:
        return f"no device it can use: {error.message}"


def _describe(spec: bv.BackboneSpec) -> str:
    status = weights_status(spec)
    mark = {"bundled": "bundled ✓", "in cache": "here ✓"}.get(status, "download")
    return f"{spec.params_millions:.1f} M params · {weights_size(spec)} · {mark}"


def _picture_picker() -> None:
    st.subheader("Picture")
    names = [sample.name for sample in samples()]
    captions = {sample.name: sample.caption for sample in samples()}
    _gallery(names, captions)
    st.selectbox(
        "Sample picture",
        names,
        format_func=lambda name: captions[name],
        placeholder="Choose a sample…",
        **persistent(SAMPLE, None, options=[*names, None], on_change=_on_sample),
    )
    st.file_uploader(
        "…or upload your own picture",
        type=list(EXTENSIONS),
        key=UPLOAD_KEY,
        on_change=_on_upload,
        help=f"PNG, JPEG, WebP, GIF, BMP or TIFF, up to {MAX_BYTES // 2**20} MB and "
        f"{MAX_PIXELS // 1_000_000} megapixels. The picture stays on this server only while you use the app.",
    )
    st.caption(
        f"Up to {MAX_BYTES // 2**20} MB and {MAX_PIXELS // 1_000_000} megapixels (a phone photo is about 12)."
    )
    if st.toggle("…or take a photo with the camera", **persistent(USE_CAMERA, False)):
        st.camera_input("Camera", key=CAMERA_KEY, on_change=_on_camera, label_visibility="collapsed")
    image: ImageChoice = st.session_state[IMAGE]
    st.image(_preview(image.sha256, image.data), caption=f"Now showing: {image.caption}", width=120)
    st.divider()


#: Each thumbnail is covered by its own (transparent) button, so that a click on the picture picks it; the
#: picture on show gets a blue frame. st.image alone only offers full screen, and a button cannot hold a
#: picture, hence the overlay.
GALLERY_CSS = """<style>
.st-key-gallery [data-testid="stColumn"] { position: relative; }
.st-key-gallery [data-testid="stElementContainer"]:has(.stButton) { position: absolute; inset: 0;
  width: 100% !important; z-index: 2; }
.st-key-gallery .stButton, .st-key-gallery .stButton div, .st-key-gallery .stButton span { width: 100%;
  height: 100%; }
.st-key-gallery .stButton button { width: 100%; height: 100%; min-height: 0; padding: 0; color: transparent;
  background: transparent; border: 3px solid transparent; border-radius: 6px; }
.st-key-gallery .stButton button:hover { border-color: #9bb8e8; background: transparent; }
.st-key-gallery .stButton button[kind="primary"] { border-color: #0b57d0; }
.st-key-gallery [data-testid="stElementToolbar"] { display: none; }
</style>"""
GALLERY_COLUMNS = 4


def _gallery(names: list[str], captions: dict[str, str]) -> None:
    """The sample thumbnails; clicking one picks that picture."""
    st.html(GALLERY_CSS)
    chosen = st.session_state.get(SAMPLE)
    with st.container(key="gallery"):
        for start in range(0, len(names), GALLERY_COLUMNS):
            row = names[start : start + GALLERY_COLUMNS]
            for column, name in zip(st.columns(GALLERY_COLUMNS, gap="small"), row, strict=False):
                with column:
                    st.image(_thumbnail(name), width="stretch")
                    st.button(
                        captions[name],
                        key=f"thumb.{name}",
                        type="primary" if name == chosen else "secondary",
                        on_click=pick_sample,
                        args=(name,),
                    )


def pick_sample(name: str) -> None:
    """Shows the sample ``name``. Usable as on_click."""
    st.session_state[SAMPLE] = name
    st.session_state[IMAGE] = sample_choice(name)
    st.session_state.pop(IMAGE_ERROR, None)


@cache
def _thumbnail(name: str) -> bytes:
    """A square JPEG thumbnail of a sample (made once per process)."""
    picture = bv.load_image(sample_choice(name).data)
    return render.encode(ImageOps.fit(picture, (THUMB, THUMB), Image.Resampling.LANCZOS), "jpeg", quality=85)


@st.cache_resource(max_entries=64, show_spinner=False)
def _preview(image_sha256: str, _data: bytes) -> bytes:
    """A small JPEG of the picture on show (an upload may be a 20 MB photo; never send that back)."""
    return _jpeg(cached_picture(image_sha256, _data), (2 * THUMB, 2 * THUMB))


def _jpeg(picture: Image.Image, size: tuple[int, int], *, quality: int = 85) -> bytes:
    picture = picture.copy()
    picture.thumbnail(size, Image.Resampling.LANCZOS)
    return render.encode(picture, "jpeg", quality=quality)


def _on_sample() -> None:
    name = st.session_state[SAMPLE]
    if name is not None:
        pick_sample(name)


def _was_shrunk(data: bytes, picture: Image.Image) -> bool:
    """Whether ``picture``, decoded from ``data``, has fewer pixels than the file (its header only is read)."""
    with Image.open(io.BytesIO(data)) as header:
        return picture.width * picture.height < header.width * header.height


def _on_upload() -> None:
    _take_file(st.session_state.get(UPLOAD_KEY), "upload")


def _on_camera() -> None:
    _take_file(st.session_state.get(CAMERA_KEY), "camera")


def _take_file(file: object | None, kind: str) -> None:
    """Uses an uploaded file or camera photo, or keeps the previous picture and records why not."""
    state = st.session_state
    if file is None:
        # Removed from the widget (also on the way to replacing it): the picture on show stays until
        # another one is chosen, so a refused replacement falls back to the previous upload.
        state.pop(IMAGE_ERROR, None)
        return
    name = getattr(file, "name", None) or "camera photo"
    data = file.getvalue()
    try:
        # A JPEG straight from the decoder at 1/2, 1/4 or 1/8 of its size, several times cheaper than a
        # 12-megapixel decode (bench/profile_page.py).
        picture = bv.load_image(data, shrink_to=WORKING_SHORT_SIDE)
    except bv.ImageError as error:
        state[IMAGE_ERROR] = (name, error.message, error.hint)
        return
    if len(data) > _WORKING_BYTES and _was_shrunk(data, picture):
        # A phone photo would otherwise be kept whole in this session and decoded whole again; every
        # backbone resizes to 256 px anyway. Keep the shrunk copy instead.
        data = render.encode(picture, "jpeg", quality=92)
    caption = "your camera photo" if kind == "camera" else f"your picture {name}"
    state[IMAGE] = ImageChoice.from_bytes(kind, name, caption, data)
    state[SAMPLE] = None
    state.pop(IMAGE_ERROR, None)
