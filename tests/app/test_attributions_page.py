"""The "Pixel attributions" page through AppTest: bundled EfficientNet-Lite0, the cat, no network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from backbone_viz.explain.attributions import METHODS, get_method
from backbone_viz.explain.sanity import HEAD_LIMIT, RANDOM_LIMIT, check_verdict
from tests.app.helpers import texts
from webui.shell.links import PRESENT
from webui.views import attribution_view

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/attributions.py"
TIMEOUT = 180


@pytest.fixture(scope="module")
def at() -> AppTest:
    """The page after a first visit: the default backbone (bundled, pretrained) and the cat."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "warning"))


def test_five_methods_beside_gradcam(at: AppTest) -> None:
    assert at.title[0].value == "Pixel attributions: which pixels count?"
    assert not at.error and not at.warning
    text = _texts(at)
    assert "Five maps for “tiger cat”, beside Grad-CAM" in text
    for method, title in METHODS.items():
        assert f"**{title}**" in text and get_method(method).sentence in text
    assert "**Grad-CAM** (last stage)" in text and "last stage's 7 × 7 map" in text
    assert "one value per pixel of the 224 × 224 crop" in text
    assert len(at.main.image) == 2 + len(METHODS)  # the crop, Grad-CAM, five maps
    # Integrated Gradients' line in the legend quotes its own numbers.
    assert re.search(
        r"\*\*Integrated Gradients\*\*: .* 128 steps; the values add up to [+-]\d+\.\d\d, .* off by", text
    )
    # The radio offers the top-5; the sanity check waits for its button; the measured summary is shown.
    assert at.radio(key="_w_attr.target").options[0].startswith("tiger cat")
    assert at.button(key="attr.sanity")
    assert "Measured on EfficientNet-Lite0 (pretrained) with the 7 sample pictures" in text
    # A verdict per method, from the stored medians, with the rule that decides it; no developer text.
    data = attribution_view.measured()
    for method, result in attribution_view.measured_verdicts(data).items():
        assert attribution_view.verdict_line(METHODS[method], result, median=True) in text
    assert "**Guided Backprop: fails**" in text and "**Saliency (gradient): passes**" in text
    assert f"ρ ≥ {HEAD_LIMIT:.2f} once the head is random" in text
    assert f"ρ ≥ {RANDOM_LIMIT:.2f} once every weight is random" in text
    assert "kept the most of its map" not in text


def test_no_developer_text_on_the_page(at: AppTest) -> None:
    text = _texts(at)
    for developer in ("bench/", ".py", "--write", "backbone-viz lists"):
        assert developer not in text


def test_the_first_row_holds_every_map_on_a_projector() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state[PRESENT] = True
    at.run().switch_page(PAGE).run()
    assert not at.exception
    # The picture, Grad-CAM and the five maps side by side: one row of seven columns.
    rows = [
        block
        for block in at.main.children.values()
        if [type(c).__name__ for c in getattr(block, "children", {}).values()]
        == ["Column"] * (2 + len(METHODS))
    ]
    assert len(rows) == 1
    assert all(len(column.image) == 1 for column in rows[0].children.values())


def test_sanity_check_draws_the_cascade_with_its_correlations(at: AppTest) -> None:
    at.radio(key="_w_attr.sanity_method").set_value("saliency").run()
    at.button(key="attr.sanity").click().run()
    assert not at.exception and not at.error
    captions = [c for image in at.image for c in image.captions if "ρ" in c]
    assert captions[0] == "trained · ρ = 1.00"
    assert [c.split(" · ")[0] for c in captions[1:]] == [
        "+ head random", "+ stage 5 random", "+ stage 4 random", "+ stage 3 random", "+ stage 2 random",
        "+ stage 1 random",
    ]  # fmt: skip
    # The numbers under the maps and in the sentence are the engine's.
    check = bv.sanity_check(bv.load_backbone("efficientnet_lite0", device="cpu"), _cat(), "saliency")
    assert captions[1].endswith(f"{check.steps[1].correlation:.2f}")
    assert f"keeps a rank correlation of **{check.steps[1].correlation:.2f}**" in _texts(at)
    # The fresh check is judged by the same rule as the stored table.
    line = attribution_view.verdict_line(METHODS["saliency"], check_verdict(check))
    assert f"On your picture: {line}" in _texts(at)
    # Another class: a new set of maps, no exception.
    at.radio(key="_w_attr.target").set_value(at.radio(key="_w_attr.target").options[1]).run()
    assert not at.exception


def test_untrained_and_another_backbone(at: AppTest) -> None:
    at.radio(key="_w_weights").set_value("untrained").run()
    assert not at.exception and not at.error
    assert len(at.main.image) == 2 + len(METHODS)
    # A large backbone computes the slow methods only when asked.
    at.radio(key="_w_backbone").set_value("resnet50").run()
    assert not at.exception and not at.error
    assert len(at.main.image) == 2 + len(METHODS) - 2
    button = at.button(key="attr.run.integrated_gradients")
    assert button.label == "Compute it" and "Slow on ResNet-50" in button.help  # a short label: no cut-off
    assert at.button(key="attr.run.smoothgrad")
    at.radio(key="_w_backbone").set_value("efficientnet_lite0").run()


def test_measured_summary_matches_a_fresh_check() -> None:
    data = attribution_view.measured()
    assert data is not None and set(data["pictures"]) == {
        "astronaut", "cat", "china", "coffee", "flower", "grace_hopper", "rocket",
    }  # fmt: skip
    assert all(set(v) == set(METHODS) for v in data["pictures"].values())
    check = bv.sanity_check(bv.load_backbone("efficientnet_lite0", device="cpu"), _cat(), "input_x_gradient")
    # The table was measured on another machine: rank correlations over 50,176 pixels agree to a few
    # thousandths there, not to the last digit (two CPUs round the gradients differently).
    np.testing.assert_allclose(
        data["pictures"]["cat"]["input_x_gradient"], [s.correlation for s in check.steps], atol=5e-3
    )
    table = attribution_view.measured_table(data)
    verdicts = attribution_view.measured_verdicts(data)
    for method, title in METHODS.items():
        row = table[table["method"] == title].iloc[0]
        assert row["sanity check"] == ("passes" if verdicts[method].passes else "fails")
        assert (verdicts[method].head, verdicts[method].random) == (row["+ head"], row["+ stage 1"])
    assert "Guided Backprop" in attribution_view.measured_summary(data)


def _check(weights: str, head: float, last: float) -> bv.SanityCheck:
    """A check with these correlations (its maps are not needed for the sentences)."""
    steps = [bv.SanityStep(label, (), None, rho) for label, rho in (("trained", 1.0), ("head", head))]
    steps.append(bv.SanityStep("stage 1", (), None, last))
    target = bv.Prediction(282, "tiger cat", 0.4)
    return bv.SanityCheck("efficientnet_lite0", weights, "guided_backprop", {}, target, tuple(steps), 0)


def test_the_sanity_sentences_give_the_verdict_from_the_numbers() -> None:
    fails = attribution_view.sanity_sentences(_check("pretrained", 0.97, 0.3))
    assert "**Guided Backprop: fails** — its map barely changes when the head" in fails
    assert "(ρ = 0.97)" in fails and attribution_view.rule_sentence() in fails
    passes = attribution_view.sanity_sentences(_check("pretrained", 0.4, 0.1))
    assert "**Guided Backprop: passes**" in passes and "(ρ = 0.40 with a random head, 0.10" in passes
    alike = attribution_view.sanity_sentences(_check("pretrained", 0.6, 0.55))
    assert "**Guided Backprop: fails** — with every weight random its map still matches" in alike
    # Random from the start: nothing learned to destroy, so no verdict.
    untrained = attribution_view.sanity_sentences(_check("untrained", 0.97, 0.3))
    assert "gives no verdict" in untrained and "fails" not in untrained and "passes" not in untrained


def _cat():
    return bv.load_image(ROOT / "assets" / "samples" / "cat.jpg")
