"""Feature visualization: reproducible, the right objective, honest activations, the shared model untouched."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import backbone_viz as bv
from backbone_viz.probes import featurevis
from tests.conftest import count_hooks, sample

pytestmark = pytest.mark.usefixtures("one_thread")

# Small and short: these tests check the machinery; tests/test_atlas.py checks what it shows.
SMALL = {"size": 48, "steps": 6}


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_image_other_seed_other_image(lite0: bv.Backbone) -> None:
    a = bv.visualize_channel(lite0, "blocks.0.0", 3, seed=1, **SMALL)
    b = bv.visualize_channel(lite0, "blocks.0.0", 3, seed=1, **SMALL)
    c = bv.visualize_channel(lite0, "blocks.0.0", 3, seed=2, **SMALL)
    np.testing.assert_array_equal(pixels(a.image), pixels(b.image))
    assert np.abs(pixels(a.image) - pixels(c.image)).mean() > 1.0


def test_result_fields_and_activation_measured_on_the_8_bit_image(lite0: bv.Backbone) -> None:
    v = bv.visualize_channel(lite0, "blocks.1.1", 5, **SMALL)
    assert (v.layer, v.channel, v.image.size, v.image.mode) == ("blocks.1.1", 5, (48, 48), "RGB")
    assert v.trace.shape == (SMALL["steps"],)
    with torch.no_grad():
        out = lite0.extract(lite0.to_tensor(v.image), ["blocks.1.1"])["blocks.1.1"]
    assert v.activation == pytest.approx(float(out[0, 5].mean()), abs=1e-5)


def test_the_objective_rises(lite0: bv.Backbone) -> None:
    v = bv.visualize_channel(lite0, "blocks.2.1", 5, size=64, steps=12)
    assert v.trace[-1] > v.trace[0] + 1.0


def test_a_batch_gives_each_channel_its_own_picture(
    lite0: bv.Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(featurevis, "CPU_BATCH", 2)
    together = bv.visualize_channels(lite0, "blocks.1.1", [2, 5], **SMALL)
    alone = [bv.visualize_channel(lite0, "blocks.1.1", c, **SMALL) for c in (2, 5)]
    assert [v.channel for v in together] == [2, 5]
    for t, a in zip(together, alone, strict=True):
        assert np.abs(pixels(t.image) - pixels(a.image)).max() <= 2
    assert np.abs(pixels(together[0].image) - pixels(together[1].image)).mean() > 1.0


def test_layers_ending_in_an_activation_are_maximized_before_it(lite0: bv.Backbone) -> None:
    """bn2 (last_conv) is BatchNormAct2d with ReLU6: its objective is the batch norm of conv_head."""
    x = lite0.preprocess(sample("cat"))
    node, before = featurevis.objective_node(lite0, lite0.spec.layer("bn2"))
    assert node == "conv_head"
    with torch.no_grad():
        out = lite0.extract(x, [node, "bn2"])
        pre = before(out[node])
    torch.testing.assert_close(F.relu6(pre), out["bn2"])
    assert float((pre < 0).float().mean()) > 0.1  # after the ReLU6 these would have no gradient
    # A block that ends in a sum is maximized as it is.
    assert featurevis.objective_node(lite0, lite0.spec.layer("blocks.2.1"))[0] == "blocks.2.1.add"


def test_a_resnet_layer_is_maximized_before_its_last_relu() -> None:
    bb = bv.load_backbone("resnet50", weights="untrained", device="cpu")
    node, before = featurevis.objective_node(bb, bb.spec.layer("layer1.0"))
    assert node == "layer1.0.add"
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = bb.extract(x, [node, "layer1.0"])
    torch.testing.assert_close(torch.relu(before(out[node])), out["layer1.0"])


def test_the_constant_colour_is_kept() -> None:
    """The Fourier parameterization keeps its DC term: a spectrum with only DC is an even, non-grey colour."""
    size = 16
    spectrum = torch.zeros(1, 3, size, size // 2 + 1, 2)
    spectrum[0, 0, 0, 0, 0] = 8.0  # DC weight `size`, orthonormal inverse FFT (1 / size), then / 4: 2.0
    rgb = featurevis._to_rgb(spectrum, featurevis._frequency_scale(size), size)
    assert torch.allclose(rgb, rgb[..., :1, :1].expand_as(rgb))
    # Lucid's colour matrix, first column 0.26, 0.27, 0.27 over the largest column norm (that column's).
    column = torch.tensor([0.26, 0.27, 0.27])
    torch.testing.assert_close(rgb[0, :, 0, 0], torch.sigmoid(2.0 * column / column.norm()))


def test_no_hooks_and_model_unchanged_after_a_run_and_a_cancelled_one(lite0: bv.Backbone) -> None:
    before = snapshot(lite0.model)
    bv.visualize_channel(lite0, "blocks.0.0", 1, size=48, steps=2)

    def cancel(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bv.visualize_channels(lite0, "bn2", [0, 1], size=48, steps=4, progress=cancel)
    assert count_hooks(lite0.model) == 0
    assert not lite0.model.training
    for name, p in lite0.model.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for k, v in snapshot(lite0.model).items():
        assert torch.equal(v, before[k]), k


def test_progress_counts_every_step_of_every_channel(
    lite0: bv.Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(featurevis, "CPU_BATCH", 1)
    seen: list[tuple[int, int]] = []
    bv.visualize_channels(
        lite0, "blocks.0.0", [0, 1], size=48, steps=3, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(d, 6) for d in range(1, 7)]  # one channel at a time: every step of each


def test_threads_give_the_serial_results(lite0: bv.Backbone) -> None:
    jobs = [("blocks.0.0", 4), ("blocks.1.0", 7), ("blocks.0.0", 9)]
    serial = [bv.visualize_channel(lite0, layer, c, **SMALL) for layer, c in jobs]
    results: dict[int, bv.FeatureVis] = {}

    def run(i: int) -> None:
        results[i] = bv.visualize_channel(lite0, jobs[i][0], jobs[i][1], **SMALL)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, s in enumerate(serial):
        np.testing.assert_array_equal(pixels(results[i].image), pixels(s.image))


def test_bad_requests_are_explained(lite0: bv.Backbone) -> None:
    with pytest.raises(bv.BackboneVizError, match="no channel 16"):
        bv.visualize_channel(lite0, "blocks.0.0", 16, **SMALL)
    with pytest.raises(bv.BackboneVizError, match="too small"):
        bv.visualize_channel(lite0, "blocks.0.0", 0, size=8, steps=1)
    with pytest.raises(ValueError, match="no layer|choices|blocks.9"):
        bv.visualize_channel(lite0, "blocks.9.9", 0, **SMALL)
