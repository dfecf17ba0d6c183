"""The "Build a head" page when nothing changed: a rerun fits and trains nothing.

Measured server-side with Streamlit's AppTest (no browser): the page with two painted labels (the
segmenter and its four comparisons, and the same head on another picture) and one box around the cat's
eye (the detector and what it finds), as the canvases would send them. Prints the first run (every head
fitted), then reruns with nothing changed (a widget's rerun on this page, or the page's own rerun after a
stroke elsewhere), each with the model runs it made, by engine function.

    python bench/build_head.py [--reruns 10]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BACKBONE_VIZ_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # never download here
os.environ.setdefault("BACKBONE_VIZ_WARM_START", "0")

from streamlit.testing.v1 import AppTest  # noqa: E402

import backbone_viz as bv  # noqa: E402
from backbone_viz.core.runs import model_runs  # noqa: E402
from webui.views import paint  # noqa: E402

#: A red band over the cat's face and a blue band along the top, in canvas px (as the segmenter's tests paint).
OBJECT_ROWS, BACKGROUND_ROWS = slice(100, 200), slice(5, 30)
#: Around the cat's left eye in the crop's pixels.
EYE = (28, 50, 104, 118)
RERUN_TARGET_S = 0.5


def _canvases() -> None:
    """The page's two canvases replaced by ones that send fixed strokes and one fixed box."""
    side = paint.CANVAS_PX
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[OBJECT_ROWS, 120:180] = (*paint.COLOURS[0][1], 255)
    rgba[BACKGROUND_ROWS, 10:250] = (*paint.COLOURS[1][1], 255)
    scale = side / 224
    x0, y0, x1, y1 = EYE
    drawn = [
        {
            "left": x0 * scale,
            "top": y0 * scale,
            "width": (x1 - x0 + 1) * scale,
            "height": (y1 - y0 + 1) * scale,
        }
    ]
    paint.canvas = lambda picture, *, colour, key: rgba
    paint.box_canvas = lambda picture, *, label, key: drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=10, help="reruns with nothing changed to time")
    args = parser.parse_args()

    calls: collections.Counter[str] = collections.Counter()
    # The app runs the model through the engine functions marked as such (backbone_viz.core.runs), looked up
    # on the module at each call, so replacing them here counts every model run.
    for name in model_runs(bv):
        real = getattr(bv, name)

        def counting(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)

        setattr(bv, name, counting)
    _canvases()

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.switch_page("app_pages/build_head.py")
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].value}")
    first_calls = dict(calls)
    calls.clear()
    times = []
    for _ in range(args.reruns):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].value}")

    print("Build a head, server-side times measured with streamlit.testing.v1.AppTest")
    print(
        f"backbone EfficientNet-Lite0 (bundled weights), sample 'cat', torch threads {__import__('torch').get_num_threads()}"
    )
    print(f"first run (backbone load, analysis, every head fitted): {first:.2f} s")
    print(f"  model runs: {', '.join(f'{n} x{c}' for n, c in sorted(first_calls.items()))}")
    median = statistics.median(times)
    print(
        f"rerun with nothing changed: n {len(times)}, median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, "
        f"target {RERUN_TARGET_S * 1000:.0f} ms: {'yes' if median <= RERUN_TARGET_S else 'NO'}"
    )
    refits = sum(calls.values())
    print(
        f"  model runs during the {len(times)} reruns: {refits} (expected 0: nothing is fitted, trained or run again)"
    )


if __name__ == "__main__":
    main()
