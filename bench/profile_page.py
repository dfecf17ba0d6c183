"""Where the server's CPU goes for one student: open Home, upload a photo, see Home again.

Starts ``streamlit run app.py`` (loopback, offline) through a launcher that runs every script run (one page
drawn for one session) under cProfile, drives one Chromium session (home page, then an upload through the
sidebar), and prints the server's CPU seconds for the session, read from ``/proc/<pid>/stat``, and the
profile's top entries by own time and by cumulative time. Run it before and after a change to see what
the change bought.

    python bench/profile_page.py [--top 25] [--photo 4032x3024]
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import cpu_seconds  # noqa: E402
from tests.e2e.helpers import IDLE_JS, IMAGES_LOADED_JS, LAUNCH, streamlit_server  # noqa: E402

# Streamlit's script runner, wrapped so that each script run is profiled into a file of its own.
# ScriptRunner._run_script is private API: if it is gone, the launcher fails loudly (nothing to profile).
LAUNCHER = """\
import cProfile, itertools, sys, threading
from streamlit.web import cli
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
_run = ScriptRunner._run_script
_count = itertools.count()
_lock = threading.Lock()
def _profiled(self, rerun_data):
    with _lock:
        profile = cProfile.Profile()
        profile.enable()
        try:
            return _run(self, rerun_data)
        finally:
            profile.disable()
            profile.dump_stats(f"{runs}/{{next(_count):04d}}.prof")
ScriptRunner._run_script = _profiled
sys.argv[0] = "streamlit"
sys.exit(cli.main())
"""


def settle(page, marker: str, timeout_ms: float = 120_000) -> None:
    page.get_by_text(marker, exact=False).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    page.wait_for_function(IMAGES_LOADED_JS, timeout=timeout_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--photo", default="4032x3024", help="size of the uploaded phone photo")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = folder / "runs"
        runs.mkdir()
        launcher = folder / "launch.py"
        launcher.write_text(LAUNCHER.format(runs=str(runs)))
        photo = folder / "phone-photo.jpg"
        Image.open(ROOT / "assets" / "samples" / "coffee.jpg").convert("RGB").resize((width, height)).save(
            photo, quality=92
        )
        with streamlit_server(folder, launcher=launcher) as server, sync_playwright() as p:
            browser = p.chromium.launch(**LAUNCH)
            # A teacher's visit first: the server loads the backbone and analyses the cat.
            teacher = browser.new_page(viewport={"width": 1400, "height": 900})
            teacher.goto(server.url)
            settle(teacher, "What does a CNN backbone see?")
            teacher.close()
            # The app's warm start (gallery analyses, then gc.freeze) runs once per process in the
            # background from the first visit on: let it finish so that it is not counted as the student's.
            time.sleep(8.0)
            teachers = set(runs.iterdir())
            before = cpu_seconds([server.pid])
            start = time.perf_counter()
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server.url)
            settle(page, "What does a CNN backbone see?")
            page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(photo))
            settle(page, f"your picture {photo.name}")
            wall = time.perf_counter() - start
            time.sleep(1.0)  # let the last run's profile be written
            used = cpu_seconds([server.pid]) - before
            browser.close()
        print(f"one session (Home, then an upload of a {args.photo} photo): server CPU {used:.3f} s, wall {wall:.2f} s")
        student = sorted(set(runs.iterdir()) - teachers)
        print(f"{len(student)} script runs for the student")
        report = pstats.Stats(*(str(f) for f in student))
        report.strip_dirs()
        print(f"\n--- top {args.top} by own time ---")
        report.sort_stats("tottime").print_stats(args.top)
        print(f"\n--- top {args.top} by cumulative time ---")
        report.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
