"""How fast the web app answers, measured server-side with Streamlit's AppTest (no browser, no network).

Two figures, each the wall time of one ``AppTest.run()`` (the whole script: sidebar, page, rendering):

* rerun after a widget change on the layer explorer (Feature build-up): the layer slider moved to
  another layer, ~10 times; the analysis comes from the cache, so the model must not run
  (target <= 150 ms);
* first analysis: the home page of a first visit (default backbone, the cat), with the backbone already
  loaded and the analysis cache emptied before each run (target <= 2 s).

Browser-side time (network, drawing) is not included.

    python bench/app.py [--reruns 10] [--firsts 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BACKBONE_VIZ_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # never download here
os.environ.setdefault("BACKBONE_VIZ_WARM_START", "0")  # the "first analysis" must find an empty cache

from streamlit.testing.v1 import AppTest  # noqa: E402

import backbone_viz as bv  # noqa: E402
from backbone_viz.core.runs import model_runs  # noqa: E402
from webui.compute import caches  # noqa: E402
from webui.shell.state import DEFAULT_BACKBONE  # noqa: E402

RERUN_TARGET_S = 0.150
FIRST_TARGET_S = 2.0


def _timed_run(at: AppTest) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the app raised: {at.exception[0].value}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=10, help="layer slider changes to time")
    parser.add_argument("--firsts", type=int, default=5, help="first analyses to time")
    args = parser.parse_args()

    calls: list[str] = []
    # The app runs the model through the engine functions marked as such (backbone_viz.core.runs), looked up
    # on the module at each call, so replacing them here counts every model run.
    for name in model_runs(bv):
        real = getattr(bv, name)

        def counting(backbone, *args, _real=real, **kwargs):
            calls.append(backbone.name)
            return _real(backbone, *args, **kwargs)

        setattr(bv, name, counting)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    warm_up = _timed_run(at)  # imports, loads the bundled backbone, analyses the cat

    firsts = []
    for _ in range(args.firsts):
        caches.clear_analyses()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)  # a new session, on Home
        firsts.append(_timed_run(at))

    at.switch_page("app_pages/feature_buildup.py")
    _timed_run(at)
    spec = bv.get_spec(DEFAULT_BACKBONE)
    layers = [layer.name for layer in spec.layers]
    before = len(calls)
    reruns = []
    for i in range(args.reruns):
        at.select_slider(key=f"_w_layer.{spec.name}").set_value(layers[(i * 5 + 3) % len(layers)])
        reruns.append(_timed_run(at))
    runs_during_reruns = len(calls) - before

    print("backbone-viz web app, server-side times measured with streamlit.testing.v1.AppTest")
    print(
        f"backbone {spec.title} (bundled weights), sample 'cat', device {bv.default_device()}, "
        f"torch threads {__import__('torch').get_num_threads()}"
    )
    print(f"warm-up (imports + model load + analysis): {warm_up:.2f} s\n")
    rows = [
        ("rerun after a layer slider change", reruns, RERUN_TARGET_S),
        ("first analysis (model loaded, cache empty)", firsts, FIRST_TARGET_S),
    ]
    print(f"{'measurement':<44} {'n':>3} {'median':>9} {'max':>9} {'target':>9}  ok")
    for name, times, target in rows:
        median = statistics.median(times)
        print(
            f"{name:<44} {len(times):>3} {median * 1000:>7.0f}ms {max(times) * 1000:>7.0f}ms "
            f"{target * 1000:>7.0f}ms  {'yes' if median <= target else 'NO'}"
        )
    print(f"\nmodel runs during the {len(reruns)} slider changes: {runs_during_reruns} (expected 0: cached analysis)")


if __name__ == "__main__":
    main()
