"""What the browser tests and ``bench/load.py`` share: start ``streamlit run app.py``, launch Chromium, read
the server's memory, and the page checks that tell a settled page and shown errors.

No Playwright objects are created here, so both the sync API (tests) and the async API (the load
benchmark) use these helpers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from backbone_viz.server.serve import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Keyword arguments for ``playwright.chromium.launch`` (Debian's Chromium; never ``playwright install``).
LAUNCH = {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}
#: Downloads fail at once: nothing listens on port 9 (discard) of the loopback interface.
OFFLINE_MIRROR = "http://127.0.0.1:9/"

# --- page checks, as JavaScript for page.evaluate / page.wait_for_function -------------------------

#: Every picture on the page has arrived and decoded.
IMAGES_LOADED_JS = """() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                             .every(img => img.complete && img.naturalWidth > 0)"""
#: The script run is over and the "Running..." indicator is gone.
IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
                   && document.querySelector('[data-testid="stApp"]')
                        ?.getAttribute('data-test-script-state') !== 'running'"""
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'
#: Texts of the main area that are cut off: a label (an element holding text, or wrapping one element
#: that does) whose content is wider than its box (scrollWidth > clientWidth), "…" included. Slider values float over the track on purpose and code
#: blocks, tables and charts scroll on purpose: they are left out.
CUT_OFF_JS = """() => {
  const cut = [];
  for (const e of document.querySelectorAll('[data-testid="stMain"] *')) {
    if (!e.offsetParent || !(e.innerText || '').trim()) continue;
    const ownText = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!ownText && e.children.length > 1) continue;  // a container: its labels are checked themselves
    if (e.closest('[data-testid="stSlider"], [data-testid="stCode"], [data-testid="stDataFrame"], '
                  + '[data-testid="stTable"], [data-testid="stVegaLiteChart"], [data-testid="stTabs"] [role="tablist"]')) continue;
    if (e.scrollWidth > e.clientWidth + 1) cut.push(e.innerText.trim().slice(0, 60));
  }
  return [...new Set(cut)];
}"""
#: Texts of the main area drawn smaller than 12 px (unreadable on a projector): [text, size in px].
SMALL_TEXT_JS = """() => {
  const small = [];
  for (const e of document.querySelectorAll('[data-testid="stMain"] *')) {
    if (!e.offsetParent) continue;
    const ownText = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!ownText) continue;
    const size = parseFloat(getComputedStyle(e).fontSize);
    if (size < 12) small.push([e.innerText.trim().slice(0, 60), size]);
  }
  return small;
}"""
#: Pictures of the main area at least ``minWidth`` px wide that lie wholly within the first screen
#: (from the top of the page, not scrolled): [[width, bottom], ...].
FIRST_SCREEN_PICTURES_JS = """(minWidth) => {
  const pictures = [];
  for (const img of document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')) {
    const box = img.getBoundingClientRect();
    if (box.width >= minWidth && box.top >= 0 && box.bottom <= window.innerHeight)
      pictures.push([Math.round(box.width), Math.round(box.bottom)]);
  }
  return pictures;
}"""
#: The first picture of the main area at least 60 px wide (a page's main figure): [top, bottom] in px.
MAIN_FIGURE_JS = """() => {
  const img = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')]
      .find(i => i.getBoundingClientRect().width >= 60);
  if (!img) return null;
  const box = img.getBoundingClientRect();
  return [box.top, box.bottom];
}"""


def offline_env(workdir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a server under test: no download can happen, and its own empty
    torch cache in ``workdir``; ``env`` is set on top."""
    return {
        **os.environ,
        "BACKBONE_VIZ_WEIGHTS_MIRROR": OFFLINE_MIRROR,
        "TORCH_HOME": str(workdir / "torch-home"),
        **(env or {}),
    }


@dataclass(frozen=True)
class Server:
    """A running ``streamlit run app.py``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def streamlit_server(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    launcher: Path | None = None,
    startup_timeout: float = 60,
    root: Path = ROOT,
) -> Iterator[Server]:
    """``streamlit run app.py`` on a free port of 127.0.0.1, offline, with its own empty torch cache.

    Args:
        workdir: a folder for the server's log and, unless ``env`` names another, its ``TORCH_HOME``.
        env: variables to set on top of this process's environment (``TORCH_HOME``, thread counts...).
        launcher: a Python script to run instead of ``-m streamlit`` (it gets the same arguments, from
            ``run`` on), e.g. one that instruments Streamlit before starting it.
        startup_timeout: seconds to wait for ``/_stcore/health`` to answer.
        root: the checkout whose ``app.py`` runs (another one for a before/after benchmark).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "server.log"
    full_env = offline_env(workdir, env)
    start = ["-m", "streamlit"] if launcher is None else [str(launcher)]
    command = [
        sys.executable, *start, "run", "app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{server.log_text()}")
            time.sleep(0.3)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def memory_mb(pid: int) -> tuple[float, float]:
    """``(current RSS, lifetime peak RSS)`` of a process in MB, from ``VmRSS`` and ``VmHWM``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MB (MiB)
    return fields["VmRSS"], fields["VmHWM"]


@dataclass(frozen=True)
class ClassServer:
    """A running ``python -m backbone_viz serve``: its address, its replicas' pids and ports, its log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    replica_pids: dict[int, int]
    replica_ports: dict[int, int]


@contextlib.contextmanager
def class_server(
    workdir: Path,
    *,
    replicas: int,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 300,
    program: tuple[str, ...] = (sys.executable, "-m", "backbone_viz"),
    cwd: Path = ROOT,
) -> Iterator[ClassServer]:
    """``python -m backbone_viz serve --replicas N`` on a free loopback port, offline; stopped with Ctrl-C
    (SIGINT) on exit, as a teacher would.

    Args:
        program: the command line before ``serve`` (an installed ``backbone-viz`` script, say).
        cwd: the folder it is started from.
    """
    import re
    import signal

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "serve.log"
    full_env = offline_env(workdir, env)
    command = [*program, "serve", "--replicas", str(replicas), "--port", str(port), "--address", "127.0.0.1"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while "is ready" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {log.read_text()[-800:]}")
            time.sleep(0.5)
        text = log.read_text()
        pids = {int(i): int(p) for i, p in re.findall(r"replica (\d+) on \S+ \(pid (\d+)\)", text)}
        ports = {int(i): int(p) for i, p in re.findall(r"replica (\d+) on http://[\d.]+:(\d+)", text)}
        yield ClassServer(f"http://127.0.0.1:{port}", process, log, pids, ports)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
