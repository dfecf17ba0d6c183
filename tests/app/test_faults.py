"""Faults a classroom server meets, through Streamlit's AppTest: the weights folder cannot be written, a
weights file disappears while the app runs, a hostile file is uploaded. Each time the page explains and
offers a way on, never a traceback, and a second session (another AppTest on the same process-wide caches)
keeps working between the steps.

Engine-level cases (hostile, damaged and foreign checkpoints; every kind of bad picture) live in
tests/test_backbones.py and tests/test_images.py; these check what the app makes of them.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import backbone_viz as bv
from backbone_viz.files import weights as weights_mod

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from webui.compute import caches  # noqa: E402

SAMPLES = ROOT / "assets" / "samples"
TIMEOUT = 60
GOOGLENET = bv.get_spec("googlenet")
UNAVAILABLE = f"{GOOGLENET.title}: the pretrained weights are not available"


@pytest.fixture(autouse=True)
def _forget_models() -> Iterator[None]:
    """No backbone loaded from a test's fake cache survives into another test (caches are per process)."""
    yield
    caches.clear_backbones()
    caches.clear_analyses()


def _start() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    return at


def _image_count(at: AppTest) -> int:
    return sum(len(image.value) for image in at.image)


def _errors(at: AppTest) -> str:
    """The weights errors and the details folded under them for the teacher."""
    details = [m.value for e in at.expander if e.label.startswith("For the teacher") for m in e.markdown]
    return "\n".join([e.value for e in at.error] + details)


def _other_session_analyses(other: AppTest, sample: str) -> None:
    """The second session uploads a photo and gets a full analysis, unaffected by the first one's fault."""
    other.sidebar.file_uploader[0].upload(
        f"{sample}.jpg", (SAMPLES / f"{sample}.jpg").read_bytes(), "image/jpeg"
    )
    other.run()
    assert not other.exception
    assert not other.error
    assert other.session_state["image"].name == f"{sample}.jpg"
    assert _image_count(other) >= 7  # the crop, one map per stage, the sidebar preview


@pytest.mark.parametrize("how", ["under a regular file", "read-only folder"])
def test_weights_folder_that_cannot_be_written(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "under a regular file":
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the cache folder should be")
        torch_home = blocker / "torch"  # mkdir fails with NotADirectoryError, even for root
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders; the regular-file case covers this here")
        torch_home = tmp_path / "read-only"
        torch_home.mkdir()
        torch_home.chmod(0o555)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    at, other = _start(), _start()

    at.radio(key="_w_backbone").set_value("googlenet").run()
    assert not at.exception
    assert UNAVAILABLE in _errors(at)
    assert "Cannot write the weights folder" in _errors(at) and "TORCH_HOME" in _errors(at)
    labels = [b.label for b in at.button]
    assert "Use the bundled EfficientNet-Lite0" in labels
    assert f"Use an untrained {GOOGLENET.title}" in labels

    _other_session_analyses(other, "flower")

    at.button(key="load.untrained.googlenet").click().run()
    assert not at.exception
    assert not at.error
    assert at.radio(key="_w_weights").value == "untrained"
    assert any("Untrained" in w.value for w in at.warning)  # the page says why the maps look like noise
    assert _image_count(at) >= 7


def test_weights_file_deleted_while_the_app_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real file cannot be downloaded here. The torch cache is trusted without hashing (a fast path:
    # files only get there verified), so an untrained state dict under GoogLeNet's file name stands in.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = weights_mod.cache_dir() / GOOGLENET.weights_file.filename
    cached.parent.mkdir(parents=True)
    torch.save(bv.load_backbone("googlenet", "untrained", device="cpu").model.state_dict(), cached)
    at, other = _start(), _start()

    at.radio(key="_w_backbone").set_value("googlenet").run()
    assert not at.exception
    assert not at.error
    assert any("here ✓" in caption for caption in at.radio(key="_w_backbone").proto.captions)
    assert _image_count(at) >= 7

    cached.unlink()
    # The next run looks for the file before using the loaded backbone: the page says the weights are not
    # available (offline here) and offers a way on; no traceback. The other session is unaffected.
    at.switch_page("app_pages/gradcam.py").run()
    assert not at.exception
    assert UNAVAILABLE in _errors(at)
    assert "offline" in _errors(at) and GOOGLENET.weights_file.filename in _errors(at)
    assert f"Use an untrained {GOOGLENET.title}" in [b.label for b in at.button]
    _other_session_analyses(other, "coffee")

    # The same once the loaded backbone is gone too (evicted by others, or a server restart), on the way
    # back from another backbone.
    caches.clear_backbones()
    at.radio(key="_w_backbone").set_value("efficientnet_lite0").run()
    assert not at.exception
    assert not at.error
    at.radio(key="_w_backbone").set_value("googlenet").run()
    assert not at.exception
    assert UNAVAILABLE in _errors(at)
    assert "offline" in _errors(at)
    at.button(key="load.bundled.googlenet").click().run()
    assert not at.exception
    assert not at.error
    assert at.radio(key="_w_backbone").value == "efficientnet_lite0"
    _other_session_analyses(other, "china")


class _Payload:
    """Unpickling this creates ``target``: proof that a file's code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.parametrize("kind", ["pickle", "torch checkpoint"])
def test_uploaded_code_never_runs(kind: str, tmp_path: Path) -> None:
    # An upload only ever reaches load_image, which reads picture formats by their first bytes: a pickle
    # or a torch checkpoint (a ZIP of pickles) named .png is refused, and never unpickled.
    marker = tmp_path / "ran"
    if kind == "pickle":
        data = pickle.dumps(_Payload(marker))
    else:
        path = tmp_path / "weights.pth"
        torch.save({"weight": torch.zeros(1), "payload": _Payload(marker)}, path)
        data = path.read_bytes()
    at = _start()
    at.sidebar.file_uploader[0].upload("holiday.png", data, "image/png").run()
    assert not at.exception
    assert "holiday.png could not be used" in _errors(at)
    assert at.session_state["image"].name == "cat"
    assert not marker.exists()


def test_the_web_app_reads_uploads_only_through_load_image() -> None:
    # Guards the property above for code paths the tests do not reach: nothing in the web app can
    # deserialise a file (the engine's one torch.load is weights_only=True, for checkpoints).
    risky = ("pickle", "torch.load", "np.load", "numpy.load", "joblib", "dill", "eval(", "exec(", "marshal")
    sources = [ROOT / "app.py", *(ROOT / "webui").glob("*.py"), *(ROOT / "app_pages").glob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}: {word}" for path in sources for word in risky if word in path.read_text()
    ]
    assert found == []
