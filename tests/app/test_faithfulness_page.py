"""The "Which map is right?" page through AppTest: the maps and the baselines, costs said before anything
runs, then occlusion, the deletion and insertion ranking and ROAD on demand, each sentence matching the
numbers beside it; a rerun runs nothing. Bundled backbone, no network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import texts
from tests.conftest import count_model_runs

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/faithfulness.py"
TIMEOUT = 300


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.switch_page(PAGE)
    return at.run()


def _texts(at: AppTest) -> str:
    return texts(at, ("markdown", "caption", "title", "subheader", "info", "warning"))


def _button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def test_the_page_opens_with_its_maps_and_costs_and_runs_nothing_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = count_model_runs(monkeypatch)
    at = _open()
    assert not at.exception and not at.error
    assert at.title[0].value == "Which map is right? Measure it"
    text = _texts(at)
    for title in ("**Grad-CAM**", "**Grad-CAM++**", "**EigenCAM**"):
        assert title in text
    assert "**random map** · explains nothing" in text and "**Sobel edges** · explains nothing" in text
    # Costs come first: 3 maps and the 2 baselines, 64 steps each way, plus the picture itself.
    assert "5 maps with the baselines: 641 pictures through the model, about" in text
    assert re.search(r"\d+ forward passes, about \d+ s on this server", text)  # occlusion's
    assert not {"rank_maps", "occlusion", "road"} & set(runs)


def test_measure_occlude_and_road_each_say_what_their_numbers_say(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = count_model_runs(monkeypatch)
    at = _open()
    at.multiselect(key="faith.methods").set_value(["gradcam"]).run()
    # Occlusion with a coarse grid: 6 x 6 places of a 64 px square, and the unoccluded picture.
    at.select_slider(key="faith.patch").set_value(64).run()
    at.select_slider(key="faith.stride").set_value(32).run()
    assert "37 forward passes" in _texts(at)
    _button(at, "faith.occlude").click().run()
    assert not at.exception and "occlusion" in runs
    text = _texts(at)
    assert "6 × 6 places of a 64 px grey square, 37 forward passes" in text
    assert "**Occlusion**" in text  # it joins the maps measured
    # The ranking: Grad-CAM, occlusion and the two baselines.
    _button(at, "faith.measure").click().run()
    assert not at.exception and "rank_maps" in runs
    table = at.dataframe[0].value
    assert list(table["map"]) and len(table) == 4
    assert set(table["map"]) == {"Grad-CAM", "Occlusion", "random map (baseline)", "Sobel edges (baseline)"}
    first = table.iloc[0]["map"].replace(" (baseline)", "")
    text = _texts(at)
    assert f"**{first}** comes first on this picture" in text
    random = table[table["map"] == "random map (baseline)"].iloc[0]
    for _, row in table.iterrows():
        name = row["map"]
        if "(baseline)" in name:
            continue
        beats = (
            row["deletion area (lower is better)"] < random["deletion area (lower is better)"]
            and row["insertion area (higher is better)"] > random["insertion area (higher is better)"]
        )
        said = re.search(r"(Every map measured beat|No map measured beat|[^.]* beat the random map[^.]*)", text)
        assert said, text
        if beats and "Every map" not in said.group(0):
            assert name in said.group(0).split("beat the random map")[0], said.group(0)
    # The pictures along the curves, at any step, run nothing.
    runs.clear()
    at.slider(key="faith.step").set_value(32).run()
    assert not at.exception and not runs
    assert "Deletion: 50% of the pixels deleted" in _texts(at)
    # ROAD.
    _button(at, "faith.road").click().run()
    assert not at.exception and runs.count("road") == 3  # Grad-CAM, occlusion, the random map
    roads = at.dataframe[1].value
    best = roads.iloc[0]["map"].replace(" (baseline)", "")
    assert f"ROAD puts **{best}** first" in _texts(at)
    runs.clear()
    at.run()
    assert not at.exception and not runs


def test_vgg16_untrained_opens() -> None:
    at = _open({"backbone": "vgg16", "weights": "untrained"})
    assert not at.exception and not at.error
    assert "explains nothing" in _texts(at)
