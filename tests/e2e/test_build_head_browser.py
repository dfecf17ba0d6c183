"""The "Build a head" page in a real browser: paint two strokes with the mouse, one per label, and see the
segmenter's mask appear beside the canvas; drag a box around the cat's eye and see a detector train and
find it.

Starts ``streamlit run app.py`` (offline, its own torch cache) and Debian's Chromium. Skipped only when
``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, Server, streamlit_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _screenshot_dir, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
TITLE = "Build a head: segment, box, detect"
#: Fabric.js draws on its upper canvas; the component keeps it in a shadow root, which Playwright's CSS
#: locators pierce.
CANVAS = "canvas.upper-canvas"
#: The page's canvases, in order: paint to segment, then boxes for the detector.
PAINT, BOXES = 0, 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("build-head-server")) as running:
        yield running


def _stroke(page: Page, points: list[tuple[float, float]], canvas: int = PAINT) -> None:
    """One freehand stroke (or a drag) through ``points`` (fractions of the canvas's width and height)."""
    box = page.locator(CANVAS).nth(canvas).bounding_box()
    assert box is not None
    xs = [box["x"] + fx * box["width"] for fx, _ in points]
    ys = [box["y"] + fy * box["height"] for _, fy in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:], strict=True):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_paint_two_labels_with_the_mouse_and_see_the_mask(server: Server) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/build_head?picture=cat")
        page.get_by_text(TITLE, exact=True).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
        _settle(page)
        page.locator(CANVAS).nth(PAINT).scroll_into_view_if_needed()
        page.get_by_text("Paint a stroke of each label on the picture").wait_for(timeout=SETTLE_TIMEOUT_MS)
        # The first label ("object", red) across the cat's face.
        _stroke(page, [(0.35, 0.5), (0.5, 0.55), (0.65, 0.5)])
        _settle(page)
        page.get_by_text("Only 'object' is painted").wait_for(timeout=SETTLE_TIMEOUT_MS)
        # The second label ("background", blue) along the top edge.
        page.locator('[data-testid="stRadio"] label').filter(has_text="background").click()
        _settle(page)
        page.locator(CANVAS).nth(PAINT).scroll_into_view_if_needed()
        _stroke(page, [(0.05, 0.04), (0.5, 0.03), (0.95, 0.04)])
        _settle(page)
        caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="The mask, from every stage")
        caption.wait_for(timeout=SETTLE_TIMEOUT_MS)
        assert page.locator(EXCEPTION).count() == 0
        text = caption.inner_text()
        assert "object" in text and "background" in text
        page.get_by_text("Which stages does a segmenter need?").wait_for(timeout=SETTLE_TIMEOUT_MS)
        page.screenshot(path=str(_screenshot_dir() / "build-head-painted.png"), full_page=True)
        # The same head on another picture, below.
        other = page.get_by_text("The same segmenter on another picture")
        other.wait_for(timeout=SETTLE_TIMEOUT_MS)
        other.scroll_into_view_if_needed()
        page.get_by_text("Your head, unchanged, on").wait_for(timeout=SETTLE_TIMEOUT_MS)
        page.screenshot(path=str(_screenshot_dir() / "build-head-other-picture.png"))
        browser.close()


def test_drag_a_box_around_the_eye_and_the_detector_finds_it(server: Server) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/build_head?picture=cat")
        page.get_by_text(TITLE, exact=True).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
        _settle(page)
        hint = page.get_by_text("Drag a box on the picture: the detector trains as soon as you let go.")
        hint.wait_for(timeout=SETTLE_TIMEOUT_MS)
        page.locator(CANVAS).nth(BOXES).scroll_into_view_if_needed()
        # Around the cat's left eye: crop pixels (28, 50) to (104, 118) of 224.
        _stroke(page, [(28 / 224, 50 / 224), (66 / 224, 84 / 224), (104 / 224, 118 / 224)], BOXES)
        _settle(page)
        trained = page.get_by_text("Trained in", exact=False).first
        trained.wait_for(timeout=SETTLE_TIMEOUT_MS)
        assert page.locator(EXCEPTION).count() == 0
        found = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="the best box overlaps it by IoU")
        found.wait_for(timeout=SETTLE_TIMEOUT_MS)
        iou = float(found.inner_text().split("IoU ")[1][:4])
        assert iou >= 0.5, found.inner_text()
        trained.scroll_into_view_if_needed()
        page.screenshot(path=str(_screenshot_dir() / "build-head-detector.png"))
        browser.close()
