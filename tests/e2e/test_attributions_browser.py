"""The "Pixel attributions" page in a real browser: five maps beside Grad-CAM, then the sanity check.

Starts ``streamlit run app.py`` (offline, its own torch cache) with the shared helpers, opens the page in
Debian's Chromium, checks the pictures, runs the sanity check of the plain gradient (the quickest) and
saves ``attributions.png`` next to the other pages' screenshots. Skipped only when ``/usr/bin/chromium``
is missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, Server, streamlit_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _check, _open_page, _screenshot_dir, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
TITLE = "Pixel attributions: which pixels count?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("attributions-server")) as running:
        yield running


def test_attributions_page_runs_the_sanity_check_in_chromium(server: Server) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _open_page(page, "Pixel attributions")
            page.get_by_text(TITLE).wait_for(timeout=SETTLE_TIMEOUT_MS)
            page.get_by_text("Five maps for").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            assert page.locator(EXCEPTION).count() == 0
            main = page.locator('[data-testid="stMain"]')
            assert main.locator('[data-testid="stImage"] img').count() == 7  # crop, Grad-CAM, five maps
            assert "Guided Backprop" in main.inner_text()

            page.get_by_role("button", name="Run the sanity check").click()
            page.get_by_text("+ stage 1 random").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, _screenshot_dir(), "attributions", min_images=14)
            text = main.inner_text()
            assert "trained · ρ = 1.00" in text and "keeps a rank correlation of" in text
            assert page.locator(EXCEPTION).count() == 0
        finally:
            browser.close()
    assert "Traceback" not in server.log_text()
