"""Backbone → heads: the same features feed the ImageNet head, a new head of your own, a detector's neck."""

import streamlit as st

import backbone_viz as bv
import webui
from backbone_viz import render
from backbone_viz.heads import RANDOM_CROPS
from backbone_viz.images import EXTENSIONS
from webui import models, widgets
from webui.state import BACKBONE, WEIGHTS, ImageChoice, persistent, set_choice

#: Session keys of this page: the learner's own head and where its photos came from.
HEAD = "heads.head"
PHOTO_NAMES = "heads.photo_names"
SOURCE = "heads.source"
RETRAIN = "heads.retrain"
CLASS_COUNTS = [2, 3, 4, 5]
CHANNELS_SHOWN = 6  # channel maps per row: the ones that push the score up most, then down most
BARS = 8  # bars per direction in the contribution chart
COPIES = RANDOM_CROPS + 1  # altered copies fit_head makes of each photo: its mirror image + random crops

choices = webui.page_setup()
spec = choices.spec
state = st.session_state

st.title("Backbone → heads: one backbone, many heads")
widgets.explain(
    "The **backbone** turns a picture into features; a **head** turns those features into an answer. "
    "The point of a good backbone is that many heads can reuse the same features: the ImageNet head that "
    "names 1000 classes, a new head for your own classes, the heads of a detector or a segmenter. The "
    "three tabs below show each of them at work on your picture."
)

result = webui.analysis_or_stop(choices)
crop = result.input_image
stem = f"{choices.image.stem}-{spec.name}"
last_layer = result.layers[-1]
last_stage = spec.stages[-1]
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
            "three fully connected layers; below are the "
            f"**{width} numbers** that its last layer reads. Unlike the other backbones, this head does not "
            "split into one share per channel: see why below."
        )
    split = result
    if spec.head_splits:
        options = [p.index for p in result.predictions]
        chosen = st.radio(
            "Which class's score should be split into channels?",
            options,
            format_func=lambda i: f"{result.categories[i]} ({result.probabilities[i]:.0%})",
            horizontal=True,
            **persistent("heads.split_class", options[0], options=options),
        )
        split = result if chosen == options[0] else webui.analysis_or_stop(choices, chosen)
    label = split.target.label

    pooled_strip = widgets.value_strip(split.pooled)
    picture, strips = st.columns([1, 5], vertical_alignment="center")
    picture.image(widgets.jpeg(crop), caption="the crop the backbone saw", width="stretch")
    with strips:
        if spec.head_splits:
            st.markdown(
                f"**What the head reads: {width} numbers.** Each thin stripe is one channel of "
                f"`{last_layer.label}`, its map averaged to one number (bright = large, dark = near zero)."
            )
        else:
            st.markdown(
                f"**What the head's last layer reads: {width} numbers**, made by two fully connected layers "
                "from the last stage's pooled maps (bright = large, dark = near zero)."
            )
        widgets.picture(pooled_strip, file_name=f"{stem}-pooled.png", key="heads.dl.pooled")

    contributions = None
    if not spec.head_splits:
        st.subheader("Why this score does not split into channels")
        st.info(
            f"**{spec.title}'s score does not split into channels.** Its head is three fully connected "
            "layers with a ReLU between them. A ReLU turns every negative number into zero, so how much "
            "one channel matters depends on all the others: the score is not a sum over channels, and no "
            "channel has a share of its own. ResNet, GoogLeNet and EfficientNet average each channel and "
            "use ONE linear layer, which is why their scores split exactly.",
            icon=":material/block:",
        )
        st.page_link(
            "pages/gradcam.py",
            label="Grad-CAM shows instead which places in the picture drive the score",
            icon=":material/target:",
        )
    else:
        try:
            contributions = models.contributions(choices.backbone, choices.weights, split)
        except bv.HeadError as error:
            st.error(f"{error.message}\n\n{error.hint}")

    if contributions is not None:
        values = contributions.values
        with strips:
            st.markdown(
                f"**What each channel adds to the score of “{label}”**: its number times the head's weight "
                "for it. Green pushes the score up, pink pulls it down, pale adds almost nothing."
            )
            contribution_strip = widgets.value_strip(values, cmap=widgets.CONTRIBUTION_CMAP, symmetric=True)
            widgets.picture(
                contribution_strip,
                file_name=f"{stem}-contributions-{split.target.index}.png",
                key="heads.dl.contrib",
            )

        st.subheader(f"The score of “{label}”, added up channel by channel")
        total = float(values.sum())
        pushed, pulled = values[values > 0].sum(), values[values < 0].sum()
        up, down = contributions.top_up(CHANNELS_SHOWN), contributions.top_down(CHANNELS_SHOWN)
        table = widgets.contribution_table(
            contributions, contributions.top_up(BARS), contributions.top_down(BARS)
        )
        sums, chart = st.columns([2, 3])
        with sums:
            first, second = st.columns(2), st.columns(2)
            first[0].metric(
                "Sum of contributions",
                f"{total:.3f}",
                help=f"All {width} channels added up: those pushing up add {pushed:+.3f}, "
                f"those pulling down {pulled:+.3f}.",
            )
            first[1].metric(
                "+ bias", f"{contributions.bias:+.3f}", help="One extra number per class, learned too."
            )
            second[0].metric("= sum + bias", f"{total + contributions.bias:.3f}")
            second[1].metric(
                "Head's score (logit)",
                f"{contributions.logit:.3f}",
                help="The score the network computed for this class, before softmax turned all the "
                "scores into probabilities.",
            )
            st.caption(
                "The last two numbers agree: the split is exact, not an estimate. Channels pushing up add "
                f"{pushed:+.3f} in total, channels pulling down {pulled:+.3f}; most channels add almost "
                "nothing."
            )
        with chart:
            st.markdown(f"**The {len(table)} channels that matter most for “{label}”**")
            st.altair_chart(widgets.contribution_chart(table), width="stretch", height=26 * len(table) + 70)
            widgets.download_png(
                lambda: widgets.contribution_figure(
                    table, f"What each channel adds to the score of “{label}”"
                ),
                f"{stem}-contribution-bars-{split.target.index}.png",
                key="heads.dl.bars",
                label="Bars (PNG)",
            )

        activation = split.activations[last_layer.name]
        if activation.shape[0] != width:
            st.caption(
                f"`{last_layer.label}` has {activation.shape[0]} channels, not the {width} the head reads, "
                "so its maps are not shown here."
            )
        else:
            for title, picked, direction in (
                (f"Channels that push “{label}” up most", up, "up"),
                (f"Channels that pull “{label}” down most", down, "down"),
            ):
                st.markdown(f"**{title}**, and where they fire on the picture")
                if len(picked) == 0:
                    st.caption("No channel does.")
                    continue
                images = [
                    render.overlay(crop, activation[c], alpha=0.6, cmap=render.ACTIVATION_CMAP)
                    for c in picked
                ]
                captions = [
                    f"#{c} adds {values[c]:+.3f}\n= {contributions.weights[c]:.3g} × {contributions.pooled[c]:.3g}"
                    for c in picked
                ]
                for cell, image, caption in zip(st.columns(CHANNELS_SHOWN), images, captions, strict=False):
                    cell.image(widgets.jpeg(image), width="stretch")
                    cell.caption(caption.replace("\n", "  \n"))
                widgets.download_png(
                    lambda images=images, captions=captions: render.image_row(images, labels=captions),
                    f"{stem}-channels-{direction}-{split.target.index}.png",
                    key=f"heads.dl.maps.{direction}",
                    label="Maps (PNG)",
                )
            st.caption(
                "Each picture is one channel's map laid over the crop (bright = strongly active). Under it: "
                "what the channel adds = the head's weight × the channel's average."
            )


# --------------------------------------------------------------------------- 2. a new head of your own
def _use(source: str) -> None:
    state[SOURCE] = source


def _retrain() -> None:
    state[RETRAIN] = True


def _switch_back(backbone: str, weights: str) -> None:
    set_choice(BACKBONE, backbone)
    set_choice(WEIGHTS, weights)


def _train(classes: list[tuple[str, list]], from_examples: bool) -> None:
    """Fits the learner's head on ``classes`` (label, photos or uploaded files); errors go to st.error."""
    examples: dict[str, list] = {}
    names: dict[tuple[str, int], str] = {}
    unreadable = False
    for label, items in classes:
        if from_examples:
            photos = [(f"{label} {i + 1}", photo) for i, photo in enumerate(items)]
        else:
            photos, problems = models.read_photos(items)
            for name, error in problems:
                st.error(f"**{name} could not be used.** {error.message}\n\n{error.hint}")
                unreadable = True
        key = label
        while key in examples:  # two boxes with one name: fit_head strips the spaces and names the repeat
            key += " "
        examples[key] = [photo for _, photo in photos]
        names.update({(label.strip(), i): name for i, (name, _) in enumerate(photos)})
    if unreadable:
        st.error("Remove the files that could not be used (✕ next to their names), then train again.")
        return
    count = sum(len(photos) for photos in examples.values())
    try:
        with st.spinner(f"Training a new head on {count} photos with {spec.title}…"):
            head = models.train_head(choices.backbone, choices.weights, examples)
    except bv.HeadError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    state[HEAD] = head
    state[PHOTO_NAMES] = names


def _show_head(head: bv.LinearHead) -> None:
    """The trained head: its honest test, what was trained, and a new picture through it."""
    n_photos = sum(head.n_images)
    right = sum(p.correct for p in head.loo_predictions)
    k, d = head.weight.shape
    st.subheader(f"Your {head.name}")
    facts = st.columns(4)
    facts[0].metric(
        "Leave-one-out accuracy",
        f"{head.loo_accuracy:.0%}",
        help="For each photo, a head was trained WITHOUT it (and without its altered copies) and asked what "
        "it shows: an honest test on photos the head had not seen.",
    )
    facts[1].metric("Photos right", f"{right} of {n_photos}")
    facts[2].metric(
        "Fit time",
        f"{head.fit_seconds:.1f} s",
        help="Altering the photos, running them through "
        "the backbone, and fitting the head once per left-out photo plus once with all of them.",
    )
    facts[3].metric("Numbers learned", f"{k * d + k:,}", help=f"{k} × {d} weights + {k} biases")
    st.markdown(
        f"**Only the head was trained.** The backbone's {spec.params_millions:.1f} million weights did not "
        f"change. Each photo and {COPIES} altered copies of it (mirrored, cropped, recoloured) went once "
        f"through the frozen backbone to become {d} numbers; that is where most of the fit time goes. The "
        f"head then learned {k} × {d} weights + {k} biases from those lists of numbers, a small problem "
        "solved in a blink. Training the backbone itself took over a million ImageNet photos and days of "
        "computing."
    )
    names = state.get(PHOTO_NAMES, {})
    with st.expander(
        f"Each photo, left out in turn ({right} of {n_photos} right)", expanded=right < n_photos
    ):
        st.dataframe(
            [
                {
                    "photo": names.get((p.label, p.index), f"{p.label} {p.index + 1}"),
                    "class": p.label,
                    "a head trained without it says": p.predicted,
                    "how sure": f"{p.probability:.0%}",
                    "right?": "✓" if p.correct else "✗",
                }
                for p in head.loo_predictions
            ],
            hide_index=True,
        )

    st.subheader("The new head looks at a new picture")
    which = st.radio(
        "Picture for the new head",
        ["sidebar", "upload"],
        format_func=lambda w: {
            "sidebar": f"the sidebar's picture ({choices.image.caption})",
            "upload": "a picture I upload here",
        }[w],
        horizontal=True,
        **persistent("heads.test_picture", "sidebar", options=["sidebar", "upload"]),
    )
    image, imagenet = choices.image, result
    if which == "upload":
        file = st.file_uploader("Picture for the new head", type=list(EXTENSIONS), key="heads.test_upload")
        if file is None:
            st.caption("Upload a picture to see what the new head calls it.")
            return
        image = ImageChoice.from_bytes("upload", file.name, f"your picture {file.name}", file.getvalue())
        imagenet = models.analysis(choices.backbone, choices.weights, image, key="heads.test")
        if imagenet is None:
            return
    try:
        view = models.head_view(choices.backbone, choices.weights, image, head)
    except bv.BackboneVizError as error:
        st.error(f"{error.message}\n\n{error.hint}")
        return
    layer = last_stage.last
    new_cam = render.overlay(view.input_image, view.gradcam, alpha=0.55)
    old_cam = render.overlay(imagenet.input_image, imagenet.gradcam[layer.name], alpha=0.55)
    cells = st.columns([1.4, 1, 1, 1])
    with cells[0]:
        st.markdown("**The new head says**")
        widgets.class_bars(view.predictions, view.target)
        st.caption(
            f"The ImageNet head says: **{imagenet.predictions[0].label}** ({imagenet.predictions[0].probability:.0%})"
        )
    cells[1].image(widgets.jpeg(view.input_image), caption="the crop the backbone saw", width="stretch")
    cells[2].image(
        widgets.jpeg(new_cam), caption=f"new head: Grad-CAM for “{view.target.label}”", width="stretch"
    )
    cells[3].image(
        widgets.jpeg(old_cam),
        caption=f"ImageNet head: Grad-CAM for “{imagenet.target.label}”",
        width="stretch",
    )
    shape = widgets.shape_text(imagenet.activations[layer.name].shape)
    st.caption(
        f"Both Grad-CAMs come from the same {shape} maps of `{layer.label}` (stage {last_stage.index}): the "
        "same backbone features, read by two different heads."
    )
    widgets.download_png(
        lambda: render.image_row(
            [view.input_image, new_cam, old_cam],
            labels=[
                "the crop",
                f"new head\n{view.target.label} {view.target.probability:.0%}",
                f"ImageNet head\n{imagenet.target.label} {imagenet.target.probability:.0%}",
            ],
        ),
        f"{image.stem}-{spec.name}-new-head.png",
        key="heads.dl.newhead",
        label="Both heads (PNG)",
    )
    st.info(
        f"**A head can only choose among its own classes.** This one knows only {', '.join(head.categories)}: "
        "show it a rocket or a flower (pick one in the sidebar) and it still answers one of those, often very "
        "sure. It has never learned to say “none of these”.",
        icon=":material/priority_high:",
    )


with tab_new:
    widgets.explain(
        "Training a backbone takes over a million photos, but what it learned is useful for other tasks too. "
        "Here the backbone stays frozen and you train only a **new head** on a few photos of your own "
        "classes: this is **transfer learning**. Notice how few photos it needs, and that the new head's "
        "Grad-CAM is made from the very same maps as the ImageNet head's."
    )
    st.subheader("Your classes")
    from_examples = state.get(SOURCE) == "example"
    classes: list[tuple[str, list]] = []
    if from_examples:
        st.markdown("**The example set**, made from the sample pictures:")
        thumbnails = widgets.example_thumbnails()
        for column, (label, photos) in zip(
            st.columns(len(thumbnails)), models.example_set().items(), strict=True
        ):
            with column.container(border=True):
                st.markdown(f"**{label}** · {len(photos)} photos")
                st.image(
                    list(thumbnails[label]),
                    caption=[f"{label} {i + 1}" for i in range(len(photos))],
                    width=72,
                )
            classes.append((label, list(photos)))
        st.caption(
            "Only a few sample pictures ship with backbone-viz, so “cat” and “coffee” are three crops of one "
            "photo each: easy to recognise again. “person” is the real test: the astronaut and Grace Hopper "
            "are two different people."
        )
        st.button("Use my own photos instead", on_click=_use, args=("own",), key="heads.own")
    else:
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        count = left.radio(
            "How many classes?",
            CLASS_COUNTS,
            horizontal=True,
            **persistent("heads.classes", CLASS_COUNTS[0], options=CLASS_COUNTS),
        )
        right.button(
            "Use the example set",
            on_click=_use,
            args=("example",),
            key="heads.example",
            icon=":material/photo_library:",
            help="Cat, coffee and person photos made from the sample pictures: no uploads needed.",
        )
        st.caption(
            "Give each class a name and at least 2 photos (3 to 10 is better). Leave a box empty to skip it."
        )
        boxes = st.columns(min(count, 3))
        for i in range(count):
            with boxes[i % len(boxes)].container(border=True):
                name = st.text_input(
                    f"Class {i + 1}",
                    placeholder="a short name, e.g. dog",
                    **persistent(f"heads.label.{i}", ""),
                )
                files = st.file_uploader(
                    f"Photos of class {i + 1}",
                    type=list(EXTENSIONS),
                    accept_multiple_files=True,
                    key=f"heads.files.{i}",
                    label_visibility="collapsed",
                )
                if name.strip() or files:
                    classes.append((name, list(files or [])))
    train = st.button(
        "Train the new head", type="primary", key="heads.train", icon=":material/model_training:"
    )
    if train or state.pop(RETRAIN, False):
        _train(classes, from_examples)

    head = state.get(HEAD)
    if head is None:
        st.caption("Nothing trained yet: pick your classes above and press **Train the new head**.")
    elif (head.backbone, head.weights) != (choices.backbone, choices.weights):
        made_for = bv.get_spec(head.backbone).title
        st.warning(
            f"**Your head belongs to another backbone.** It was trained on {made_for} ({head.weights} "
            f"weights), but the sidebar now shows {spec.title} ({choices.weights}). A head only understands "
            "the numbers of the backbone it was trained on: train it again on this one, or switch back."
        )
        again, back = st.columns(2)
        again.button(f"Train again on {spec.title}", on_click=_retrain, key="heads.retrain", type="primary")
        back.button(
            f"Switch back to {made_for}",
            on_click=_switch_back,
            args=(head.backbone, head.weights),
            key="heads.back",
        )
    else:
        _show_head(head)


# -------------------------------------------------------------------- 3. detection and segmentation
with tab_detect:
    widgets.explain(
        "A **detector** draws a box around every object; a **segmenter** colours every pixel by its class. "
        "Both start from a classification backbone like this one, but read several stages, not just the "
        "last. Below are the three maps a detector takes from this backbone for your picture: notice how "
        "the fine map keeps small details in place and the coarse map has few, large cells."
    )
    levels = models.pyramid(result)

    def _sees(receptive_field: int) -> str:
        side = f"{receptive_field} × {receptive_field} px"
        return f"the whole picture ({side})" if receptive_field >= crop.width else side

    cells = st.columns(4)
    cells[0].image(widgets.jpeg(crop), width="stretch")
    cells[0].caption(f"**your picture**  \n3 × {crop.height} × {crop.width}")
    maps, labels = [], []
    for cell, level in zip(cells[1:], levels, strict=False):
        image = render.map_image(render.representative(result, level.layer), size=crop.width)
        c, h, w = level.shape
        cell.image(widgets.png(image), width="stretch")
        cell.caption(
            f"**{level.name}** · stride {level.stride}  \n{c} × {h} × {w} from `{level.layer.label}`  \n"
            f"one cell = {level.stride} × {level.stride} px of the picture"
        )
        maps.append(image)
        labels.append(f"{level.name} · stride {level.stride}\n{c} × {h} × {w}")
    if len(levels) < 3:
        cells[len(levels) + 1].caption(
            f"**no stride-32 map listed for {spec.title}**: its listed layers end at stride 16 (the "
            "stride-32 map only exists after its last max pool)."
        )
    widgets.download_png(
        lambda: render.image_row(
            [crop, *maps], labels=[f"your picture\n3 × {crop.height} × {crop.width}", *labels]
        ),
        f"{stem}-pyramid.png",
        key="heads.dl.pyramid",
        label="Maps (PNG)",
    )
    rows = "\n".join(
        f"| **{level.name}** | {level.stride} | {widgets.shape_text(level.shape)} | stage {level.layer.stage} · "
        f"{level.layer.level} | {_sees(level.layer.receptive_field)} | {purpose} |"
        for level, purpose in zip(
            levels,
            [
                "small objects: a bird far away, a face in a crowd",
                "middle-sized objects",
                "large objects: a cat filling the picture",
            ],
            strict=False,
        )
    )
    st.markdown(
        "| map | stride | channels × height × width | stage · level | one cell can see | good for |\n"
        "|---|---|---|---|---|---|\n" + rows
    )
    st.subheader("Why a detector needs maps at several scales")
    st.markdown(
        "A bird 20 pixels wide is smaller than one cell of the stride-32 map, where its features are mixed "
        "with the sky around it; in the stride-8 map it covers several cells. A cat filling the picture needs "
        "the coarse map, whose cells see the whole cat. So a detector's **neck**, such as a **feature pyramid "
        "network (FPN)**, takes all three maps, passes the meaning of the coarse ones down to the fine ones, "
        "and its head looks for objects at every scale."
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
