"""Uploads gone wrong, in a real browser against ``streamlit run app.py``: files over the caps, and uploads
cut off half-way, while another session keeps working.

* A 25 MB file is refused by Streamlit's own uploader (``server.maxUploadSize`` = 20 MB) before the app
  sees it; a 50-megapixel PNG (a few MB) reaches ``load_image`` and is refused with the engine's message.
  Either way the previous picture stays and the next upload works.
* An upload cut off half-way: a browser closed during a throttled 15 MB upload, and upload requests sent
  by hand (a body dropped mid-way, a multipart body without its end, a body over the cap). The server
  answers them or drops them, and serves every session as before.

Skipped only when ``/usr/bin/chromium`` is missing and ``CI`` is unset.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.helpers import (
    CHROMIUM,
    ERROR_BOX,
    EXCEPTION,
    IDLE_JS,
    IMAGES_LOADED_JS,
    LAUNCH,
    ROOT,
    Server,
    streamlit_server,
)

SAMPLES = ROOT / "assets" / "samples"
TIMEOUT_MS = 60_000
HOME = "What does a CNN backbone see?"
MB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with streamlit_server(tmp_path_factory.mktemp("faults-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(**LAUNCH)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 25 MB file, a 50-megapixel PNG of a few MB, and a 15 MB JPEG of noise."""
    folder = tmp_path_factory.mktemp("uploads")
    big = folder / "too-big.jpg"
    with open(big, "wb") as out:  # a JPEG's first bytes, then 25 MB: the uploader refuses it by size alone
        out.write(b"\xff\xd8\xff\xe0" + os.urandom(25 * MB))
    pixels = np.full((6250, 8000, 3), (40, 120, 200), dtype=np.uint8)  # 8000 x 6250 = 50 megapixels
    rng = np.random.default_rng(0)
    for top in range(0, 6250, 625):  # noise stripes, so it is a picture, not only a colour
        pixels[top : top + 16] = rng.integers(0, 256, size=(16, 8000, 3), dtype=np.uint8)
    huge = folder / "fifty-megapixels.png"
    Image.fromarray(pixels).save(huge, compress_level=1)
    noise = folder / "noise.jpg"
    Image.fromarray(rng.integers(0, 256, size=(3200, 4000, 3), dtype=np.uint8)).save(noise, quality=95)
    assert big.stat().st_size > 25 * MB and huge.stat().st_size < 20 * MB
    assert 10 * MB < noise.stat().st_size < 20 * MB
    return {"big": big, "huge": huge, "noise": noise}


def _settle(page: Page, marker: str | None = None) -> None:
    """Waits for ``marker`` (if given), an idle script and every picture decoded."""
    if marker is not None:
        page.get_by_text(marker).first.wait_for(timeout=TIMEOUT_MS)
    with contextlib.suppress(PlaywrightTimeout):  # a rerun may take a moment to start
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=1000)
    page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)
    page.wait_for_function(IMAGES_LOADED_JS, timeout=TIMEOUT_MS)


def _no_exception(page: Page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def _open(browser: Browser, server: Server) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(server.url)
    _settle(page, HOME)
    return page


def _upload(page: Page, path: Path) -> None:
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(path))


def _upload_and_check(page: Page, path: Path) -> None:
    """A good picture is taken and analysed: the app works."""
    _upload(page, path)
    _settle(page, f"Now showing: your picture {path.name}")
    _no_exception(page)
    assert page.locator(ERROR_BOX).count() == 0
    assert page.get_by_text("stage 5 · high").count() >= 1


# ------------------------------------------------------------------------------------------ the caps


def test_files_over_the_caps_are_refused_and_the_app_keeps_working(
    server: Server, browser: Browser, files: dict[str, Path]
) -> None:
    page = _open(browser, server)
    try:
        _upload_and_check(page, SAMPLES / "flower.jpg")
        shown = "Now showing: your picture flower.jpg"

        # Over 20 MB: Streamlit's uploader says so itself; the app never sees the file.
        _upload(page, files["big"])
        page.get_by_text("File must be 20.0MB or smaller").wait_for(timeout=TIMEOUT_MS)
        _settle(page)
        _no_exception(page)
        assert page.get_by_text(shown).count() == 1

        # Over 40 megapixels but only a few MB: load_image refuses it from its header, before decoding.
        _upload(page, files["huge"])
        page.get_by_text(f"{files['huge'].name} could not be used").wait_for(timeout=TIMEOUT_MS)
        _settle(page)
        _no_exception(page)
        error = page.locator(ERROR_BOX).first.inner_text()
        assert "megapixels" in error and "Still showing the previous picture" in error
        assert page.get_by_text(shown).count() == 1
        assert page.get_by_text("stage 5 · high").count() >= 1  # the previous picture's analysis

        _upload_and_check(page, SAMPLES / "coffee.jpg")
    finally:
        page.context.close()


# ------------------------------------------------------------------------------ uploads cut off half-way


def test_browser_closed_during_an_upload(server: Server, browser: Browser, files: dict[str, Path]) -> None:
    other = _open(browser, server)
    page = _open(browser, server)
    try:
        # 15 MB at 2 MB/s: the upload is still going when the student closes the laptop.
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2 * MB},
        )
        finished: list[str] = []
        page.on("requestfinished", lambda r: finished.append(r.url) if r.method == "PUT" else None)
        with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT"):
            _upload(page, files["noise"])
        _upload(other, SAMPLES / "china.jpg")  # meanwhile, another session goes on
        page.wait_for_timeout(1500)
        assert finished == []  # still uploading
        page.context.close()
        other.get_by_text("Now showing: your picture china.jpg").wait_for(timeout=TIMEOUT_MS)
        _settle(other)
        _no_exception(other)
        _upload_and_check(other, SAMPLES / "rocket.jpg")
        assert _health(server)
    finally:
        other.context.close()


def _upload_target(page: Page, server: Server) -> tuple[str, dict[str, str]]:
    """The upload path of the page's session and the headers a request needs (XSRF cookie and token)."""
    with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT") as info:
        _upload(page, SAMPLES / "cat.jpg")
    _settle(page, "Now showing: your picture cat.jpg")
    request = info.value
    path = urllib.parse.urlsplit(request.url).path.rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    headers = {k: v for k, v in request.all_headers().items() if k.lower() in ("cookie", "x-xsrftoken")}
    if "cookie" not in headers:
        cookies = page.context.cookies(server.url)
        headers["cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    return path, headers


def _raw_put(
    server: Server,
    path: str,
    headers: dict[str, str],
    *,
    length: int,
    body: bytes,
    boundary: str,
    hang_up: bool,
) -> str:
    """Sends a PUT whose header promises ``length`` bytes, then ``body``; then hangs up at once, or waits for
    the answer. Returns the status line, ``""`` if none came."""
    host = urllib.parse.urlsplit(server.url)
    lines = [
        f"PUT {path} HTTP/1.1",
        f"Host: {host.netloc}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        f"Content-Length: {length}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    with socket.create_connection((host.hostname, host.port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        if hang_up:
            return ""
        try:
            return sock.recv(200).split(b"\r\n", 1)[0].decode()
        except OSError:
            return ""


def test_upload_requests_cut_off_or_too_big(server: Server, browser: Browser, files: dict[str, Path]) -> None:
    page = _open(browser, server)
    other = _open(browser, server)
    try:
        path, headers = _upload_target(page, server)
        boundary = "----backbone-viz-test"
        data = files["noise"].read_bytes()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="noise.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        whole = head + data + f"\r\n--{boundary}--\r\n".encode()

        _upload(other, SAMPLES / "grace_hopper.jpg")  # another session goes on meanwhile
        # The connection dropped half-way through the body.
        cut = whole[: len(whole) // 2]
        _raw_put(server, path, headers, length=len(whole), body=cut, boundary=boundary, hang_up=True)
        # A complete request whose multipart body was cut (no closing boundary): refused, not a crash.
        status = _raw_put(server, path, headers, length=len(cut), body=cut, boundary=boundary, hang_up=False)
        assert status.startswith("HTTP/1.1 4"), status
        # Over the cap by its Content-Length: refused before a byte of the body is read.
        status = _raw_put(server, path, headers, length=25 * MB, body=b"", boundary=boundary, hang_up=False)
        assert status.startswith("HTTP/1.1 413"), status

        other.get_by_text("Now showing: your picture grace_hopper.jpg").wait_for(timeout=TIMEOUT_MS)
        _settle(other)
        _no_exception(other)
        # The session whose upload address was abused still works, and so does a new one.
        _upload_and_check(page, SAMPLES / "astronaut.jpg")
        fresh = _open(browser, server)
        _no_exception(fresh)
        fresh.context.close()
        assert _health(server)
    finally:
        page.context.close()
        other.context.close()


def _health(server: Server) -> bool:
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=5) as response:
        return response.read().strip() == b"ok"
