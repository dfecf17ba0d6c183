"""Loading backbones: weights choices, checkpoints (good, foreign, hostile, damaged) and shared-model safety."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import backbone_viz as bv
from backbone_viz.core.backbones import Backbone
from backbone_viz.core.checkpoints import read_checkpoint
from tests.conftest import sample


def _lite0_state(lite0: Backbone) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in lite0.model.state_dict().items()}


def test_no_inplace_activation_and_eval_mode() -> None:
    for name in ("resnet50", "googlenet", "vgg16"):
        bb = bv.load_backbone(name, weights="untrained", device="cpu")
        assert not bb.model.training
        assert not any(getattr(m, "inplace", False) is True for m in bb.model.modules()), name
        assert not any(p.requires_grad for p in bb.model.parameters())
        assert bb.device == torch.device("cpu")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_checkpoint_round_trip(lite0: Backbone, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"lite0{suffix}"
    state = _lite0_state(lite0)
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    bb = bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")
    assert bb.weights == str(path)
    assert bb.categories == lite0.categories
    a, b = bv.analyze(lite0, sample("coffee")), bv.analyze(bb, sample("coffee"))
    assert a.predictions == b.predictions


def test_checkpoint_with_another_head_and_labels(lite0: Backbone, tmp_path: Path) -> None:
    state = _lite0_state(lite0)
    state["classifier.weight"] = torch.randn(3, 1280) * 0.01
    state["classifier.bias"] = torch.zeros(3)
    path = tmp_path / "flowers.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    bb = bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")
    assert bb.categories == ("class 0", "class 1", "class 2")
    (tmp_path / "labels.txt").write_text("daisy\nrose\ntulip\n", encoding="utf-8")
    bb = bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")
    assert bb.categories == ("daisy", "rose", "tulip")
    res = bv.analyze(bb, sample("flower"), target="rose")
    assert len(res.predictions) == 3 and res.target.label == "rose"
    (tmp_path / "labels.txt").write_text("daisy\nrose\n", encoding="utf-8")
    with pytest.raises(bv.WeightsError, match="2 class names"):
        bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")


def test_checkpoint_that_does_not_fit_names_what(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(bv.WeightsError) as info:
        bv.load_backbone("resnet50", weights=path, device="cpu")
    message = str(info.value)
    assert "does not fit ResNet-50" in message and "missing: conv1.weight" in message
    assert "not in this model: weight, bias" in message
    lite0 = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    state = lite0.model.state_dict()
    state["conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(state, path)
    with pytest.raises(bv.WeightsError, match=r"wrong shape: conv_stem.weight \(16, 3, 3, 3\)"):
        bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")


class _Evil:
    """Unpickling this would create a file: the classic code-execution payload."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_hostile_checkpoint_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv_stem.weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    with pytest.raises(bv.WeightsError, match="not only weights"):
        bv.load_backbone("efficientnet_lite0", weights=path, device="cpu")
    assert not marker.exists()


def test_damaged_checkpoint_says_delete_and_fetch_again(lite0: Backbone, tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save(_lite0_state(lite0), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(bv.WeightsError) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value) and "Delete" in str(info.value)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(bv.WeightsError, match="junk.safetensors"):
        read_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(bv.WeightsError, match="no weights file"):
        read_checkpoint(tmp_path / "absent.pth")


def test_pretrained_without_network_fails_fast_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest points the mirror at a closed loopback port and TORCH_HOME at an empty folder.
    start = time.monotonic()
    with pytest.raises(bv.WeightsError) as info:
        bv.load_backbone("resnet50", weights="pretrained", device="cpu")
    assert time.monotonic() - start < 10
    text = str(info.value)
    assert "resnet50-11ad3fa6.pth" in text and "efficientnet_lite0" in text


def test_untrained_maps_show_no_hierarchy(lite0: Backbone) -> None:
    """The sanity-check lesson, as numbers: trained high-level Grad-CAM concentrates, random does not."""
    torch.manual_seed(0)
    random = bv.load_backbone("efficientnet_lite0", weights="untrained", device="cpu")
    img = sample("cat")
    trained_top = bv.analyze(lite0, img).predictions[0].probability
    random_top = bv.analyze(random, img).predictions[0].probability
    assert trained_top > 3 * random_top
    assert np.isfinite(bv.analyze(random, img).gradcam["bn2"]).all()


def _serve_googlenet(monkeypatch: pytest.MonkeyPatch, server, mode: str = "ok"):
    """Serves a real GoogLeNet checkpoint (random weights, aux heads included, as torchvision's file is)
    on the loopback server, and points the googlenet spec's weights file at it."""
    import dataclasses
    import io

    import torchvision

    import backbone_viz.core.backbones as backbones

    torch.manual_seed(1)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    wf = server.add(buffer.getvalue(), stem="googlenet", mode=mode)
    spec = dataclasses.replace(bv.get_spec("googlenet"), weights_file=wf)
    monkeypatch.setattr(backbones, "get_spec", lambda name: spec)
    monkeypatch.delenv("BACKBONE_VIZ_WEIGHTS_MIRROR", raising=False)
    return model, wf


def test_pretrained_download_end_to_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real path a user's first run takes: missing -> download with progress -> verify -> load."""
    from tests.weights_server import WeightsServer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with WeightsServer() as server:
        model, wf = _serve_googlenet(monkeypatch, server)
        seen: list[tuple[int, int | None]] = []
        bb = bv.load_backbone("googlenet", device="cpu", progress=lambda d, t: seen.append((d, t)))
        assert seen[-1] == (wf.size_bytes, wf.size_bytes)
        cached = tmp_path / "torch" / "hub" / "checkpoints" / wf.filename
        assert cached.is_file()
        assert torch.equal(bb.model.state_dict()["inception4c.branch1.conv.weight"],
                           model.state_dict()["inception4c.branch1.conv.weight"])
        # Second load: from the cache, no request.
        before = server.count(wf.filename)
        bv.load_backbone("googlenet", device="cpu")
        assert server.count(wf.filename) == before == 1


def test_truncated_file_in_the_cache_says_delete_with_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.weights_server import WeightsServer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with WeightsServer() as server:
        _, wf = _serve_googlenet(monkeypatch, server)
        bv.load_backbone("googlenet", device="cpu")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / wf.filename
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 3])
    with pytest.raises(bv.WeightsError) as info:
        bv.load_backbone("googlenet", device="cpu")
    assert str(cached) in str(info.value) and "Delete" in str(info.value)


def test_untrained_is_the_same_random_network_every_time() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    a = bv.load_backbone("googlenet", weights="untrained", device="cpu")
    torch.manual_seed(123)
    b = bv.load_backbone("googlenet", weights="untrained", device="cpu")
    assert torch.rand(1) == before  # the global generator was left as it was
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
