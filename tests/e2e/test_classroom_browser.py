"""Class mode in a real browser: a teacher's projector (1280 × 720, projector mode) and two students' phones
(390 × 844), three pages of one Chromium against one ``streamlit run app.py`` with its own SQLite class file.

The teacher opens a class; the students follow the QR code's link (the same address, read off the page),
join and answer; the projector's counts, which only it polls, must equal what the students sent; the teacher
reveals; a student sees the right answer beside their own. Screenshots for people to read:
``class-projector-before.png``, ``class-projector-after.png`` and ``class-student-phone.png`` in
``test-artifacts/screenshots`` (or ``BACKBONE_VIZ_SCREENSHOTS``). Skipped only when ``/usr/bin/chromium`` is
missing and ``CI`` is unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

import backbone_viz as bv
from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, Server, streamlit_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _screenshot_dir, _settle
from webui.classroom.store import ALPHABET, CODE_LENGTH, DATABASE_FILE_ENV
from webui.lessons import LESSONS
from webui.lessons.progress import LETTERS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)
PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
#: The projector polls every 1.5 s: a count must show within a few polls, on a loaded machine.
LIVE_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("classroom-server")
    with streamlit_server(workdir, env={DATABASE_FILE_ENV: str(workdir / "classes.sqlite3")}) as running:
        yield running


def _no_exception(page: Page) -> None:
    boxes = page.locator(EXCEPTION)
    assert boxes.count() == 0, boxes.first.inner_text()


def _main_text(page: Page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _answer(page: Page, choice: int) -> None:
    page.locator('[data-testid="stMain"] [data-testid="stRadioOption"]').nth(choice).click()
    page.get_by_text("Your answer is in", exact=False).wait_for(timeout=SETTLE_TIMEOUT_MS)
    _settle(page)


def test_a_teacher_and_two_students_in_chromium(server: Server) -> None:
    shots: Path = _screenshot_dir()
    question = LESSONS[0].question(bv.get_spec("efficientnet_lite0"))
    picks = (question.answer, (question.answer + 1) % len(question.choices))  # one right, one not
    with sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            teacher = browser.new_page(viewport=PROJECTOR)
            teacher.goto(f"{server.url}/classroom?picture=cat&present=1")
            teacher.get_by_role("button", name="Open a class").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(teacher)
            teacher.get_by_role("button", name="Open a class").click()
            teacher.get_by_text(question.text).wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(teacher)
            _no_exception(teacher)
            code_pattern = re.compile(f"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
            code = teacher.get_by_text(code_pattern).first.inner_text().strip()
            # The projected address names the join page; the QR code is its picture.
            address = re.search(r"open (\S+/join)", _main_text(teacher))
            assert address is not None, _main_text(teacher)
            assert teacher.locator('[data-testid="stMain"] [data-testid="stImage"] img').count() == 1
            assert "teacher=" not in teacher.url

            students = []
            for pick in picks:
                student = browser.new_page(viewport=PHONE)
                student.goto(f"http://{address.group(1)}?code={code}")
                student.get_by_role("button", name="Join").wait_for(timeout=SETTLE_TIMEOUT_MS)
                _settle(student)
                student.get_by_role("button", name="Join").click()
                student.get_by_text(question.text).wait_for(timeout=SETTLE_TIMEOUT_MS)
                _settle(student)
                _no_exception(student)
                assert "seat=" in student.url  # a phone that sleeps comes back to its seat
                _answer(student, pick)
                students.append(student)
            students[1].screenshot(path=str(shots / "class-student-phone.png"))

            # Only the projector polls: its counts reach what the students sent.
            teacher.get_by_text("2 joined · 2 answered").wait_for(timeout=LIVE_TIMEOUT_MS)
            bars = _main_text(teacher)
            for choice in range(len(question.choices)):
                sent = picks.count(choice)
                share = f"{sent} ({sent / 2:.0%})" if sent else "0 (0%)"
                assert f"{LETTERS[choice]}) {question.choices[choice]} · {share}" in bars, bars
            teacher.screenshot(path=str(shots / "class-projector-before.png"))

            teacher.get_by_role("button", name="Reveal").click()
            teacher.get_by_text("The answer:", exact=False).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(teacher)
            _no_exception(teacher)
            after = _main_text(teacher)
            assert f"✓ {LETTERS[question.answer]}) · 1 (50%) · right" in after, after
            assert "2 joined · 2 answered" in after
            assert teacher.locator('[data-testid="stMain"] [data-testid="stImage"] img').count() > 1
            teacher.screenshot(path=str(shots / "class-projector-after.png"))

            wrong = students[1]
            wrong.get_by_role("button", name="Check for the next question").click()
            wrong.get_by_text("The answer:", exact=False).first.wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(wrong)
            seen = _main_text(wrong)
            assert f"You answered {LETTERS[picks[1]]})" in seen, seen
            wrong.screenshot(path=str(shots / "class-student-phone-revealed.png"))
        finally:
            browser.close()
