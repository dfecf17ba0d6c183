"""The Real detectors page through AppTest: no models on Lite0, ResNet-50 offline, and FCOS with a
checkpoint made here (no network anywhere)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from backbone_viz.files.sizes import describe_size
from tests.app.helpers import SAID, detectors_page, texts
from webui.shell.state import BACKBONE, WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PAGE = "app_pages/detectors.py"
TIMEOUT = 300
FCOS = "fcos_resnet50_fpn"
THRESHOLD = "Keep objects scoring at least"






def _threshold(at: AppTest):  # noqa: ANN202 - AppTest's Slider
    return next(s for s in at.slider if s.label == THRESHOLD)




def test_a_backbone_without_models_says_which_have_them_and_offers_the_switch(offline: Path) -> None:
    at = _page("efficientnet_lite0", "pretrained")
    text = _texts(at)
    assert "No ready-made detector or segmenter is built on EfficientNet-Lite0" in text
    switches = {b.key for b in at.button if b.key and b.key.startswith("dense.switch.")}
    assert switches == {f"dense.switch.{s.backbone}" for s in bv.list_dense()}
    assert "SSD300" in text and "DeepLabV3" in text
    at.button(key="dense.switch.resnet50").click().run()
    assert at.session_state[BACKBONE] == "resnet50"


def test_resnet50_offline_names_the_file_and_its_size_and_detects_nothing(offline: Path) -> None:
    spec = bv.get_dense_spec(FCOS)
    at = _page("resnet50", "pretrained", FCOS)
    text = _texts(at)
    wf = spec.weights_file
    assert f"{wf.filename} ({describe_size(wf.size_bytes)})" in text
    assert f"weights fetch {FCOS}" in text
    assert not [s for s in at.slider if s.label == THRESHOLD]  # nothing drawn, nothing claimed
    assert "scoring" not in text
    assert at.button(key=f"dense.download.{FCOS}").label == f"Download them ({describe_size(wf.size_bytes)})"
    # The download fails offline and says so; nothing breaks.
    at.button(key=f"dense.download.{FCOS}").click().run()
    assert not at.exception and at.error and "did not work" in at.error[0].value
    # Untrained: the layout only, never a finding.
    at.button(key=f"dense.untrained.{FCOS}").click().run()
    assert not at.exception
    assert at.session_state[WEIGHTS] == "untrained"
    text = _texts(at)
    assert "An untrained FCOS finds nothing" in text
    assert "scoring" not in text
    assert not [s for s in at.slider if s.label == THRESHOLD]
    assert "neck reads" in text and "kept" in text and "retrained" in text
    assert "same random weights as the untrained ResNet-50" in text
    assert "Measure how much" not in " ".join(b.label for b in at.button)


@pytest.fixture
def local_fcos(offline: Path) -> Path:
    """A trained-looking FCOS file in the torch cache under the real file's name: an untrained build (seed
    3) whose head scores "cat" high everywhere, so boxes come out. ``cached_path`` trusts the cache (files
    only get there verified), so no SHA-256 is checked on load."""
    spec = bv.get_dense_spec(FCOS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        state = spec.build().state_dict()
    bias = state["head.classification_head.cls_logits.bias"]
    bias.fill_(-10.0)
    assert len(bias) == len(spec.categories)  # FCOS scores every entry, background's too
    bias[spec.categories.index("cat")] = 6.0
    offline.mkdir(parents=True, exist_ok=True)
    path = offline / spec.weights_file.filename
    torch.save(state, path)
    return path


def test_with_a_local_checkpoint_boxes_are_shown_and_a_rerun_runs_nothing(
    local_fcos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("detect_objects", "dense_stage_maps", "load_dense"):
        real = getattr(bv, name)

        def counted(*args, _real=real, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(bv, name, counted)
    at = _page("resnet50", "pretrained", FCOS)
    assert not at.error, [e.value for e in at.error]
    text = _texts(at)
    assert "objects" in text or "object" in text
    listed = [m.value for m in at.markdown if "scoring 50% or more" in m.value]
    assert listed and "**cat**" in listed[0] and "**person**" not in listed[0]
    assert _threshold(at).value == 0.5
    assert "neck reads" in text and "neck skips" in text and "retrained" in text
    assert "Measure how much each stage changed" in [b.label for b in at.button]
    assert "resnet50-0676ba61.pth" in text  # the V1 weights it started from, named before measuring
    assert sorted(calls) == ["dense_stage_maps", "detect_objects", "load_dense"]
    calls.clear()
    _threshold(at).set_value(0.95).run()
    assert not at.exception and calls == []
    at.run()
    assert not at.exception and calls == []


def _texts(at: AppTest) -> str:
    return texts(at, SAID)


def _page(backbone: str, weights_choice: str, model: str | None = None) -> AppTest:
    return detectors_page(backbone, weights_choice, model, timeout=TIMEOUT)
