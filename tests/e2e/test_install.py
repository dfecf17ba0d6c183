"""backbone-viz installed as a package: ``pip install .``, then ``backbone-viz serve`` from another folder
serves the app with its sample pictures and the shipped atlas, in Debian's Chromium.

The wheel is built here without network (``--no-build-isolation``) and installed with ``--no-deps`` into
a virtual environment that sees this Python's packages (torch and the rest are not copied); everything
then runs from a folder that holds no checkout, so only the installed files can be found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import CHROMIUM, EXCEPTION, LAUNCH, ROOT, class_server
from tests.e2e.test_browser import SETTLE_TIMEOUT_MS, _open_page, _settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (install Debian's chromium package); this test must run in CI",
)


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(virtual environment, an empty folder outside the checkout)``, with backbone-viz's wheel installed."""
    base = tmp_path_factory.mktemp("install")
    wheels, env, elsewhere = base / "wheels", base / "venv", base / "elsewhere"
    elsewhere.mkdir()
    # From a copy of the checkout's files (tracked, or new and not ignored): building in the checkout
    # would leave build/ and egg-info there.
    source = base / "source"
    files = _run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT).split("\0")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            target.write_bytes((ROOT / name).read_bytes())
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ".",
         cwd=source)  # fmt: skip
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env)
    (wheel,) = wheels.glob("backbone_viz-*.whl")
    _run(env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel, cwd=elsewhere)
    return env, elsewhere


def test_the_installed_package_finds_its_own_files(installed: tuple[Path, Path]) -> None:
    env, elsewhere = installed
    out = _run(
        env / "bin" / "python",
        "-c",
        "import backbone_viz as bv\n"
        "from backbone_viz.files.shipped import app_root\n"
        "from backbone_viz.files.samples import list_samples\n"
        "bb = bv.load_backbone('efficientnet_lite0', device='cpu')\n"
        "print(app_root(), len(list_samples()), sum(len(r) for r in bv.load_atlas(bb).rows.values()))",
        cwd=elsewhere,
    )
    root, samples, atlas = out.split()
    assert Path(root).is_relative_to(env) and Path(root).name == "app"
    assert int(samples) == 7 and int(atlas) == 40
    assert "serve" in _run(env / "bin" / "backbone-viz", "--help", cwd=elsewhere)


def test_backbone_viz_serve_from_another_folder_serves_the_samples_and_the_atlas(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    env, elsewhere = installed
    program = (str(env / "bin" / "backbone-viz"),)
    with class_server(tmp_path, replicas=1, program=program, cwd=elsewhere) as server, sync_playwright() as p:
        browser = p.chromium.launch(**LAUNCH)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(server.url)
            page.get_by_text("What does a CNN backbone see?").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            page.get_by_text("Now showing: A tabby cat", exact=False).first.wait_for(
                timeout=SETTLE_TIMEOUT_MS
            )
            _open_page(page, "Feature atlas")
            page.get_by_text("Feature atlas: what each stage looks for").wait_for(timeout=SETTLE_TIMEOUT_MS)
            _settle(page)
            assert page.locator(EXCEPTION).count() == 0
            assert page.locator('[data-testid="stMain"] [data-testid="stImage"] img').count() == 40
        finally:
            browser.close()
    assert "backbone-viz is ready" in server.log.read_text()
