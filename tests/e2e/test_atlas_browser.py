"""The feature atlas and the "What does this channel look for?" card in a real browser.

Starts ``streamlit run app.py`` (offline, its own torch cache), opens the Feature atlas page in Debian's
Chromium, checks that the shipped atlas's 40 pictures arrive and that no exception is shown, saves
``atlas.png`` beside the other pages' screenshots, then checks the card on the Feature build-up page.
Skipped only when ``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, Server, streamlit_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _open_page, _screenshot_dir, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
MAIN_IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("atlas-server")) as running:
        yield running


def _no_exception(page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def test_atlas_and_channel_card_in_chromium(server: Server) -> None:
    shots = _screenshot_dir()
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _open_page(page, "Feature atlas")
            page.get_by_text("Feature atlas: what each stage looks for").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            assert page.locator(MAIN_IMAGES).count() == 40
            assert page.get_by_text("shipped with backbone-viz", exact=False).count() == 1
            page.screenshot(path=str(shots / "atlas.png"), full_page=True)

            _open_page(page, "Feature build-up")
            page.get_by_text("What does channel #", exact=False).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            _no_exception(page)
            assert page.get_by_text("Where it fires most in real photos").count() == 1
            card = page.get_by_text("Each patch is", exact=False)
            assert card.count() == 1
            card.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "feature-card.png"))
        finally:
            browser.close()
    assert "Traceback" not in server.log_text()
