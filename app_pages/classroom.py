"""Class mode, the teacher's page and the projector's view: open a class on the backbone and picture chosen in
the sidebar, project the join code and its QR code, watch the class's answers fill up, reveal the lesson's
real figure beside them, move on.

The teacher key stays in this session: a teacher's link (``?code=...&teacher=...``) is read once, before
anything is drawn, and dropped from the address bar; the link itself is offered only outside projector mode.
"""

import streamlit as st

import backbone_viz as bv
import webui
from webui.lessons import quiz
from webui.shell import projector
from webui.views import classroom_state as cs
from webui.views import classroom_views as views
from webui.views import widgets

link = cs.take_teacher_link()  # first: the key leaves the address bar before anything else happens
choices = webui.page_setup()

st.title("Class mode")
widgets.explain(
    "Open a class and project this page: students join on their own phones with the code or the QR code, "
    "without an account or a name, and answer each lesson's question. The bars fill up as they answer. "
    "**Reveal** shows the real figure beside the class's answers; **Next question** moves everyone on."
)
views.show_notice()
if link is not None:
    views.take_control(link, choices)

control = st.session_state.get(cs.CONTROL)
info = None if control is None else views.teacher_info(control)
if control is None or info is None:
    st.markdown(
        f"The class answers the {cs.lesson_slots()} lessons' questions, then the check-yourself quiz, about "
        f"**{choices.spec.title}** ({choices.weights} weights) and **{choices.image.caption}**: the backbone "
        "and picture chosen in the sidebar. Change them there before you open the class."
    )
    st.button(
        "Open a class", type="primary", icon=":material/groups:", on_click=views.open_class, args=(choices,),
        key="classroom.open",
    )  # fmt: skip
    st.stop()

# The quiz's questions read sizes off the class's analysis; the reveals draw on it.
picture = control.choices.image if control.choices is not None else cs.shape_picture(info)
activations = webui.activations(info.backbone, info.weights, picture, key="classroom.load")
if activations is None:
    st.stop()
spec = bv.get_spec(info.backbone)
slots = cs.lesson_slots() + len(quiz(spec, activations))
question = cs.question_at(info.question, spec, lambda: activations)

views.controls(info, slots)
if question is None:
    st.info("This class has no question in this place: pick one above.", icon=":material/help:")
elif not info.revealed:
    join, answers = st.columns([1, 1.7], gap="large")
    with join:
        views.code_card(info.code)
        views.nicknames(info.code)
    with answers:
        st.subheader(cs.slot_title(info.question))
        st.markdown(question.text)
        views.live_counts(info.code, info.question, question, False, False)
else:
    figure, answers = st.columns([4, 1], gap="medium")  # ~150 px per picture in a row of six
    with figure:
        views.reveal_figure(info, control, question, activations)
    with answers:
        st.markdown(f"**{cs.slot_title(info.question)}** · class {info.code}")
        views.live_counts(info.code, info.question, question, True, True)

if not projector.on():
    views.teacher_link(control)
