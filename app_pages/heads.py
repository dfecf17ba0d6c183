"""Backbone → heads: the same features feed the ImageNet head, a new head of your own, a detector's neck."""

import streamlit as st

import backbone_viz as bv
import webui
from webui.compute import heads_state
from webui.views import detector_maps, head_reads, new_head, widgets

choices = webui.page_setup()
spec = choices.spec

st.title("Backbone → heads: one backbone, many heads")
widgets.explain(
    "The **backbone** turns a picture into features; a **head** turns those features into an answer. "
    "The point of a good backbone is that many heads can reuse the same features: the ImageNet head that "
    "names 1000 classes, a new head for your own classes, the heads of a detector or a segmenter. The "
    "three tabs below show each of them at work on your picture."
)

result = webui.analysis_or_stop(choices)
width = result.pooled.shape[0]

tab_sees, tab_new, tab_detect = st.tabs(
    [
        "1 · What the head sees",
        "2 · A new head on the same backbone",
        "3 · Heads for detection and segmentation",
    ]
)

# ------------------------------------------------------------------------------ 1. what the head sees
with tab_sees:
    split = head_reads.class_to_split(choices, result)
    contributions, problem = head_reads.score_split(choices, split)
    head_reads.what_the_head_reads(choices, split, contributions)
    if spec.head_splits:
        widgets.explain(
            f"The head never looks at the picture. It reads **{width} numbers**: each channel of the last "
            "layer's map, averaged over the whole picture. A class's score is then a plain sum: every "
            "number times the head's weight for it, plus a bias. So you can see exactly which channels "
            "push a class up, which pull it down, and where on the picture they fire."
        )
    else:
        widgets.explain(
            f"The head never looks at the picture. {spec.title}'s head reads the last stage's maps through "
            f"three fully connected layers; the bars are the largest of the **{width} numbers** that its "
            "last layer reads. Unlike the other backbones, this head does not split into one share per "
            "channel: the note beside the bars says why."
        )
    if problem is not None:
        st.error(f"{problem.message}\n\n{problem.hint}")
    if contributions is not None:
        head_reads.score_added_up(choices, split, contributions)
        head_reads.channels_on_the_picture(choices, split, contributions)

# --------------------------------------------------------------------------- 2. a new head of your own
with tab_new:
    widgets.explain(
        "Training a backbone takes over a million photos, but what it learned is useful for other tasks too. "
        "Here the backbone stays frozen and you train only a **new head** on a few photos of your own "
        "classes: this is **transfer learning**. Notice how few photos it needs, and that the new head's "
        "Grad-CAM is made from the very same maps as the ImageNet head's."
    )
    st.subheader("Your classes")
    from_examples = heads_state.from_examples()
    classes = new_head.example_classes() if from_examples else new_head.own_classes()
    train = st.button(
        "Train the new head", type="primary", key="heads.train", icon=":material/model_training:"
    )
    if train or heads_state.take_retrain():
        new_head.train(choices, classes, from_examples=from_examples)

    head = heads_state.current_head()
    if head is None:
        st.caption("Nothing trained yet: pick your classes above and press **Train the new head**.")
    elif not heads_state.head_fits(head, choices.backbone, choices.weights):
        new_head.head_for_another_backbone(choices, head)
    else:
        new_head.trained_head(choices, head)
        new_head.head_on_a_new_picture(choices, result, head)

# -------------------------------------------------------------------- 3. detection and segmentation
with tab_detect:
    levels = bv.feature_pyramid(result)
    detector_maps.pyramid_maps(choices, result, levels)
    widgets.explain(detector_maps.what_to_notice(levels))
    detector_maps.pyramid_table(levels, result.input_image.width)
    st.subheader("Why a detector needs maps at several scales")
    st.markdown(
        "A bird 20 pixels wide is smaller than one cell of the stride-32 map, where its features are mixed "
        "with the sky around it; in the stride-8 map it covers several cells. A cat filling the picture needs "
        "the coarse map, whose cells see the whole cat. So a detector's **neck**, such as a **feature pyramid "
        "network (FPN)**, takes the maps of several strides, passes the meaning of the coarse ones down to "
        "the fine ones, and its head looks for objects at every scale."
    )
    st.subheader("How real detectors and segmenters reuse a ResNet-50 backbone")
    st.markdown(
        "- **Faster R-CNN** (a detector): a ResNet-50 backbone, an FPN neck on its stages, then two heads: "
        "one proposes boxes where something might be, the other names each box and adjusts its edges.\n"
        "- **RetinaNet** (a detector): the same ResNet-50 + FPN on C3, C4 and C5 (plus two coarser maps made "
        "from C5). Two small heads run on every map: one scores each class at every cell, one adjusts a box.\n"
        "- **DeepLab** (a segmenter): a ResNet-50 whose last stages stop halving the map (they use dilated "
        "convolutions instead), so the map stays fine. Its head looks around each cell at several distances "
        "and scores a class for it; the result is enlarged to label every pixel.\n\n"
        "All three usually start from the ImageNet-trained backbone, the very features you explored on the "
        "other pages; only their heads (and neck) are new, trained on boxes or on coloured-in pictures."
    )
