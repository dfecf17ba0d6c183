"""Every page as a class sees it on a projector: Chromium at 1280 × 720 in projector mode.

For each page: its main figure (a page's own number of pictures, each at least 150 px wide) lies wholly in the
first screen, no text of the main area is drawn under 12 px and none is cut off. Also the teacher's
"Copy link" button and a sidebar the browser remembers as open. Screenshots of each first screen are
written for people to read (``BACKBONE_VIZ_SCREENSHOTS``, else ``test-artifacts/screenshots``).

Starts ``streamlit run app.py`` (offline, its own torch cache). Skipped only when ``/usr/bin/chromium`` is
missing and ``CI`` is unset.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.helpers import (
    CHROMIUM,
    CUT_OFF_JS,
    EXCEPTION,
    FIRST_SCREEN_PICTURES_JS,
    LAUNCH,
    SMALL_TEXT_JS,
    Server,
    streamlit_server,
)
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _screenshot_dir, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
PROJECTOR = {"width": 1280, "height": 720}
#: The smallest picture a projected class can read, in CSS px at 1280 px wide.
READABLE_PX = 150
#: For each page: its path, the query that opens it, a text that tells it has drawn, and how many pictures
#: of at least READABLE_PX make its main figure (all of them in the first screen).
VIEWS = {
    "home": ("", "", "What does a CNN backbone see?", 6),
    "lessons": ("lessons", "&lesson=1&answers=b", "Lessons: how a backbone sees", 6),
    "lesson 2": ("lessons", "&lesson=2&answers=-a", "Lessons: how a backbone sees", 3),
    "lesson 4": ("lessons", "&lesson=4&answers=---d", "Lessons: how a backbone sees", 3),
    "feature_buildup": ("feature_buildup", "", "Feature build-up: from edges to objects", 5),
    "inside_block": ("inside_block", "", "Inside a block: how backbones are built", 1),
    "atlas": ("atlas", "", "Feature atlas: what each stage looks for", 4),
    "gradcam": ("gradcam", "", "Grad-CAM: where did the network look?", 5),
    "attributions": ("attributions", "", "Pixel attributions: which pixels count?", 4),
    "compare": ("compare", "", "Compare backbones", 6),
    "heads": ("heads", "", "Backbone → heads: one backbone, many heads", 1),
    "build_head": ("build_head", "", "Build a head: segment, box, detect", 1),
    "faithfulness": ("faithfulness", "", "Which map is right? Measure it", 5),
    "detectors": (
        "detectors",
        "&backbone=resnet50&weights=untrained",
        "Real detectors and segmenters on your backbone",
        5,
    ),
    # SSD's square maps, which would be taller than the first screen at their column's width.
    "detectors vgg16": (
        "detectors",
        "&backbone=vgg16&weights=untrained",
        "Real detectors and segmenters on your backbone",
        5,
    ),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("projector-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        launched = p.chromium.launch(**LAUNCH)
        yield launched
        launched.close()


def _open(page: Page, server: Server, view: str, extra: str = "") -> None:
    path, query, title, _count = VIEWS[view]
    page.goto(f"{server.url}/{path}?picture=cat&present=1{query}{extra}")
    page.get_by_text(title, exact=True).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(page)
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def _assert_figure_first(page: Page, view: str) -> None:
    """The view's main figure lies in the first screen (waiting while its pictures still decode on a busy
    machine), and no text is small or cut off."""
    count = VIEWS[view][3]
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            f"() => ({FIRST_SCREEN_PICTURES_JS})({READABLE_PX}).length >= {count}", timeout=10_000
        )
    pictures = page.evaluate(FIRST_SCREEN_PICTURES_JS, READABLE_PX)
    assert len(pictures) >= count, f"{view}: pictures in the first screen {pictures}"
    assert page.evaluate(SMALL_TEXT_JS) == []
    assert page.evaluate(CUT_OFF_JS) == []


@pytest.mark.parametrize("view", list(VIEWS))
def test_each_page_shows_its_figure_first_readable_and_whole(server: Server, browser, view: str) -> None:
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, view)
    assert page.locator('[data-testid="stSidebar"]').evaluate("e => e.getBoundingClientRect().right") <= 1
    _assert_figure_first(page, view)
    page.screenshot(path=str(_screenshot_dir() / f"projector-{view}.png"))
    page.close()


@pytest.mark.parametrize("view", ["inside_block", "gradcam", "compare", "attributions"])
def test_vgg_untrained_pages_stay_readable_and_whole(server: Server, browser, view: str) -> None:
    # VGG-16: full-size first stage, 13 blocks and 0.1 % guesses, where labels were cut off before.
    page = browser.new_page(viewport=PROJECTOR)
    _open(page, server, view, "&backbone=vgg16&weights=untrained")
    _assert_figure_first(page, view)
    page.screenshot(path=str(_screenshot_dir() / f"projector-{view}-vgg16-untrained.png"))
    page.close()


def test_copy_link_is_one_click_and_keeps_the_view(server: Server, browser) -> None:
    context = browser.new_context(viewport=PROJECTOR)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    _open(page, server, "gradcam", "&opacity=0.85")
    page.get_by_role("button", name="Copy link").click()
    page.get_by_role("button", name="Link copied").wait_for(timeout=5_000)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"{server.url}/gradcam?")
    query = {name: values[0] for name, values in parse_qs(urlparse(copied).query).items()}
    assert query == {
        "picture": "cat",
        "backbone": "efficientnet_lite0",
        "weights": "pretrained",
        "opacity": "0.85",
        "present": "1",
    }
    # The copied link opens the same view in a fresh browser, opacity included.
    other = browser.new_context(viewport=PROJECTOR).new_page()
    other.goto(copied)
    other.get_by_text(VIEWS["gradcam"][2]).wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(other)
    slider = other.locator('[data-testid="stSlider"]').filter(has_text="Opacity of Grad-CAM")
    assert "0.85" in slider.inner_text()
    other.context.close()
    context.close()


def test_projector_mode_folds_a_sidebar_the_browser_remembers_open(server: Server, browser) -> None:
    context = browser.new_context(viewport=PROJECTOR)
    first = context.new_page()
    _open(first, server, "home")
    first.locator('[data-testid="stExpandSidebarButton"]').click()
    # Open and wide: the browser now remembers the sidebar open.
    first.wait_for_function(
        "() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right > 200",
        timeout=5_000,
    )
    second = context.new_page()
    _open(second, server, "gradcam")
    second.wait_for_function(
        "() => document.querySelector('[data-testid=\"stSidebar\"]').getBoundingClientRect().right <= 1",
        timeout=5_000,
    )
    context.close()
