"""Lessons, links that open the same view, projector mode and the first-time user's defects, in Chromium at
a projector's 1280 × 720.

Starts ``streamlit run app.py`` (offline, its own torch cache) with the shared helpers. Skipped only when
``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

import backbone_viz as bv
from tests.conftest import sample
from tests.e2e.helpers import (
    CHROMIUM,
    CUT_OFF_JS,
    EXCEPTION,
    LAUNCH,
    Server,
    streamlit_server,
)
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _settle
from webui import lessons
from webui.lessons import progress as lesson_progress
from webui.shell.links import LESSON_COUNT

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
PROJECTOR = {"width": 1280, "height": 720}
#: Every page's path and a text that tells it has drawn.
PAGES = {
    "": "What does a CNN backbone see?",
    "lessons": "Lessons: how a backbone sees",
    "feature_buildup": "Feature build-up: from edges to objects",
    "inside_block": "Inside a block: how backbones are built",
    "atlas": "Feature atlas: what each stage looks for",
    "gradcam": "Grad-CAM: where did the network look?",
    "attributions": "Pixel attributions: which pixels count?",
    "compare": "Compare backbones",
    "heads": "Backbone → heads: one backbone, many heads",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("lessons-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_playwright() as p:
        chromium = p.chromium.launch(**LAUNCH)
        try:
            yield chromium
        finally:
            chromium.close()


def _open(page: Page, server: Server, path: str, query: str = "") -> None:
    page.goto(f"{server.url}/{path}{'?' + query if query else ''}")
    page.get_by_text(PAGES[path], exact=True).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(page)
    _no_exception(page)


def _no_exception(page: Page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def _main(page: Page):
    return page.locator('[data-testid="stMain"]')


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


# ------------------------------------------------------------------------------------------- lessons


def test_each_lesson_asks_reveals_and_links(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    spec = bv.get_spec("efficientnet_lite0")
    for lesson in lessons.LESSONS:
        _open(page, server, "lessons", f"picture=cat&lesson={lesson.number}")
        main = _main(page)
        question = lesson.question(spec)
        # Waited for, not only counted: in one fresh-clone CI run, lesson 1 on a new server's first visit
        # looked settled (script not running, no status widget) before its question was drawn; the cause
        # was not found. If the question never comes, the failure shows what the page held instead.
        try:
            main.get_by_text(question.text).wait_for(timeout=SETTLE_TIMEOUT_MS)
        except PlaywrightTimeout:
            pytest.fail(f"lesson {lesson.number}'s question never appeared; the page shows: {main.inner_text()}")
        assert main.get_by_text(question.text).count() == 1
        assert main.get_by_text("Answer first").count() == 1
        assert main.get_by_role("link", name=re.compile("^Explore this")).count() == 0
        main.locator('[data-testid="stRadio"] [role="radiogroup"] label').nth(question.answer).click()
        _settle(page)
        _no_exception(page)
        assert main.get_by_text("Right.").count() == 1
        # the real figure: pictures, or a chart of numbers (lesson 6's bars)
        assert main.locator('[data-testid="stImage"] img, [data-testid="stVegaLiteChart"]').count() >= 1
        link = main.get_by_role("link", name=re.compile("^Explore this"))
        assert link.count() == 1
        query = _query(link.get_attribute("href"))
        assert query["picture"] == "cat" and query["backbone"] == spec.name
        assert _query(page.url)["answers"][lesson.number - 1] == lesson_progress.LETTERS[question.answer]
        if lesson.number == 2:  # the edge channel opens in Feature build-up, layer and channel set
            channel = query["channel"]
            link.click()
            page.get_by_text(PAGES["feature_buildup"]).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            assert _query(page.url)["layer"] == spec.layers[0].name
            assert _query(page.url)["channel"] == channel
            assert main.get_by_text(f"channel #{channel} of {spec.layers[0].label}").count() >= 1
        if lesson.number == 4:  # Grad-CAM opens on the class the lesson explained
            target = query["target"]
            link.click()
            page.get_by_text(PAGES["gradcam"]).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            assert _query(page.url)["target"] == target
    page.close()


def test_the_quiz_from_a_link(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    quiz = lessons.quiz(
        bv.get_spec("efficientnet_lite0"), bv.analyze(bv.load_backbone("efficientnet_lite0"), sample("cat"))
    )
    given = "".join(lesson_progress.LETTERS[q.answer] for q in quiz)
    _open(page, server, "lessons", f"lesson={lesson_progress.QUIZ}&answers={'-' * LESSON_COUNT}{given}")
    assert _main(page).get_by_text(f"You got {len(quiz)} of {len(quiz)} right.").count() == 1
    page.close()


# --------------------------------------------------------------------------------------------- links


def _copied_link(page: Page) -> str:
    return page.locator('[data-testid="stSidebar"] [data-testid="stCode"]').inner_text().strip()


def test_a_link_opened_in_a_fresh_browser_reproduces_the_view(server: Server, browser) -> None:
    first = browser.new_context(viewport=PROJECTOR).new_page()
    _open(first, server, "feature_buildup", "picture=coffee&weights=untrained&layer=blocks.2.0")
    # Change a control: the channel. The URL and the link follow.
    box = first.get_by_role("combobox", name="Channel")
    # The filtered list holds one option, focused: Enter picks it. (A click on it was seen to miss on a
    # loaded CI machine: the list re-renders under the pointer, "element was detached from the DOM"; and
    # once an Enter came before the list had settled and picked nothing, so a second try is allowed.)
    for _ in range(3):
        box.click()
        box.fill("rank 3,")
        first.get_by_role("option", name=re.compile("rank 3,")).wait_for(timeout=SETTLE_TIMEOUT_MS)
        box.press("Enter")
        _settle(first)
        if box.input_value().startswith("#"):
            break
    assert box.input_value().startswith("#") and "(rank 3," in box.input_value()
    channel = _query(first.url)["channel"]
    link = _copied_link(first)
    assert _query(link) == _query(first.url)

    second = browser.new_context(viewport=PROJECTOR).new_page()  # no cookies, no session: a fresh browser
    second.goto(link)
    second.get_by_text(PAGES["feature_buildup"]).wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(second)
    sidebar = second.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Now showing: An espresso cup on a saucer").wait_for(timeout=SETTLE_TIMEOUT_MS)
    assert sidebar.get_by_role("radio", name="untrained").is_checked()
    assert _main(second).get_by_text("blocks.2.0 (stage 3)").count() >= 1  # the layer slider
    assert second.get_by_role("combobox", name="Channel").input_value().startswith(f"#{channel} (rank 3,")
    assert _query(second.url) == _query(link)

    _open(first, server, "gradcam", "picture=flower&target=1")
    link = _copied_link(first)
    assert _query(link)["target"] == "1"
    second.goto(link)
    second.get_by_text(PAGES["gradcam"]).wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(second)
    assert _main(second).get_by_text("Grad-CAM now explains goldfish").count() == 1
    sidebar = second.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Now showing: An orange dahlia").wait_for(timeout=SETTLE_TIMEOUT_MS)
    first.context.close()
    second.context.close()


# ------------------------------------------------------------------------- what a first-time user met


def test_no_label_is_cut_off_at_1280_by_720(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    cut = {}
    for path in PAGES:
        _open(page, server, path, "picture=cat")
        cut[path or "home"] = page.evaluate(CUT_OFF_JS)
    # VGG-16 untrained: full-size stage 1 and 0.1 % guesses, where the first-time user saw labels cut off.
    for path in ("", "compare", "attributions"):
        _open(page, server, path, "picture=cat&backbone=vgg16&weights=untrained")
        cut[f"{path or 'home'} (VGG-16)"] = page.evaluate(CUT_OFF_JS)
    assert cut == dict.fromkeys(cut, [])
    page.close()


def test_a_gallery_thumbnail_click_picks_the_picture(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, "")
    thumb = page.locator('.st-key-gallery [data-testid="stImage"] img').nth(6)  # the rocket
    button = page.locator(".st-key-gallery").get_by_role("button", name="A Falcon 9 rocket lifting off")
    thumb.scroll_into_view_if_needed()
    # The thumbnail's centre is covered by its button: a click on the picture is a click on the button.
    # Playwright's click waits until the layout is still and checks that the button receives the click.
    picture, target = thumb.bounding_box(), button.bounding_box()
    assert target["x"] <= picture["x"] + picture["width"] / 2 <= target["x"] + target["width"]
    assert target["y"] <= picture["y"] + picture["height"] / 2 <= target["y"] + target["height"]
    button.click(timeout=SETTLE_TIMEOUT_MS)
    page.get_by_text("Now showing: A Falcon 9 rocket lifting off").wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(page)
    assert _query(page.url)["picture"] == "rocket"
    page.close()


def test_grad_cam_marks_the_chosen_class(server: Server, browser) -> None:
    result = bv.analyze(bv.load_backbone("efficientnet_lite0"), sample("cat"))
    third = result.predictions[2]
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, "gradcam", f"picture=cat&target={third.index}")
    marked = _main(page).locator('[data-testid="stProgress"]').filter(has_text="Grad-CAM explains this class")
    # Seen once in a fresh-clone CI on a loaded machine: the page looked settled before the mark was
    # drawn (cause not found). Wait for the mark before counting it.
    marked.first.wait_for(timeout=SETTLE_TIMEOUT_MS)
    assert marked.count() == 1 and third.label in marked.inner_text()
    page.close()


def test_untrained_note_home_and_weights_message(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, "", "weights=untrained")
    note = page.locator('[data-testid="stAlertContentWarning"]').first.inner_text()
    assert "still show its edges and colours" in note and "noise" not in note
    _open(page, server, "", "backbone=vgg16&weights=pretrained")
    main = _main(page)
    assert main.get_by_text("the pretrained weights are not available").count() == 1
    assert main.get_by_text("looking at your picture").count() == 0  # no claim above the missing weights
    assert main.get_by_text("TORCH_HOME").count() == 0  # the details are folded for the teacher
    main.get_by_text("For the teacher").click()
    assert main.get_by_text("BACKBONE_VIZ", exact=False).count() + main.get_by_text("offline").count() >= 1
    page.close()


def _pick_compare_row(page: Page, title: str) -> None:
    """Adds ``title`` to Compare's rows through its multiselect, as a user would."""
    box = page.get_by_role("combobox", name=re.compile("^Backbones to compare"))
    box.click()
    box.fill(title)
    page.get_by_role("option", name=title).wait_for(timeout=SETTLE_TIMEOUT_MS)
    box.press("Enter")  # the one option left by the filter (steadier than a click on a loaded machine)
    page.keyboard.press("Escape")
    _settle(page)


def test_compare_keeps_weights_per_row(server: Server, browser) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, "compare", "picture=cat")
    main = _main(page)
    _pick_compare_row(page, "ResNet-50 · pretrained")  # not ready offline: the page offers a way on
    main.get_by_role("button", name="Use an untrained ResNet-50").click()
    _settle(page)
    assert main.get_by_text("ResNet-50 · untrained").count() >= 1
    assert main.get_by_text("EfficientNet-Lite0 · pretrained").count() >= 1
    assert page.locator('[data-testid="stSidebar"]').get_by_role("radio", name="pretrained").is_checked()
    page.close()
