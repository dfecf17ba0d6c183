"""The web app in a real browser: ``streamlit run app.py`` driven by Debian's Chromium through Playwright.

Visits every page, uploads a sample picture and a broken one, checks that the pictures load and that no
exception is shown, and saves full-page screenshots to ``test-artifacts/screenshots/`` (or the folder in
``BACKBONE_VIZ_SCREENSHOTS``). Skipped only when ``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, ERROR_BOX, ROOT, streamlit_server

SETTLE_TIMEOUT_MS = 90_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)


def _screenshot_dir() -> Path:
    folder = Path(os.environ.get("BACKBONE_VIZ_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on a free port of 127.0.0.1, offline (downloads fail at once)."""
    with streamlit_server(tmp_path_factory.mktemp("streamlit")) as running:
        yield running.url


def _settle(page) -> None:
    """Waits until the script run is over and every picture on the page has loaded."""
    # A rerun may take a moment to start after a click or an upload (or be over already).
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=1500)
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=SETTLE_TIMEOUT_MS
    )
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=SETTLE_TIMEOUT_MS)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                 .every(img => img.complete && img.naturalWidth > 0)""",
        timeout=SETTLE_TIMEOUT_MS,
    )
    page.wait_for_timeout(300)  # let the last layout settle before a screenshot


def _check(page, shots: Path, name: str, *, min_images: int) -> None:
    """No exception box, at least ``min_images`` loaded pictures, and a full-page screenshot."""
    _settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()
    count_loaded = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                           .filter(img => img.complete && img.naturalWidth > 0).length"""
    # An upload may trigger two reruns in a row (the old file removed, the new one added): give the
    # page a moment to show every picture again before counting.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"() => ({count_loaded})() >= {min_images}", timeout=30_000)
    loaded = page.evaluate(count_loaded)
    # Streamlit scrolls inside its own containers, so full_page alone captures one screen: make the
    # window as tall as the content first.
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stSidebarContent'].map(
                 id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))"""
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height + 40, size["height"]), 6000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.set_viewport_size(size)
    assert loaded >= min_images, f"{name}: only {loaded} pictures loaded (see {shots / name}.png)"


def _open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()


def test_every_page_in_chromium(server: str, tmp_path: Path) -> None:
    shots = _screenshot_dir()
    print(f"\nscreenshots: {shots}")
    bad = tmp_path / "not-a-picture.png"
    bad.write_text("This is a text file pretending to be a PNG.\n" * 20)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(server)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "home", min_images=8)
            assert page.get_by_text("stage 5 · high").count() >= 1

            _open_page(page, "Feature build-up")
            page.get_by_text("Feature build-up: from edges to objects").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "feature-build-up", min_images=20)

            _open_page(page, "Grad-CAM")
            page.get_by_text("Grad-CAM: where did the network look?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "grad-cam", min_images=15)

            _open_page(page, "Compare backbones")
            page.get_by_text("Backbones to compare").wait_for(timeout=SETTLE_TIMEOUT_MS)
            # It opens on backbones ready here: no error.
            assert page.locator(ERROR_BOX).count() == 0
            # ResNet-50's pretrained weights cannot be downloaded here: the page says so and offers a way on.
            box = page.get_by_role("combobox", name=re.compile("^Backbones to compare"))
            box.click()
            box.fill("ResNet-50 · pretrained")
            page.get_by_role("option", name="ResNet-50 · pretrained").wait_for(timeout=SETTLE_TIMEOUT_MS)
            box.press("Enter")  # the one option left by the filter (steadier than a click on a loaded machine)
            page.keyboard.press("Escape")
            page.get_by_text("the pretrained weights are not available").first.wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "compare-offline", min_images=6)
            page.get_by_role("button", name="Use an untrained ResNet-50").click()
            _check(page, shots, "compare", min_images=12)
            page.locator('[data-testid="stSidebar"]').get_by_text("pretrained", exact=True).click()
            _settle(page)

            # An upload replaces the picture on every page.
            _open_page(page, "Home")
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            uploader = page.locator('[data-testid="stSidebar"] input[type="file"]')
            uploader.set_input_files(str(ROOT / "assets" / "samples" / "flower.jpg"))
            page.get_by_text("Now showing: your picture flower.jpg").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "upload", min_images=8)

            # A broken upload is refused with the engine's message; the previous picture stays.
            uploader.set_input_files(str(bad))
            page.get_by_text("not-a-picture.png could not be used").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _check(page, shots, "bad-upload", min_images=8)
            assert page.get_by_text("Now showing: your picture flower.jpg").count() == 1
        finally:
            browser.close()
