"""The "Inside a block" page in a real browser: the block's diagram with the picture's maps, a knock-out, and
the ablation chart.

Starts ``streamlit run app.py`` (offline, its own torch cache) with the shared helpers, opens the page in
Debian's Chromium at a projector's 1280 × 720, checks that the pictures load and no exception is shown,
removes the block, runs "Remove each block in turn", and saves ``inside-block.png`` next to the other
pages' screenshots. Skipped only when ``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, Server, streamlit_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _check, _open_page, _screenshot_dir, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
TITLE = "Inside a block: how backbones are built"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("inside-server")) as running:
        yield running


def _no_exception(page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def test_inside_a_block_in_chromium(server: Server) -> None:
    shots: Path = _screenshot_dir()
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(server.url)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _open_page(page, "Inside a block")
            page.get_by_text(TITLE).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            main = page.locator('[data-testid="stMain"]')
            assert main.get_by_text("blocks.1.1: an inverted residual block").count() == 1
            # The diagram is wider than tall and is drawn at the width of the page, not as a thumbnail.
            diagram = main.locator('[data-testid="stImage"] img').first
            box = diagram.bounding_box()
            assert box is not None and box["width"] >= 600 and box["width"] > 2 * box["height"], box
            assert main.get_by_text("comes from the shortcut").count() == 1

            page.get_by_role("button", name="Remove this block").click()
            page.get_by_text("Without blocks.1.1.").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            # The original top-5 and the new one, each with its Grad-CAM.
            assert main.locator('[data-testid="stProgress"]').count() == 10
            assert main.get_by_text("Grad-CAM of tiger cat", exact=False).count() == 2

            page.get_by_role("button", name="Remove each block in turn").click()
            page.get_by_text("blocks can be removed").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            assert main.locator('[data-testid="stVegaLiteChart"]').count() == 1
            _check(page, shots, "inside-block", min_images=8)  # diagram, 2 Grad-CAMs, 4 cards, sidebar
        finally:
            browser.close()
    assert "Traceback" not in server.log_text()
