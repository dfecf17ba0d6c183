"""Build a head: dense heads a learner builds on the frozen backbone (webui.views.dense_heads), one section each."""

import streamlit as st

import webui
from webui.shell import projector
from webui.views import widgets
from webui.views.dense_heads import DENSE_HEADS

choices = webui.page_setup()

st.title("Build a head: segment, box, detect")
widgets.explain(
    "A **head** turns the backbone's features into an answer. Here you build new ones on the frozen "
    "backbone, with no training set: " + " ".join(head.line for head in DENSE_HEADS)
)

base = webui.analysis_or_stop(choices)

for number, head in enumerate(DENSE_HEADS, start=1):
    # On a projector the first section's canvas belongs in the first screen: its title is left out.
    if number > 1 or not projector.on():
        st.subheader(f"{number} · {head.title}")
    head.show(choices, base)
