"""The Grad-CAM page's other CAM methods through AppTest: the chosen methods side by side at every stage
from one pass, each with its sentence; Score-CAM only when asked, its cost said first. Bundled backbone."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from tests.app.helpers import texts
from tests.conftest import count_model_runs
from webui.compute import cam_cache

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/gradcam.py"


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(query or {})
    at.switch_page(PAGE)
    return at.run()


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "subheader"))


def test_the_chosen_methods_come_from_one_pass_each_with_its_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    cam_cache.clear()  # another test may have made these very maps: this one counts the pass
    runs = count_model_runs(monkeypatch)
    at = _open()
    assert not at.exception and not at.error
    text = _texts(at)
    methods = {m.name: m for m in bv.list_cams()}
    for name in ("gradcam", "gradcampp", "layercam", "eigencam"):
        assert f"**{methods[name].title}** ({methods[name].paper}): {methods[name].sentence}" in text
    assert "All 4 rows come from one forward pass and one gradient" in text
    assert runs.count("cam_family") == 1
    runs.clear()
    at.multiselect(key="cam.methods").set_value(["hirescam", "xgradcam"]).run()
    assert not at.exception and runs.count("cam_family") == 1
    assert f"**{methods['hirescam'].title}**" in _texts(at) and "**LayerCAM**" not in _texts(at)
    runs.clear()
    at.run()
    assert not runs  # nothing changed: nothing runs
    at.multiselect(key="cam.methods").set_value([]).run()
    assert "Choose a method above" in _texts(at)


def test_score_cam_says_its_cost_then_runs_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = count_model_runs(monkeypatch)
    at = _open()
    assert "score_cam" not in runs and "score_cam_cost" not in runs  # off until asked
    at.toggle(key="cam.score_on").set_value(True).run()
    assert not at.exception
    assert re.search(r"\d+ forward passes, about [\d.]+ s on this server", _texts(at))
    assert "score_cam" not in runs
    at.select_slider(key="cam.score_k.efficientnet_lite0").set_value(16).run()
    next(b for b in at.button if b.key == "cam.score_run").click().run()
    assert not at.exception and "score_cam" in runs
    text = _texts(at)
    # 16 masked pictures and the picture itself.
    assert "Score-CAM, 16 channels" in text and "Made from 17 forward passes" in text
    assert "forward passes, about" not in text  # the cost is gone once the map is there
