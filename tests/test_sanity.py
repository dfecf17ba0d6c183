"""The sanity check of Adebayo et al.: the cascade on a private copy, its groups, its random weights, its
rank correlation, and the shared model left exactly as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import backbone_viz as bv
from backbone_viz.explain.sanity import (
    HEAD_LIMIT,
    RANDOM_LIMIT,
    Verdict,
    cascade_groups,
    check_verdict,
    rank_correlation,
    reinitialize,
    verdict,
)
from tests.conftest import count_hooks, sample
from tests.test_attributions import checksum

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def saliency_check(lite0: bv.Backbone) -> tuple[bv.SanityCheck, str, list[tuple[int, int]]]:
    """The saliency check on the cat, the shared model's checksum before it, and the progress calls."""
    before = checksum(lite0.model)
    calls: list[tuple[int, int]] = []
    check = bv.sanity_check(lite0, sample("cat"), "saliency", progress=lambda d, t: calls.append((d, t)))
    return check, before, calls


def test_the_cascade_goes_from_the_head_down_to_the_stem(
    lite0: bv.Backbone, saliency_check: tuple[bv.SanityCheck, str, list[tuple[int, int]]]
) -> None:
    check, before, calls = saliency_check
    labels = [s.label for s in check.steps]
    assert labels == ["trained", "head", "stage 5", "stage 4", "stage 3", "stage 2", "stage 1"]
    assert check.steps[-1].random == tuple(labels[1:]) and check.steps[0].random == ()
    assert calls == [(i, 7) for i in range(1, 8)]
    # The first step is the shared model's own map, for the same target at every step.
    plain = bv.attribute(lite0, sample("cat"), "saliency")
    np.testing.assert_array_equal(check.steps[0].attribution.channels, plain.channels)
    assert {s.attribution.target.index for s in check.steps} == {plain.target.index} == {check.target.index}
    # Each correlation is the rank correlation of that step's map with the trained one.
    trained = check.steps[0].attribution.strength
    for step in check.steps:
        assert step.correlation == pytest.approx(rank_correlation(trained, step.attribution.strength))
    assert check.steps[0].correlation == 1.0
    # The plain gradient depends on the weights: it has lost most of its likeness once all are random.
    assert check.steps[-1].correlation < 0.5
    assert count_hooks(lite0.model) == 0 and checksum(lite0.model) == before


def test_guided_backprop_barely_notices_a_random_head(lite0: bv.Backbone) -> None:
    # Adebayo et al.'s finding, on our bundled weights: Guided Backprop's map stays nearly the same when
    # the head is random, unlike the plain gradient's (test above and bench/attributions.py).
    state = torch.random.get_rng_state()
    check = bv.sanity_check(lite0, sample("cat"), "guided_backprop")
    assert torch.equal(torch.random.get_rng_state(), state)  # its own generator, not the global one
    assert check.steps[1].label == "head" and check.steps[1].correlation > 0.9
    again = bv.sanity_check(lite0, sample("cat"), "guided_backprop")
    assert [s.correlation for s in again.steps] == [s.correlation for s in check.steps]  # fixed seed


def test_shared_model_is_unchanged_after_a_failed_check(lite0: bv.Backbone) -> None:
    before = checksum(lite0.model)

    def stop(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt  # the learner closed the page halfway

    with pytest.raises(KeyboardInterrupt):
        bv.sanity_check(lite0, sample("cat"), "input_x_gradient", progress=stop)
    with pytest.raises(ValueError, match="takes no options"):
        bv.sanity_check(lite0, sample("cat"), "saliency", steps=4)
    assert count_hooks(lite0.model) == 0 and checksum(lite0.model) == before


def test_every_module_with_weights_is_in_exactly_one_group(lite0: bv.Backbone) -> None:
    groups = cascade_groups(lite0)
    assert list(groups) == ["head", "stage 5", "stage 4", "stage 3", "stage 2", "stage 1"]
    modules = dict(lite0.model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    assert [names[id(m)] for m in groups["head"]] == ["classifier"]
    assert names[id(groups["stage 1"][0])] == "conv_stem"
    assert "bn2" in {names[id(m)] for m in groups["stage 5"]}  # the head conv belongs to the last stage
    grouped = [p for members in groups.values() for m in members for p in m.parameters()]
    assert len({id(p) for p in grouped}) == len(grouped) == len(list(lite0.model.parameters()))


def test_reinitialize_draws_as_pytorch_does_from_its_generator() -> None:
    layers = nn.Sequential(nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    with torch.no_grad():
        for p in layers.parameters():
            p.fill_(5.0)
        layers[1].running_mean.fill_(3.0)
    reinitialize(layers, torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(8 * 9)  # PyTorch's default: kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(fan_in), ...)
    assert layers[0].weight.abs().max() <= bound and layers[0].weight.std() > bound / 3
    assert layers[0].bias.abs().max() <= bound
    assert torch.equal(layers[1].weight, torch.ones(4)) and torch.equal(layers[1].bias, torch.zeros(4))
    assert torch.equal(layers[1].running_mean, torch.zeros(4))
    assert layers[2].weight.abs().max() <= 0.5
    other = nn.Sequential(nn.Conv2d(8, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    reinitialize(other, torch.Generator().manual_seed(0))
    assert torch.equal(other[0].weight, layers[0].weight)  # the seed fixes the draw


def test_rank_correlation_by_hand() -> None:
    a = np.array([[0.1, 0.5], [0.2, 0.9]])
    assert rank_correlation(a, a**3) == pytest.approx(1.0)  # the same order, other values
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(a, np.array([[1.0, 3.0], [4.0, 2.0]])) == pytest.approx(
        0.2
    )  # 1 - 6 * 8 / (4 * 15)
    assert math.isnan(rank_correlation(a, np.ones((2, 2))))


# ------------------------------------------------------------------------------------------ the verdict


def test_the_verdict_follows_the_two_stated_limits() -> None:
    # Guided Backprop on the bundled backbone: unchanged with a random head.
    assert verdict(1.0, 0.24) == Verdict(False, "head", 1.0, 0.24)
    # Integrated Gradients: changed with a random head, yet still alike with every weight random.
    assert verdict(0.70, 0.56) == Verdict(False, "random", 0.70, 0.56)
    assert verdict(0.49, 0.14).passes and verdict(0.49, 0.14).reason is None
    # The limits themselves fail; just under them passes.
    assert not verdict(HEAD_LIMIT, 0.0).passes and verdict(HEAD_LIMIT - 0.01, 0.0).passes
    assert not verdict(0.0, RANDOM_LIMIT).passes and verdict(0.0, RANDOM_LIMIT - 0.01).passes
    # A map that went constant (NaN) kept nothing of the trained one: it changed.
    assert verdict(math.nan, math.nan).passes
    assert 0 < RANDOM_LIMIT < HEAD_LIMIT < 1


def test_a_checks_verdict_reads_its_head_step_and_its_last_step(
    saliency_check: tuple[bv.SanityCheck, str, list[tuple[int, int]]],
) -> None:
    check, _, _ = saliency_check
    result = check_verdict(check)
    assert (result.head, result.random) == (check.steps[1].correlation, check.steps[-1].correlation)
    assert result == verdict(check.steps[1].correlation, check.steps[-1].correlation)
