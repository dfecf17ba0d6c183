"""The server's CPU for each step of one student: Home in a new browser, then an upload.

Starts one server (loopback, offline): ``streamlit run app.py``, or with ``--serve`` the class server
(``python -m backbone_viz serve``: warm start, nginx in front when installed). A teacher's visit first
(the model and the cat are ready), then ``--students`` students one after another, each in a new browser
context (nothing cached in the browser): open Home, then upload a phone photo. Prints, per student, the
CPU seconds the server's processes (replicas and nginx, read from ``/proc``) used for each step, so that a
change to one step shows there. ``bench/load.py`` gives the same total for many students at once.

    python bench/student_cpu.py [--serve] [--students 4] [--photo 4032x3024]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import cpu_seconds  # noqa: E402
from bench.profile_page import settle  # noqa: E402
from tests.e2e.helpers import LAUNCH, class_server, streamlit_server  # noqa: E402

HOME = "What does a CNN backbone see?"
SAMPLES = ("coffee", "rocket", "flower", "cat")


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--serve", action="store_true", help="run `python -m backbone_viz serve` (nginx in front)"
    )
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--photo", default="4032x3024", help="size of each uploaded phone photo")
    args = parser.parse_args()
    width, height = (int(v) for v in args.photo.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photos = []
        for k in range(args.students):
            photo = folder / f"phone-{k}.jpg"
            sample = ROOT / "assets" / "samples" / f"{SAMPLES[k % len(SAMPLES)]}.jpg"
            picture = Image.open(sample).convert("RGB").resize((width, height))
            picture.rotate(90 * (k // len(SAMPLES))).save(photo, quality=92)  # another file each time
            photos.append(photo)
        server_cm = class_server(folder, replicas=1) if args.serve else streamlit_server(folder)
        with server_cm as server, sync_playwright() as p:
            browser = p.chromium.launch(**LAUNCH)
            teacher = browser.new_page()
            teacher.goto(server.url)
            settle(teacher, HOME)
            teacher.close()
            time.sleep(10)  # the warm start of `streamlit run` ends in the background
            pids = process_tree(server.process.pid)
            print(f"{'served by':<14} {'student':>7} {'Home CPU-s':>10} {'upload CPU-s':>12}")
            for k, photo in enumerate(photos, start=1):
                start = cpu_seconds(pids)
                page = browser.new_context().new_page()
                page.goto(server.url)
                settle(page, HOME)
                time.sleep(0.5)  # the page's last picture requests
                home = cpu_seconds(pids)
                page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(photo))
                settle(page, f"your picture {photo.name}")
                time.sleep(0.5)
                upload = cpu_seconds(pids)
                page.context.close()
                served = "serve" if args.serve else "streamlit run"
                print(f"{served:<14} {k:>7} {home - start:>10.2f} {upload - home:>12.2f}")
            browser.close()


if __name__ == "__main__":
    main()
