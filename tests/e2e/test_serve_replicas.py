"""A school's setup on one machine: ``python -m backbone_viz serve --replicas 2`` behind nginx, in Chromium.

Eight browser sessions go through nginx; each uploads a picture and moves the layer slider. Then one
replica is killed: the other replica's sessions keep working, the killed one's sessions are not left
hanging, serve reports the dead replica, and Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import (
    EXCEPTION,
    IDLE_JS,
    IMAGES_LOADED_JS,
    LAUNCH,
    ROOT,
    class_server,
    streamlit_server,
)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed"
)
SESSIONS = 8
HOME = "What does a CNN backbone see?"
TIMEOUT_MS = 90_000


def _replica_of(url: str, cookie: str) -> str:
    request = urllib.request.Request(url, headers={"Cookie": f"bv_replica={cookie}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["X-Backbone-Viz-Replica"]


def _settle(page, marker: str) -> None:
    page.get_by_text(marker, exact=False).first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)
    page.wait_for_function(IMAGES_LOADED_JS, timeout=TIMEOUT_MS)


def _photos(folder: Path) -> list[Path]:
    """A different picture per session (sample photos, mirrored and rotated)."""
    photos = []
    sources = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
    for i in range(SESSIONS):
        image = Image.open(sources[i % len(sources)]).convert("RGB")
        if i >= len(sources):
            image = ImageOps.mirror(image).rotate(90, expand=True)
        path = folder / f"student-{i}.jpg"
        image.save(path, quality=90)
        photos.append(path)
    return photos


def _move_layer_slider(page) -> None:
    metric = page.locator('[data-testid="stMetricValue"]').first
    before = metric.inner_text().strip()
    page.locator('[data-testid="stSlider"]').filter(has_text="Layer").first.get_by_role("slider").press(
        "ArrowRight"
    )
    page.wait_for_function(
        """b => document.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() !== b""",
        arg=before,
        timeout=TIMEOUT_MS,
    )
    page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)


def _static_files_come_from_nginx(url: str) -> None:
    """Streamlit's JavaScript, named in the page, comes from nginx compressed, equal to Streamlit's own."""
    import gzip
    import re

    from backbone_viz.server.nginx import streamlit_static

    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    script = re.search(r'src="\.?(/static/js/[^"]+\.js)"', page)
    assert script is not None, page[:500]
    request = urllib.request.Request(url + script.group(1), headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Backbone-Viz-Replica"] == "nginx"
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
        body = gzip.decompress(response.read())
    assert body == (streamlit_static() / script.group(1).lstrip("/")).read_bytes()


def _shared_pictures_come_from_nginx(url: str, sessions: list) -> None:
    """A picture every session shows (a sample's thumbnail in the sidebar) is the same media file for all,
    and nginx sends it from its cache, whichever replica made it."""
    sources = [
        set(page.eval_on_selector_all('[data-testid="stSidebar"] img', "imgs => imgs.map(i => i.src)"))
        for _, page in sessions
    ]
    shared = sorted(set.intersection(*sources))
    assert shared, "the sample thumbnails should be the same files in every session"
    media = next(src for src in shared if "/media/" in src)
    bodies = []
    for _ in range(2):
        with urllib.request.urlopen(media, timeout=10) as response:
            bodies.append(response.read())
            cache = response.headers["X-Backbone-Viz-Cache"]
    assert cache == "HIT" and bodies[0] == bodies[1] and bodies[0][:2] in (b"\xff\xd8", b"\x89P")


def test_two_replicas_behind_nginx_with_affinity_and_a_replica_dying(tmp_path: Path) -> None:
    with class_server(tmp_path, replicas=2) as server:
        url, log, pids, ports = server.url, server.log, server.replica_pids, server.replica_ports
        assert len(pids) == 2
        # Cookies that nginx hashes onto each replica: four sessions on each.
        cookies: dict[str, list[str]] = {}
        for n in range(200):
            replica = _replica_of(url, f"student{n}")
            assert replica == _replica_of(url, f"student{n}")  # the same cookie, the same replica
            if len(cookies.setdefault(replica, [])) < SESSIONS // 2:
                cookies[replica].append(f"student{n}")
            if len(cookies) == 2 and all(len(v) == SESSIONS // 2 for v in cookies.values()):
                break
        assert sorted(cookies) == sorted(f"127.0.0.1:{p}" for p in ports.values())
        _static_files_come_from_nginx(url)
        photos = _photos(tmp_path)
        with sync_playwright() as p:
            browser = p.chromium.launch(**LAUNCH)
            sessions = []  # (replica address, page)
            for i, (replica, cookie) in enumerate((r, c) for r, cs in cookies.items() for c in cs):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "bv_replica", "value": cookie, "url": url}])
                page = context.new_page()
                response = page.goto(url)
                assert response is not None and response.headers["x-backbone-viz-replica"] == replica
                _settle(page, HOME)
                page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(photos[i]))
                _settle(page, f"your picture {photos[i].name}")  # the upload reached the session's replica
                page.locator('[data-testid="stSidebarNav"]').get_by_text(
                    "Feature build-up", exact=True
                ).click()
                _settle(page, "Feature build-up")
                _move_layer_slider(page)
                assert page.locator(EXCEPTION).count() == 0
                assert page.get_by_text(f"your picture {photos[i].name}").first.is_visible()
                sessions.append((replica, page))

            _shared_pictures_come_from_nginx(url, sessions)

            # One replica dies in the middle of the lesson.
            killed = f"127.0.0.1:{ports[1]}"
            os.kill(pids[1], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while "replica 1 stopped" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            for replica, page in sessions:
                if replica == killed:
                    # Not left hanging: Streamlit says the connection is lost, or the session has started
                    # again on the other replica.
                    page.wait_for_function(
                        """() => /Connect|connection/i.test(document.body.innerText)
                                 || document.body.innerText.includes('What does a CNN backbone see?')
                                 || document.body.innerText.includes('Feature build-up')""",
                        timeout=30_000,
                    )
                else:
                    _move_layer_slider(page)  # the other replica's sessions keep working
                    assert page.locator(EXCEPTION).count() == 0
            browser.close()
        server.process.send_signal(signal.SIGINT)  # Ctrl-C, as a teacher would
        server.process.wait(60)
        assert server.process.returncode == 0, log.read_text()
    time.sleep(1)
    for pid in pids.values():  # Ctrl-C stopped every replica it started
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize("started_by", ["serve", "streamlit run"])
def test_a_link_to_a_page_as_the_first_visit_keeps_the_pages_navigation(tmp_path: Path, started_by: str) -> None:
    """A class often starts from a shared link to a lesson, right after the teacher started the server."""
    server_cm = class_server(tmp_path, replicas=1) if started_by == "serve" else streamlit_server(tmp_path)
    with server_cm as server, sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        for visit in range(2):
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{server.url}/lessons?picture=cat&present=1")
            _settle(page, "Lessons: how a backbone sees")
            nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
            assert "Feature build-up" in nav and "feature buildup" not in nav, (visit, nav)
            # Projector mode's page config reached the browser: the sidebar is folded away.
            assert (
                page.locator('[data-testid="stSidebar"]').evaluate("e => e.getBoundingClientRect().right")
                <= 1
            )
            page.close()
        browser.close()
