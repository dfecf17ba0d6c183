"""Shared fixtures: the bundled backbone (real ImageNet weights, no network) and real sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

# Tests never touch the internet and never read or write the user's torch cache.
os.environ.setdefault("BACKBONE_VIZ_WEIGHTS_MIRROR", "http://127.0.0.1:9/")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"


@pytest.fixture(autouse=True)
def _isolated_torch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))


@pytest.fixture
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty torch cache for one test and no mirror (for the weights tests, which serve their
    own files on loopback); returns the checkpoint folder, which does not exist yet."""
    from backbone_viz.weights import MIRROR_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path / "torch-home" / "hub" / "checkpoints"


@pytest.fixture(scope="session")
def lite0():
    """EfficientNet-Lite0 with its bundled ImageNet weights, on the CPU."""
    import backbone_viz as bv

    return bv.load_backbone("efficientnet_lite0", device="cpu")


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
