"""The "Backbone → heads" page in a real browser: train a new head on the example set and look at it.

Starts ``streamlit run app.py`` (offline, its own torch cache) with the shared helpers, opens the page in
Debian's Chromium, trains on the example set, checks the pictures and that no exception is shown, and
saves ``heads.png`` next to the other pages' screenshots. Skipped only when ``/usr/bin/chromium`` is
missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
import re
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
TITLE = "Backbone → heads: one backbone, many heads"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("heads-server")) as running:
        yield running


def _no_exception(page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def test_heads_page_trains_a_new_head_in_chromium(server: Server) -> None:
    shots: Path = _screenshot_dir()
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(server.url)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _open_page(page, "Backbone → heads")
            page.get_by_text(TITLE).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            # Tab 1: the score split, numbers shown (the two last metrics are the same number).
            metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
            assert len(metrics) == 4 and metrics[2] == metrics[3], metrics

            page.get_by_role("tab", name=re.compile("A new head")).click()
            page.get_by_role("button", name="Use the example set").click()
            _settle(page)
            page.get_by_role("button", name="Train the new head").click()
            page.get_by_text("Leave-one-out accuracy").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "heads", min_images=8)
            _no_exception(page)
            panel = page.get_by_role("tabpanel")
            text = panel.inner_text()
            assert "100%" in text and "8 of 8" in text
            assert "The new head says" in text and "Only the head was trained" in text
            assert (
                panel.locator('[data-testid="stImage"] img').count() >= 8 + 3
            )  # examples, crop, 2 Grad-CAMs

            page.get_by_role("tab", name=re.compile("detection and segmentation")).click()
            page.get_by_text("Why a detector needs maps at several scales").wait_for(
                timeout=SETTLE_TIMEOUT_MS
            )
            _no_exception(page)
        finally:
            browser.close()
    assert "Traceback" not in server.log_text()
