"""Real detectors: torchvision's detectors and segmenters built on the chosen backbone, what they find on
the picture, and their backbone beside the classifier's (webui.views.dense_view)."""

import streamlit as st

import backbone_viz as bv
import webui
from webui.compute import caches
from webui.views import dense_looked, dense_view, widgets

choices = webui.page_setup()

st.title("Real detectors and segmenters on your backbone")
widgets.explain(
    "Real detectors and segmenters are built on the same backbones as the classifiers: the backbone turns "
    "the picture into maps, a **neck** gathers some of them, and new heads draw boxes or colour pixels. "
    "Notice which stages the neck reads, and, with trained weights, where it looked inside each box, which "
    "stages detection training kept as they were and how much it changed the others."
)

specs = bv.list_dense(backbone=choices.backbone)
if not specs:
    dense_view.no_models(choices)
    st.stop()

spec = dense_view.pick_model(choices, specs)
if not dense_view.weights_ready(choices, spec):
    st.stop()

dense = dense_view.model_or_stop(choices, spec)
picture = caches.cached_picture(choices.image.sha256, choices.image.data)
if dense.trained:
    threshold = dense_view.findings(choices, spec, picture)
    st.subheader(f"Where did {spec.title} look?")
    dense_looked.looked_section(choices, spec, picture, threshold)
else:
    dense_view.untrained_note(spec)

maps = dense_view.stage_maps(choices, spec)
st.subheader(f"The {bv.get_spec(spec.backbone).title} inside {spec.title}, beside the classifier")
dense_view.backbone_inside(choices, spec, dense, maps)

st.subheader("How much did detection training change each stage?")
dense_view.comparison_section(choices, spec, dense, maps)
