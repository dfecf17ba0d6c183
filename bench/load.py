"""The web app under classroom load: one ``streamlit run app.py``, N students' browsers at once.

A classroom is 20 to 30 browsers on one server, opened within the same minute. For each N (default 1, 4,
8, 16) this starts a fresh server (loopback, offline: ``BACKBONE_VIZ_WEIGHTS_MIRROR`` points at a closed
port; ``TORCH_HOME`` an empty temporary folder), lets one "teacher" browser open the home page first (the
server loads the bundled backbone), then drives N browser sessions at once. One Chromium, one browser
context per session, all driven concurrently from one asyncio loop with Playwright's async API (the sync
API must not be shared between threads). Each session, with its own photo:

1. opens the home page (the cat, analysed by the teacher's visit: a cache hit);
2. uploads its photo through the sidebar (a phone-sized JPEG, different for every session: a model run);
3. opens Feature build-up; 4. moves the layer slider one step (arrow key); 5. opens Grad-CAM.

For N = 1 three sessions run one after another (``--serial-repeats``), so the baseline p50(1) rests on
15 settles rather than 5. Each step is timed from the action to a *settled* page: the expected heading or
text is there, no ``stStatusWidget`` ("Running...") indicator, the script state is not running, and every
``[data-testid="stImage"] img`` has decoded (``naturalWidth > 0``). Printed per N: p50 and p95 over all
settles of the round, p95(N)/p50(1), errors (``stException`` boxes, unexpected ``st.error`` boxes,
timeouts), the server's peak RSS (``VmHWM``: a process-lifetime peak, and the server is restarted per N,
so it is the peak of that round, teacher's visit included) and its RSS after the round, and the CPU
seconds the server used and the rest of the machine (Chromium, mostly).

Browser and server share this machine's cores, where in a classroom every browser draws on its own
computer. So Chromium runs at the lowest priority (``--browser-priority idle``) and the server gets the CPU
first; "p95 open" leaves out each session's first page load (the browser parsing Streamlit's JavaScript,
which costs the server nothing); and the server's own view is printed too: how long each script run (one
page drawn for one session) took inside the server, from a launcher that times Streamlit's script runner.

``--soak-uploads 50`` instead uploads 50 different photos, one after the other, in one session, and prints
the server's RSS along the way and its growth: the median of the last 5 readings against the median of the
5 after a warm-up of 5 uploads.

    python bench/load.py [--sessions 1 4 8 16] [--threads 1] [--photo 4032x3024] [--soak-uploads 50]

Not a test: it takes minutes (N = 16 alone about one). Targets on a 2-core machine: N = 16 with no error,
p95(16) <= 6 x p50(1), peak RSS <= 3 GB; soak growth after warm-up <= 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import cpu_seconds  # noqa: E402
from tests.e2e.helpers import (  # noqa: E402
    ERROR_BOX,
    EXCEPTION,
    IDLE_JS,
    IMAGES_LOADED_JS,
    LAUNCH,
    class_server,
    memory_mb,
    streamlit_server,
)

SAMPLES = ROOT / "assets" / "samples"
HOME = "What does a CNN backbone see?"
FEATURES = "Feature build-up: from edges to objects"
GRADCAM = "Grad-CAM: where did the network look?"
STEPS = ("home", "upload", "feature", "layer", "gradcam")
TARGET_RATIO = 6.0
TARGET_PEAK_MB = 3000.0
TARGET_SOAK_GROWTH_MB = 100.0
SOAK_WARMUP = 5


# ------------------------------------------------------------------------------------------ photos


def _variants():
    """Distinct pictures from the samples: 8 transforms of each of the 7 (56 in all), the 7 as they are first."""
    transforms = (
        lambda im: im,
        lambda im: im.transpose(Image.Transpose.ROTATE_90),
        lambda im: im.transpose(Image.Transpose.ROTATE_180),
        lambda im: im.transpose(Image.Transpose.ROTATE_270),
        ImageOps.mirror,
        lambda im: ImageOps.mirror(im).transpose(Image.Transpose.ROTATE_90),
        lambda im: ImageOps.crop(im, border=min(im.size) // 10),
        lambda im: im.crop((0, 0, im.width * 3 // 4, im.height * 3 // 4)),
    )
    samples = sorted(SAMPLES.glob("*.jpg"))
    for transform in transforms:
        for path in samples:
            with Image.open(path) as picture:
                yield path.stem, transform(picture.convert("RGB"))


def make_photos(folder: Path, count: int, size: tuple[int, int] | None) -> list[Path]:
    """``count`` different JPEGs in ``folder``; with ``size``, scaled to cover it like a phone photo."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    variants = list(_variants())
    for k in range(count):
        stem, picture = variants[k % len(variants)]
        if size is not None:
            width, height = size if picture.width >= picture.height else size[::-1]
            picture = ImageOps.fit(picture, (width, height), Image.Resampling.BICUBIC)
        path = folder / f"photo{k:02d}-{stem}.jpg"
        # Past the 56 variants, another JPEG quality makes other bytes: another analysis, not a cache hit.
        picture.save(path, format="JPEG", quality=90 - k // len(variants))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------ the server's own view

# Starts Streamlit like `python -m streamlit`, after wrapping its script runner so that every script run
# (one page drawn for one session) appends "<end time> <seconds>" to a log: the server's side of a settle,
# without the browser. ScriptRunner._run_script is private API: if it is gone, runs are simply not logged.
LAUNCHER = """\
import sys, time
from streamlit.web import cli
try:
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    _run = ScriptRunner._run_script
    def _timed(self, rerun_data):
        start = time.perf_counter()
        try:
            return _run(self, rerun_data)
        finally:
            with open({log!r}, "a") as out:
                out.write(f"{{time.time():.3f}} {{time.perf_counter() - start:.4f}}\\n")
    ScriptRunner._run_script = _timed
except (ImportError, AttributeError):
    pass
sys.argv[0] = "streamlit"
sys.exit(cli.main())
"""


def write_launcher(folder: Path) -> tuple[Path, Path]:
    """The launcher script and the (empty) log of script runs it will write."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "runs.log"
    log.write_text("")
    launcher = folder / "launch_streamlit.py"
    launcher.write_text(LAUNCHER.format(log=str(log)))
    return launcher, log


def script_runs(log: Path, since: float) -> list[float]:
    """Durations of the script runs that ended after ``since`` (a ``time.time()``)."""
    runs = []
    for line in log.read_text().splitlines():
        end, seconds = (float(v) for v in line.split())
        if end >= since:
            runs.append(seconds)
    return runs


# --------------------------------------------------------------------------------------- one session


@dataclass
class Session:
    """What one browser session saw: the settle time of each step, and what went wrong."""

    times: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def settle(page: Page, marker: str | None = None, *, timeout_ms: float) -> None:
    """Waits for ``marker`` text (if given), then for an idle script and every picture decoded."""
    if marker is not None:
        await page.get_by_text(marker, exact=False).first.wait_for(timeout=timeout_ms)
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    await page.wait_for_function(IMAGES_LOADED_JS, timeout=timeout_ms)


async def problems(page: Page, step: str) -> list[str]:
    """Exception boxes and error boxes on the page (none is expected in these steps)."""
    found = []
    for selector, what in ((EXCEPTION, "exception"), (ERROR_BOX, "st.error")):
        boxes = page.locator(selector)
        for i in range(await boxes.count()):
            text = (await boxes.nth(i).inner_text()).strip().splitlines()
            found.append(f"{step}: {what}: {text[0][:120] if text else ''}")
    return found


async def layer_metric(page: Page) -> str:
    return (await page.locator('[data-testid="stMetricValue"]').first.inner_text()).strip()


# What the page looked like when a step timed out.
STATE_JS = """() => ({
    url: location.pathname,
    script: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state'),
    running: !!document.querySelector('[data-testid="stStatusWidget"]'),
    title: document.querySelector('h1')?.innerText,
    pending_images: [...document.querySelectorAll('[data-testid="stImage"] img')]
        .filter(img => !(img.complete && img.naturalWidth > 0)).length,
})"""


async def run_session(
    browser, url: str, photo: Path, *, timeout_ms: float, shots: Path | None = None, steps: int = len(STEPS)
) -> Session:
    """One student: home, upload, Feature build-up, one layer further, Grad-CAM (the first ``steps``)."""
    result = Session()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    # Actions (a click, choosing a file) get the same patience as a settle: Playwright's own 30 s would
    # count a browser starved by 30 others on these 2 cores as the app's error.
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    nav = page.locator('[data-testid="stSidebarNav"]')

    async def step(name: str, action, marker: str | None, until=None) -> None:
        start = time.perf_counter()
        await action()
        if until is not None:
            await page.wait_for_function(until[0], arg=until[1], timeout=timeout_ms)
        await settle(page, marker, timeout_ms=timeout_ms)
        result.times[name] = time.perf_counter() - start
        result.errors += await problems(page, name)

    try:
        await step("home", lambda: page.goto(url), HOME)
        if steps < 2:
            return result
        uploader = page.locator('[data-testid="stSidebar"] input[type="file"]')
        await step(
            "upload", lambda: uploader.set_input_files(str(photo)), f"Now showing: your picture {photo.name}"
        )
        if steps < 3:
            await asyncio.sleep(0.5)  # the upload's media requests, still the server's work for it
            return result
        await step("feature", lambda: nav.get_by_text("Feature build-up", exact=True).click(), FEATURES)
        if steps < 4:
            return result
        before = await layer_metric(page)
        thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Layer (left").get_by_role("slider")
        changed = (
            """before => document.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() !== before""",
            before,
        )
        await step("layer", lambda: thumb.press("ArrowRight"), FEATURES, until=changed)
        if steps < 5:
            return result
        await step("gradcam", lambda: nav.get_by_text("Grad-CAM", exact=True).click(), GRADCAM)
    except PlaywrightTimeout as error:
        done = len(result.times)
        state = await page.evaluate(STATE_JS)
        result.errors.append(f"{STEPS[done]}: timeout: {str(error).splitlines()[0][:100]} | page: {state}")
        if shots is not None:
            await page.screenshot(path=str(shots / f"timeout-{photo.stem}-{STEPS[done]}.png"))
    finally:
        await context.close()
    return result


# ------------------------------------------------------------------------------------------- rounds


def machine_cpu_seconds() -> float:
    """CPU seconds every process of this machine has used so far (the ``cpu`` line of /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def lower_priority(pids: list[int], priority: str) -> None:
    """Gives processes (and the children they start later: Chromium's renderers) a lower CPU priority.

    Args:
        priority: ``"idle"`` for ``SCHED_IDLE`` (they run only when nothing else wants the core), or a
            niceness. Niceness is weighed per thread, so 16 renderers at nice 10 together still outweigh
            the server's one busy thread; ``SCHED_IDLE`` does not.

    Linux schedules threads: every thread of each process is set (a process's pid names only its first
    thread, and Chromium's browser process does much of its work in others). Threads started later
    inherit the setting of the thread that starts them.
    """
    for pid in pids:
        try:
            threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:  # gone already
            continue
        for tid in threads:
            with contextlib.suppress(OSError):  # gone already
                if priority == "idle":
                    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                else:
                    os.setpriority(os.PRIO_PROCESS, tid, int(priority))


def descendants(root: int, *, exclude: int) -> list[int]:
    """Every process below ``root`` (the Playwright driver and Chromium), minus ``exclude``'s tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child != exclude:
                found.append(child)
                todo.append(child)
    return found


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), round(q / 100 * len(ordered))) - 1)]


@dataclass
class Round:
    label: str  # which checkout served it: "this" or "baseline"
    n: int
    sessions: list[Session]
    wall_s: float
    warmup_s: float
    peak_mb: float
    rss_after_mb: float
    server_cpu_s: float
    other_cpu_s: float
    runs: list[float]

    @property
    def times(self) -> list[float]:
        return [t for s in self.sessions for t in s.times.values()]

    @property
    def errors(self) -> list[str]:
        return [e for s in self.sessions for e in s.errors]


@dataclass
class Served:
    """The server a round talks to: one ``streamlit run``, or ``serve --replicas K`` (replicas + nginx)."""

    url: str
    pids: list[int]  # every process whose CPU and memory count as the server's
    runs_log: Path | None


@contextlib.contextmanager
def served(workdir: Path, env: dict[str, str], replicas: int, root: Path = ROOT):
    """A fresh server for one round: ``streamlit run app.py`` (replicas 0) or ``backbone_viz serve``.

    ``root``: the checkout whose app is served (another one for a before/after comparison).
    """
    if replicas == 0:
        launcher, runs_log = write_launcher(workdir)
        with streamlit_server(workdir, env=env, launcher=launcher, root=root) as server:
            yield Served(server.url, [server.pid], runs_log)
        return
    with class_server(workdir, replicas=replicas, env=env) as server:
        children = descendants(server.process.pid, exclude=-1)
        # nginx's master, workers and cache manager; not its cache loader, which reads the (empty) media
        # cache once and exits a minute after the start, in the middle of a round.
        nginx = [c for c in children if "nginx" in (line := _cmdline(c)) and "cache loader" not in line]
        yield Served(server.url, [*server.replica_pids.values(), *nginx], None)


def _cmdline(pid: int) -> str:
    """A process's command line ('' once it has ended)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


async def run_round(
    n: int,
    photos: list[Path],
    env: dict[str, str],
    workdir: Path,
    timeout_ms: float,
    serial_repeats: int,
    browser_priority: str,
    spread_s: float,
    shots: Path | None,
    replicas: int = 0,
    steps: int = len(STEPS),
    root: Path = ROOT,
    label: str = "this",
) -> Round:
    with served(workdir / f"{label}-n{n}", env, replicas, root) as server:
        async with async_playwright() as p:
            browser = await p.chromium.launch(**LAUNCH)
            lower_priority(
                [
                    c
                    for c in descendants(os.getpid(), exclude=-1)
                    if c not in server.pids and not _serves(c, server)
                ],
                browser_priority,
            )
            try:
                teacher = await browser.new_page(viewport={"width": 1280, "height": 900})
                start = time.perf_counter()
                await teacher.goto(server.url)
                await settle(teacher, HOME, timeout_ms=timeout_ms)
                warmup = time.perf_counter() - start
                await teacher.close()
                cpu0 = cpu_seconds(server.pids), machine_cpu_seconds()
                since = time.time()
                start = time.perf_counter()
                if n == 1:
                    # One session's 5 settles make a shaky baseline: students one after another, each with
                    # a new photo (a model run each), give more.
                    sessions = [
                        await run_session(
                            browser, server.url, photos[k], timeout_ms=timeout_ms, shots=shots, steps=steps
                        )
                        for k in range(serial_repeats)
                    ]
                else:

                    async def student(k: int) -> Session:
                        await asyncio.sleep(spread_s * k / n)  # arrivals evenly over the spread
                        return await run_session(
                            browser, server.url, photos[k], timeout_ms=timeout_ms, shots=shots, steps=steps
                        )

                    sessions = await asyncio.gather(*(student(k) for k in range(n)))
                wall = time.perf_counter() - start
                cpu1 = cpu_seconds(server.pids), machine_cpu_seconds()
            finally:
                await browser.close()
        memory = [memory_mb(pid) for pid in server.pids]
        rss, peak = sum(m[0] for m in memory), sum(m[1] for m in memory)
    server_cpu = cpu1[0] - cpu0[0]
    return Round(
        label, n, list(sessions), wall, warmup, peak, rss, server_cpu, cpu1[1] - cpu0[1] - server_cpu,
        script_runs(server.runs_log, since) if server.runs_log is not None else [],
    )  # fmt: skip


def _serves(pid: int, server: Served) -> bool:
    """Whether ``pid`` is part of the server (the serve command itself, or a child of a replica)."""
    command = _cmdline(pid)  # '' once the process has ended: not the server's
    return "backbone_viz" in command or "webui.shell.launch" in command or "nginx" in command


def print_rounds(rounds: list[Round]) -> None:
    """The table of every round, then per checkout the server's view, the steps and the verdict."""
    labels = list(dict.fromkeys(r.label for r in rounds))
    bases = {
        label: next(
            (statistics.median(r.times) for r in rounds if r.label == label and r.n == 1 and r.times), None
        )
        for label in labels
    }
    print(
        f"{'served':>8} {'N':>3} {'settles':>7} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'p95/p50(1)':>10} {'p95 open':>8} "
        f"{'errors':>6} {'peak RSS MB':>11} {'RSS after MB':>12} {'server CPU s':>12} {'CPU s/session':>13} "
        f"{'other CPU s':>11} {'wall s':>6}"
    )
    for r in rounds:
        t = r.times
        base = bases[r.label]
        p50, p95 = (statistics.median(t), percentile(t, 95)) if t else (float("nan"),) * 2
        ratio = f"{p95 / base:.2f}" if base else "n/a"
        opened = [v for s in r.sessions for name, v in s.times.items() if name != "home"]
        p95_open = percentile(opened, 95) if opened else float("nan")
        print(
            f"{r.label:>8} {r.n:>3} {len(t):>7} {p50:>6.2f} {p95:>6.2f} {max(t, default=float('nan')):>6.2f} {ratio:>10} "
            f"{p95_open:>8.2f} "
            f"{len(r.errors):>6} {r.peak_mb:>11.0f} {r.rss_after_mb:>12.0f} {r.server_cpu_s:>12.1f} "
            f"{r.server_cpu_s / max(len(r.sessions), 1):>13.2f} {r.other_cpu_s:>11.1f} {r.wall_s:>6.1f}"
        )
    if len(labels) > 1:
        print("server CPU per session, baseline over this checkout (same N, same photos, this run):")
        for r in rounds:
            other = next((b for b in rounds if b.label == "baseline" and b.n == r.n), None)
            if r.label != "baseline" and other is not None and r.server_cpu_s > 0:
                print(f"  N={r.n:<3} {other.server_cpu_s / r.server_cpu_s:.2f}x")
    if any(r.runs for r in rounds):  # logged for `streamlit run` only (serve's replicas are not wrapped)
        print("server side: script runs (one page drawn for one session), wall seconds in the server:")
    for r in rounds:
        if r.runs:
            print(
                f"  {r.label} N={r.n:<3} {len(r.runs)} runs, p50 {statistics.median(r.runs):.2f}, "
                f"p95 {percentile(r.runs, 95):.2f}, max {max(r.runs):.2f}"
            )
    print("p50 s per step in the browser (home, upload, feature, layer, gradcam) and the teacher's first visit:")
    for r in rounds:
        steps = "  ".join(
            f"{name} {statistics.median(v):.2f}"
            for name in STEPS
            if (v := [s.times[name] for s in r.sessions if name in s.times])
        )
        print(f"  {r.label} N={r.n:<3} {steps}  | first visit {r.warmup_s:.2f}")
    for r in rounds:
        for error in r.errors[:5]:
            print(f"  {r.label} N={r.n} error: {error}")
    for label in labels:
        last = [r for r in rounds if r.label == label][-1]
        base = bases[label]
        if base and last.times:
            ratio = percentile(last.times, 95) / base
            verdict = [
                f"errors {len(last.errors)} (target 0)",
                f"p95/p50(1) {ratio:.2f} (target <= {TARGET_RATIO:g})",
                f"peak RSS {last.peak_mb:.0f} MB (target <= {TARGET_PEAK_MB:.0f})",
            ]
            ok = not last.errors and ratio <= TARGET_RATIO and last.peak_mb <= TARGET_PEAK_MB
            print(f"{label} N={last.n}: {'; '.join(verdict)} -> {'OK' if ok else 'MISSED'}")


# --------------------------------------------------------------------------------------------- soak


async def soak(count: int, photos: list[Path], env: dict[str, str], workdir: Path, timeout_ms: float) -> None:
    """Uploads ``count`` different photos one after another in one session; prints the server's RSS.

    RSS swings by a few hundred MB from one upload to the next (a 12-megapixel photo is decoded into 36 MB
    buffers that the allocator keeps or returns), so one reading proves little: the growth is the median
    RSS of the last 5 uploads against that of the 5 after the warm-up.
    """
    if count < SOAK_WARMUP + 10:
        raise ValueError(f"the soak needs at least {SOAK_WARMUP + 10} uploads")
    with streamlit_server(workdir / "soak", env=env) as server:
        async with async_playwright() as p:
            browser = await p.chromium.launch(**LAUNCH)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(server.url)
                await settle(page, HOME, timeout_ms=timeout_ms)
                uploader = page.locator('[data-testid="stSidebar"] input[type="file"]')
                rss: list[float] = []
                errors: list[str] = []
                times = []
                for k, photo in enumerate(photos[:count], start=1):
                    began = time.perf_counter()
                    await uploader.set_input_files(str(photo))
                    await settle(page, f"Now showing: your picture {photo.name}", timeout_ms=timeout_ms)
                    times.append(time.perf_counter() - began)
                    errors += await problems(page, f"upload {k}")
                    await asyncio.sleep(0.5)  # let the run's last buffers go
                    rss.append(memory_mb(server.pid)[0])
            finally:
                await browser.close()
        peak_mb = memory_mb(server.pid)[1]
    print(
        f"soak: {count} uploads in one session, p50 {statistics.median(times):.2f} s per upload, "
        f"errors {len(errors)}"
    )
    print(
        "  server RSS MB, median of each 10 uploads: "
        + ", ".join(
            f"{k + 1}-{min(k + 10, count)}: {statistics.median(rss[k : k + 10]):.0f}"
            for k in range(0, count, 10)
        )
    )
    start = rss[SOAK_WARMUP : SOAK_WARMUP + 5]
    end = rss[-5:]
    growth = statistics.median(end) - statistics.median(start)
    verdict = "OK" if growth <= TARGET_SOAK_GROWTH_MB else "MISSED"
    print(
        f"  uploads {SOAK_WARMUP + 1}-{SOAK_WARMUP + 5} (after warm-up): median {statistics.median(start):.0f} MB "
        f"(min {min(start):.0f}, max {max(start):.0f}); uploads {count - 4}-{count}: median "
        f"{statistics.median(end):.0f} MB (min {min(end):.0f}, max {max(end):.0f})"
    )
    print(
        f"  growth {growth:+.0f} MB (target <= {TARGET_SOAK_GROWTH_MB:.0f}) -> {verdict}; "
        f"peak (VmHWM) {peak_mb:.0f} MB"
    )
    for error in errors[:5]:
        print(f"  error: {error}")


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads in the server (BACKBONE_VIZ_TORCH_THREADS and OMP_NUM_THREADS); "
        "default: the app's own setting (1 thread per analysis, webui.configure_torch)",
    )
    parser.add_argument(
        "--photo",
        default="4032x3024",
        help="size of the uploaded photos (WxH, a 12-megapixel phone photo by default), "
        "or 'sample' for the samples' own sizes",
    )
    parser.add_argument(
        "--serial-repeats",
        type=int,
        default=3,
        help="for N = 1, how many sessions run one after another (the baseline's sample)",
    )
    parser.add_argument(
        "--browser-priority",
        default="idle",
        help="Chromium's CPU priority: 'idle' (SCHED_IDLE: the server gets the CPU first, as "
        "if every student's browser ran on its own computer) or a niceness (0: share evenly)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="seconds over which the N sessions arrive, evenly (default 0: all at once, the "
        "worst case; a classroom opening within a minute is --spread 60)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=0,
        help="0 (default): one `streamlit run app.py`; K >= 1: `python -m backbone_viz serve --replicas K` "
        "(warm-started replicas, nginx in front for K >= 2); CPU and memory are summed over them",
    )
    parser.add_argument(
        "--steps",
        type=int,
        choices=range(1, len(STEPS) + 1),
        default=len(STEPS),
        help="how many of each session's steps to take (home, upload, feature, layer, gradcam); "
        "2 measures one upload plus the Home page",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of backbone-viz (e.g. a `git worktree` of an older commit): each round "
        "runs against it first, then against this one, and the CPU per session is compared (one server only)",
    )
    parser.add_argument("--shots", type=Path, default=None, help="folder for a screenshot of every timeout")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds one step may take before it fails"
    )
    parser.add_argument(
        "--soak-uploads", type=int, default=0, help="run the memory soak with this many uploads"
    )
    args = parser.parse_args()
    size = None if args.photo == "sample" else tuple(int(v) for v in args.photo.lower().split("x"))
    # No module reloads when a source file changes during the run (someone editing the working tree):
    # that would measure Streamlit's reloading, and can break the sessions that run meanwhile.
    env = {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    if args.threads is not None:
        # OMP_NUM_THREADS sizes torch's intra-op pool when torch starts; BACKBONE_VIZ_TORCH_THREADS is the
        # app's own setting (read once in webui, where it exists).
        env |= {"BACKBONE_VIZ_TORCH_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    threads = (
        f"{args.threads} (set)"
        if args.threads is not None
        else f"the app's setting ({os.environ.get('BACKBONE_VIZ_TORCH_THREADS', '1')}; {os.cpu_count()} cores here)"
    )
    timeout_ms = args.timeout * 1000
    with tempfile.TemporaryDirectory(prefix="bv-load-") as tmp:
        workdir = Path(tmp)
        count = args.soak_uploads or max(*args.sessions, args.serial_repeats)
        photos = make_photos(workdir / "photos", count, size)
        print(
            f"photos: {count} different JPEGs, {args.photo}, {min(p.stat().st_size for p in photos) / 1e6:.1f} to "
            f"{max(p.stat().st_size for p in photos) / 1e6:.1f} MB; torch threads in the server: {threads}"
        )
        if args.soak_uploads:
            asyncio.run(soak(args.soak_uploads, photos, env, workdir, timeout_ms))
            return
        print(
            "one Chromium, one context per session, driven concurrently (asyncio + Playwright async API); "
            f"Chromium's CPU priority: {args.browser_priority}; arrivals spread over {args.spread:g} s; a fresh server per N "
            f"({'streamlit run app.py' if not args.replicas else f'backbone_viz serve --replicas {args.replicas}'}), "
            "then one first visit (its time: the first page after the health check)"
        )
        if args.baseline is not None and args.replicas:
            parser.error("--baseline compares one `streamlit run` each: leave out --replicas")
        served_by = [("baseline", args.baseline.resolve())] if args.baseline is not None else []
        served_by.append(("this", ROOT))
        print(f"steps per session: {', '.join(STEPS[: args.steps])}")
        rounds = []
        for n in args.sessions:
            for label, root in served_by:
                rounds.append(
                    asyncio.run(
                        run_round(
                            n,
                            photos,
                            env,
                            workdir,
                            timeout_ms,
                            args.serial_repeats,
                            args.browser_priority,
                            args.spread,
                            args.shots,
                            args.replicas,
                            steps=args.steps,
                            root=root,
                            label=label,
                        )
                    )
                )
                print(f"  {label} N={n} done in {rounds[-1].wall_s:.1f} s", flush=True)
        print_rounds(rounds)


if __name__ == "__main__":
    main()
