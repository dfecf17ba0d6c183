"""Links that open the same view: the session's choices in the URL query, and back.

The URL names (``picture``, ``backbone``, ``weights``, ``layer``, ``channel``, ``target``, ``opacity``,
``lesson``, ``answers``, ``present``) are mapped onto the session keys the pages use, here and nowhere else. A page's
widgets need no change: they are bound to session keys by :func:`webui.shell.state.persistent`, and this module
fills those keys from the URL and writes them back.

* :func:`apply_url` (called by the sidebar, before its widgets) takes the URL's values into the session when
  the URL holds something this session did not write: a link opened in a fresh browser, or an "explore
  this" link (``st.page_link(..., query_params=...)``). Invalid values are ignored with a small notice.
* :func:`write_url` (called by :func:`webui.page_setup`) writes the view's values back after each change.
* :func:`share_control` draws the link in the sidebar, and :func:`copy_button` the "Copy link" button
  that stays in the page's top right corner, also in projector mode where the sidebar is folded away.
  A shared link leaves the lesson answers out unless the teacher asks for them.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

import backbone_viz as bv
from backbone_viz.core.backbones import WEIGHT_CHOICES
from webui.shell.state import BACKBONE, IMAGE, IMAGE_ERROR, SAMPLE, WEIGHTS, sample_choice, samples

#: Session keys of the choices that only pages draw (the one place that maps URL names onto them).
PRESENT = "present"
LESSON = "lesson"
ANSWERS = "lesson.answers"
CHANNEL = "channel"  # Feature build-up's channel
TARGET_MODE = "target_mode"  # Grad-CAM: "top" or "other"
TARGET_CLASS = "target_class"  # Grad-CAM's chosen class
ATTR_TARGET = "attr.target"  # Pixel attributions' class
SPLIT_CLASS = "heads.split_class"  # heads: the class whose score is split
BOX_CLASS = "build.box_class"  # Build a head: the class whose Grad-CAM is boxed
#: Each page's opacity slider: an overlay's look is part of the view a teacher shares.
OPACITY_KEYS = {"gradcam": "cam_opacity", "feature_buildup": "opacity"}
#: Session key of the sidebar's "with my answers" choice for shared lesson links.
SHARE_ANSWERS = "_links.share_answers"
CLASSES = 1000  # every backbone's ImageNet head
#: Lessons 1 to 9, then 10: the "check yourself" quiz (webui.lessons holds one entry per lesson; a test
#: checks the two agree).
LESSON_COUNT = 9
#: Lesson answers: one letter per question, "-" for not yet answered.
ANSWERS_PATTERN = re.compile(r"[a-d-]{1,16}")
#: URL names that class mode's pages read and write themselves (join code, a student's seat, the teacher's
#: one-time link): not view settings, so never applied here nor reported as an unused part of a link.
CLASS_NAMES = frozenset({"code", "seat", "teacher"})

_WRITTEN = "_links.written"
LINKED_CHANNEL = (
    "_links.channel"  # (layer, channel) a link asked for  # the query this session last wrote (or read)
)


def layer_key(backbone: str) -> str:
    """Feature build-up's layer choice for ``backbone``."""
    return f"layer.{backbone}"


def block_key(backbone: str) -> str:
    """Inside a block's block choice for ``backbone`` (a block is named by its layer)."""
    return f"block.{backbone}"


def linked_channel(layer: str) -> int | None:
    """The channel a link asked for in ``layer``, or ``None``: Feature build-up offers it even when it is
    not among the layer's most active channels."""
    linked = st.session_state.get(LINKED_CHANNEL)
    return linked[1] if linked is not None and linked[0] == layer else None


def _page() -> str:
    """The running page's file stem (``"gradcam"``): the nearest caller that is a file of ``app_pages/``."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent.name == "app_pages":
            return path.stem
        frame = frame.f_back
    return "home"


# -------------------------------------------------------------------------------- session -> URL


def _target(state: Mapping[str, object], page: str) -> object:
    if page == "gradcam":
        return state.get(TARGET_CLASS) if state.get(TARGET_MODE) == "other" else None
    key = {"attributions": ATTR_TARGET, "heads": SPLIT_CLASS, "build_head": BOX_CLASS}.get(page)
    return None if key is None else state.get(key)


def _layer(state: Mapping[str, object], page: str, backbone: str) -> object:
    key = {"feature_buildup": layer_key(backbone), "inside_block": block_key(backbone)}.get(page)
    return None if key is None else state.get(key)


#: For each URL name, its session value on a page (``None``: not part of this page's view).
_READERS: dict[str, Callable[[Mapping[str, object], str, str], object]] = {
    "picture": lambda s, p, b: s.get(SAMPLE),
    "backbone": lambda s, p, b: b,
    "weights": lambda s, p, b: s.get(WEIGHTS),
    "layer": _layer,
    "channel": lambda s, p, b: s.get(CHANNEL) if p == "feature_buildup" else None,
    "target": lambda s, p, b: _target(s, p),
    "opacity": lambda s, p, b: _opacity_text(s.get(OPACITY_KEYS[p])) if p in OPACITY_KEYS else None,
    "lesson": lambda s, p, b: s.get(LESSON) if p == "lessons" else None,
    "answers": lambda s, p, b: s.get(ANSWERS) if p == "lessons" else None,
    "present": lambda s, p, b: 1 if s.get(PRESENT) else None,
}


def _opacity_text(value: object) -> str | None:
    return None if value is None else f"{float(value):g}"  # type: ignore[arg-type]


def view_params(page: str) -> dict[str, str]:
    """The URL query of this session's view of ``page`` (a page file's stem)."""
    state = st.session_state
    backbone = str(state.get(BACKBONE))
    params = {}
    for name, read in _READERS.items():
        value = read(state, page, backbone)
        if value is not None and value != "":
            params[name] = str(value)
    return params


def write_url(page: str | None = None) -> dict[str, str]:
    """Writes this view's choices to the URL query (only when they changed); returns them."""
    page = page or _page()
    params = view_params(page)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[_WRITTEN] = params
    return params


# -------------------------------------------------------------------------------- URL -> session


def apply_url() -> None:
    """Takes the URL query's choices into the session, when they are not what this session wrote.

    Every value is checked; an unknown name or invalid value is skipped with an ``st.toast`` naming it.
    """
    query = st.query_params.to_dict()
    if query == st.session_state.get(_WRITTEN) or not query:
        return
    st.session_state[_WRITTEN] = query
    problems = apply(query)
    if problems:
        st.toast("Part of this link was not used: " + "; ".join(problems) + ".", icon=":material/link_off:")


def apply(query: Mapping[str, str]) -> list[str]:
    """Sets the session keys from URL values; returns a short sentence for each value not used."""
    state = st.session_state
    problems: list[str] = []

    def bad(name: str, value: str, why: str) -> None:
        problems.append(f"{name}={value!r} ({why})")

    known = set(_READERS) | CLASS_NAMES
    for name in query:
        if name not in known:
            bad(name, query[name], "not a setting of this app")

    specs = {spec.name: spec for spec in bv.list_backbones()}
    if "backbone" in query:
        if query["backbone"] in specs:
            state[BACKBONE] = query["backbone"]
        else:
            bad("backbone", query["backbone"], f"choose one of {', '.join(specs)}")
    if "weights" in query:
        if query["weights"] in WEIGHT_CHOICES:
            state[WEIGHTS] = query["weights"]
        else:
            bad("weights", query["weights"], f"choose {' or '.join(WEIGHT_CHOICES)}")
    if "picture" in query:
        names = [sample.name for sample in samples()]
        if query["picture"] in names:
            state[SAMPLE] = query["picture"]
            state[IMAGE] = sample_choice(query["picture"])
            state.pop(IMAGE_ERROR, None)
        else:
            bad("picture", query["picture"], "no sample picture of that name")

    backbone = state.get(BACKBONE, bv.list_backbones()[0].name)
    spec = specs[backbone]
    layer = spec.layers[0]
    if "layer" in query:
        layers = {item.name: item for item in spec.layers}
        if query["layer"] in layers:
            layer = layers[query["layer"]]
            state[layer_key(backbone)] = layer.name
            if any(block.name == layer.name for block in spec.blocks):
                state[block_key(backbone)] = layer.name
        else:
            bad("layer", query["layer"], f"{spec.title} has no layer of that name")
    elif layer_key(backbone) in state:
        layer = spec.layer(state[layer_key(backbone)])
    if "channel" in query:
        channel = _integer(query["channel"])
        if channel is not None and 0 <= channel < layer.channels:
            state[CHANNEL] = channel
            state[LINKED_CHANNEL] = (layer.name, channel)
        else:
            bad("channel", query["channel"], f"{layer.label} has channels 0 to {layer.channels - 1}")
    if "target" in query:
        target = _integer(query["target"])
        if target is not None and 0 <= target < CLASSES:
            state[TARGET_MODE] = "other"
            state[TARGET_CLASS] = target
            state[ATTR_TARGET] = target
            state[SPLIT_CLASS] = target
            state[BOX_CLASS] = target
        else:
            bad("target", query["target"], f"a class number from 0 to {CLASSES - 1}")
    if "opacity" in query:
        opacity = _fraction(query["opacity"])
        if opacity is None:
            bad("opacity", query["opacity"], "a number from 0 to 1, such as 0.55")
        else:
            for key in OPACITY_KEYS.values():
                state[key] = opacity
    if "lesson" in query:
        lesson = _integer(query["lesson"])
        if lesson is not None and 1 <= lesson <= LESSON_COUNT + 1:
            state[LESSON] = lesson
        else:
            bad(
                "lesson",
                query["lesson"],
                f"lessons are 1 to {LESSON_COUNT}, then {LESSON_COUNT + 1}: the quiz",
            )
    if "answers" in query:
        if ANSWERS_PATTERN.fullmatch(query["answers"]):
            state[ANSWERS] = query["answers"]
        else:
            bad("answers", query["answers"], "letters a to d, one per question")
    if "present" in query:
        if query["present"] in ("0", "1"):
            state[PRESENT] = query["present"] == "1"
        else:
            bad("present", query["present"], "1 for projector mode, 0 for normal")
    return problems


def _integer(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\d{1,6}", text) else None


def _fraction(text: str) -> float | None:
    """A slider value from 0 to 1 on the sliders' 0.05 grid, or None."""
    if not re.fullmatch(r"(0|1)(\.\d{1,4})?", text) or float(text) > 1:
        return None
    return round(round(float(text) / 0.05) * 0.05, 2)


# ------------------------------------------------------------------------------------ the control


def link(params: Mapping[str, str]) -> str:
    """The full link of this page with ``params`` (a relative ``?...`` when the browser's URL is unknown)."""
    base = st.context.url or ""
    return f"{base}?{urlencode(params)}" if params else base or "?"


def shared_params(params: Mapping[str, str], *, answers: bool) -> dict[str, str]:
    """The query a shared link carries: this view's, without the lesson answers unless ``answers``
    (a class opening the teacher's link should answer for itself)."""
    return {name: value for name, value in params.items() if answers or name != "answers"}


def share_control(params: Mapping[str, str], *, upload: bool) -> dict[str, str]:
    """The sidebar's "Copy link to this view": the link (Streamlit's copy button on hover) and, on a lesson,
    whether it carries the answers given so far. Returns the shared link's query."""
    st.markdown("**Copy link to this view**")
    with_answers = False
    if "answers" in params:
        with_answers = st.checkbox(
            "With the answers given so far",
            key=SHARE_ANSWERS,
            help="Off: whoever opens the link answers the lessons for themselves.",
        )
    shared = shared_params(params, answers=with_answers)
    st.code(link(shared), language=None, wrap_lines=True)
    if upload:
        st.caption(
            ":material/warning: Your own picture cannot travel in a link: whoever opens it sees the "
            "sample picture instead. Pick a sample to share the exact view."
        )
    else:
        st.caption("An uploaded picture cannot travel in a link; a sample picture can.")
    return shared


#: The button: fixed in the top right corner beside Streamlit's menu, so that it is one click away on every
#: page and in projector mode. The browser builds the address from its own location (the one the class
#: reached, behind nginx too) and the view's query; ``execCommand`` copies where ``navigator.clipboard`` is
#: missing (a plain-http address other than localhost is not a secure context).
_COPY_BUTTON = """
<style>
.bv-copy-link { position: fixed; top: 0.55rem; right: 3.6rem; z-index: 1000001; }
.bv-copy-link button { font: inherit; font-size: 16px; padding: 0.3rem 0.8rem; border-radius: 0.5rem;
  border: 1px solid rgba(49, 51, 63, 0.3); background: #fff; color: rgb(49, 51, 63); cursor: pointer; }
.bv-copy-link button:hover { border-color: #0b57d0; color: #0b57d0; }
/* The button floats; its element must not push the page down by the column's gap. */
[data-testid="stElementContainer"]:has(.bv-copy-link) { margin-bottom: -1rem !important; }
</style>
<div class="bv-copy-link"><button type="button" id="bv-copy-link" data-query=QUERY
  title="Copy a link that opens this page with the same picture, backbone and settings">Copy link</button></div>
<script>
(() => {
  const button = document.getElementById("bv-copy-link");
  if (!button || button.dataset.ready) return;
  button.dataset.ready = "1";
  button.addEventListener("click", async () => {
    const query = button.dataset.query;
    const url = location.origin + location.pathname + (query ? "?" + query : "");
    let copied = false;
    try { await navigator.clipboard.writeText(url); copied = true; } catch (e) {}
    if (!copied) {
      const area = document.createElement("textarea");
      area.value = url; document.body.appendChild(area); area.select();
      try { copied = document.execCommand("copy"); } catch (e) {}
      area.remove();
    }
    button.dataset.copied = copied ? url : "";
    button.textContent = copied ? "Link copied" : "Copy failed: use the link in the sidebar";
    setTimeout(() => { button.textContent = "Copy link"; }, 2500);
  });
})();
</script>
"""


def copy_button(params: Mapping[str, str]) -> None:
    """The "Copy link" button in the page's top right corner, copying this view's shared link."""
    query = html.escape(json.dumps(urlencode(params)), quote=False)
    st.html(_COPY_BUTTON.replace("QUERY", query), unsafe_allow_javascript=True)
