"""Shared fixtures and helpers: the bundled backbone (real ImageNet weights, no network), real sample photos,
untrained backbones, a tiny hand-made backbone, and a loopback weights server."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

if TYPE_CHECKING:
    # Annotations only: backbone_viz is imported after the environment below is set.
    from weights_server import WeightsServer

    import backbone_viz as bv

# Tests never touch the internet and never read or write the user's torch cache.
os.environ.setdefault("BACKBONE_VIZ_WEIGHTS_MIRROR", "http://127.0.0.1:9/")
# No warm start behind the tests' back (they count model runs); tests of the warm start turn it on.
os.environ.setdefault("BACKBONE_VIZ_WARM_START", "0")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
#: The ImageNet classes the cat sample may fairly be called.
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(autouse=True)
def _isolated_torch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))


@pytest.fixture
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty torch cache for one test and no mirror (for the weights tests, which serve their
    own files on loopback); returns the checkpoint folder, which does not exist yet."""
    from backbone_viz.files.weights import MIRROR_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.fixture
def server() -> Iterator[WeightsServer]:
    """A loopback server of tiny checkpoints for the weights tests (tests/weights_server.py)."""
    from weights_server import WeightsServer

    with WeightsServer() as s:
        yield s


#: Where the engine's device tests run (tests/test_devices.py): the CPU always, and the GPU as well when
#: torch sees one; a test that takes ``device`` runs once per device, its id ending in ``[cpu]`` or ``[cuda]``.
DEVICES = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


@pytest.fixture(scope="session", params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """A device the engine's device tests run on (:data:`DEVICES`)."""
    return request.param


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 with its bundled ImageNet weights, on the CPU."""
    import backbone_viz as bv

    return bv.load_backbone("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module's tests, as the app runs each session: many small passes in a row
    with two threads on 2 busy cores spin-wait for each other (30x slower in bench/featurevis.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cat(lite0: bv.Backbone) -> bv.AnalysisResult:
    """The cat photo under the bundled backbone's own ImageNet head."""
    import backbone_viz as bv

    return bv.analyze(lite0, sample("cat"))


@pytest.fixture(scope="module")
def resnet50() -> tuple[bv.Backbone, bv.AnalysisResult]:
    """Untrained ResNet-50 and its analysis of the cat photo."""
    return untrained("resnet50")


def untrained(name: str, device: str = "cpu") -> tuple[bv.Backbone, bv.AnalysisResult]:
    """A backbone with seeded random weights, and its analysis of the cat photo."""
    import backbone_viz as bv

    torch.manual_seed(0)
    bb = bv.load_backbone(name, weights="untrained", device=device)
    return bb, bv.analyze(bb, sample("cat"))


class TinyNet(nn.Module):
    """conv 1x1 (3 -> 2: red, blue) -> ReLU -> global average pool -> linear (2 -> 2, with bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).view(2, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, -1.0], [-1.0, 3.0]]))
            self.fc.bias.copy_(torch.tensor([0.5, -0.25]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def tiny_backbone(model: nn.Module, size: int, categories: tuple[str, ...]) -> bv.Backbone:
    """A hand-made backbone around ``model`` (a :class:`TinyNet`), with identity preprocessing at ``size``."""
    from backbone_viz.core.backbones import Backbone
    from backbone_viz.core.specs import BackboneSpec, Preprocessing, layers_from_rows

    spec = BackboneSpec(
        name="tiny", title="Tiny", summary="", params_millions=0.0,
        layers=layers_from_rows([("relu", "relu", 2, 1, 1)]), head="fc", pooled="flatten", head_splits=True,
        # Identity preprocessing: resize and crop to `size`, mean 0, std 1.
        preprocessing=Preprocessing(size, size, "bilinear", (0.0,) * 3, (1.0,) * 3),
        weights_file=None, build=type(model),
    )
    return Backbone.wrap(spec, model, "untrained", categories, torch.device("cpu"))


def assert_splits_exactly(c: bv.Contributions, res: bv.AnalysisResult) -> None:
    """``c`` splits the target score of ``res`` exactly over its channels."""
    assert c.values.shape == c.pooled.shape == c.weights.shape == res.pooled.shape
    assert c.logit == pytest.approx(float(res.logits[res.target.index]))
    assert c.values.sum() + c.bias == pytest.approx(c.logit, abs=1e-4)
    np.testing.assert_allclose(c.values, c.weights * c.pooled)


def sample(name: str) -> Image.Image:
    """A sample photo from assets/samples as an RGB image."""
    import backbone_viz as bv

    return bv.load_image(SAMPLES / f"{name}.jpg")


def count_hooks(model: torch.nn.Module) -> int:
    """Every forward, pre-forward and backward hook on every submodule."""
    total = 0
    for module in model.modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_state_dict_hooks",
        ):
            total += len(getattr(module, attr, {}))
    return total


def model_left_alone(model: torch.nn.Module) -> Callable[[], None]:
    """Records what a call must not change on a shared model (its weights, hooks, train/eval modes,
    ``requires_grad`` flags and ``.grad``); returns the check, to call after the calls under test."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = count_hooks(model)
    training = [m.training for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]

    def check() -> None:
        assert count_hooks(model) == hooks == 0
        assert [m.training for m in model.modules()] == training
        assert [p.requires_grad for p in model.parameters()] == grads
        assert all(p.grad is None for p in model.parameters())
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), k

    return check


def watch_model_runs(monkeypatch: pytest.MonkeyPatch, seen: Callable[[str, Path], None]) -> None:
    """Wraps every engine function that runs a model (:func:`backbone_viz.core.runs.model_runs`, found from
    the marks in the engine) on ``backbone_viz`` so that a call first calls ``seen(name, caller's file)``
    (the call itself still runs); the app looks them up on ``bv`` at each call, so this sees every run.
    Undone by ``monkeypatch`` at the end of the test."""
    import backbone_viz as bv
    from backbone_viz.core.runs import model_runs

    for name in model_runs(bv):
        real = getattr(bv, name)

        # wraps copies the engine's ``runs_model`` mark: a second watcher (``count_model_runs`` inside an app
        # test, whose conftest already watches) must still find the function.
        @functools.wraps(real)
        def watched(*args, _real=real, _name=name, **kwargs):
            seen(_name, Path(sys._getframe(1).f_code.co_filename))
            return _real(*args, **kwargs)

        monkeypatch.setattr(bv, name, watched)


def count_model_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """:func:`watch_model_runs` appending each run's function name to the list returned."""
    calls: list[str] = []
    watch_model_runs(monkeypatch, lambda name, _caller: calls.append(name))
    return calls
