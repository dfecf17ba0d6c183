"""Extractors per node set: any graph node, hook-free, stopping early, in-place operations undone."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import fx, nn

import backbone_viz as bv
from backbone_viz.core.graph import LOGITS, MAX_CUTS, POOLED, NodeGraph
from backbone_viz.files.samples import SAMPLES_DIR

NAMES = [spec.name for spec in bv.list_backbones()]


@pytest.fixture(scope="module")
def lite0() -> bv.Backbone:
    return bv.load_backbone("efficientnet_lite0", "pretrained", device="cpu")


def _called_modules(extractor: fx.GraphModule) -> set[str]:
    return {str(n.target) for n in extractor.graph.nodes if n.op == "call_module"}


def test_block_internals_are_reachable_by_node_name(lite0: bv.Backbone) -> None:
    x = torch.randn(1, 3, 224, 224)
    names = ["blocks.2.1.conv_pw", "blocks.2.1.conv_dw", "blocks.2.1.bn3"]
    with torch.no_grad():
        out = lite0.extract(x, names)
        block = lite0.extract(x, ["blocks.2.1", "blocks.2.0"])
    assert list(out) == names
    assert out["blocks.2.1.conv_pw"].shape == (1, 240, 28, 28)  # the expansion: 40 -> 6 x 40 channels
    assert out["blocks.2.1.bn3"].shape == (1, 40, 28, 28)
    # A module name means its last node: the block's output is its projection plus the shortcut.
    torch.testing.assert_close(block["blocks.2.1"], out["blocks.2.1.bn3"] + block["blocks.2.0"])


def test_an_extractor_stops_at_the_last_node_asked_for(lite0: bv.Backbone) -> None:
    early = lite0.extractor(["blocks.1.0"])
    called = _called_modules(early)
    assert not any(m.startswith(("blocks.2", "conv_head", "classifier")) for m in called)
    pooled = lite0.extractor([POOLED])
    assert "classifier" not in _called_modules(pooled)  # nobody asked for the logits
    assert "classifier" in _called_modules(lite0.extractor([LOGITS]))


def test_pooled_alone_equals_the_full_run(lite0: bv.Backbone) -> None:
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        alone = lite0.extract(x, [POOLED])[POOLED]
        full = lite0.extractor()(x)[lite0.spec.pooled]
    torch.testing.assert_close(alone, full)
    assert alone.shape == (2, 1280)


def test_unknown_node_names_close_matches(lite0: bv.Backbone) -> None:
    with pytest.raises(ValueError, match=r"blocks\.2\.1\.conv_pw"):
        lite0.extract(torch.randn(1, 3, 224, 224), ["blocks.2.1.conv_pww"])
    with pytest.raises(ValueError, match="at least one"):
        lite0.extractor([])


def test_extractors_are_made_once_per_node_set_and_bounded(lite0: bv.Backbone) -> None:
    first = lite0.extractor(["blocks.3.0", "blocks.4.0"])
    assert lite0.extractor(["blocks.3.0", "blocks.4.0"]) is first
    names = [n for n in lite0.node_names if n.startswith("blocks.")][: MAX_CUTS + 5]
    for name in names:
        lite0.extractor([name])
    assert len(lite0.graph._cuts) <= MAX_CUTS


def test_extractors_share_the_models_parameters(lite0: bv.Backbone) -> None:
    cut = lite0.extractor(["blocks.2.1"])
    params = {id(p) for p in lite0.model.parameters()}
    assert {id(p) for p in cut.parameters()} <= params
    assert len(list(cut.parameters())) > 0


def test_threads_cutting_and_running_at_once_agree(lite0: bv.Backbone) -> None:
    x = torch.randn(1, 3, 224, 224)
    nodes = [["blocks.1.1"], ["blocks.3.2", "bn2"], ["blocks.5.0.conv_dw"], [POOLED]]
    with torch.no_grad():
        expected = [lite0.extract(x, n) for n in nodes]
    lite0.graph._cuts.clear()
    results: dict[int, dict[str, torch.Tensor]] = {}

    def work(i: int) -> None:
        with torch.no_grad():
            results[i] = lite0.extract(x, nodes[i % len(nodes)])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, out in results.items():
        for key, value in expected[i % len(nodes)].items():
            torch.testing.assert_close(out[key], value)
    assert len(results) == 8


@pytest.mark.parametrize("name", NAMES)
def test_no_in_place_operation_is_left_in_any_backbone(name: str) -> None:
    bb = bv.load_backbone(name, "untrained", device="cpu")
    graph = bb.graph._graph
    for node in graph.nodes:
        assert node.kwargs.get("inplace") is not True, (name, node.name)
        if node.op == "call_method":
            assert not node.target.endswith("_") or node.target.startswith("_"), (name, node.name)
    for module in bb.model.modules():
        assert getattr(module, "inplace", False) is not True, (name, type(module).__name__)


def test_googlenet_batch_norm_output_is_not_overwritten_by_its_relu() -> None:
    # BasicConv2d returns F.relu(bn(x), inplace=True): a captured "conv1.bn" would read as the ReLU's
    # output (no negative values) if the in-place call were left in the graph.
    bb = bv.load_backbone("googlenet", "untrained", device="cpu")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = bb.extract(x, ["conv1.bn", "conv1.relu"])
        conv = bb.model.conv1
        direct = conv.bn(conv.conv(bb.model._transform_input(x)))
    assert (out["conv1.bn"] < 0).any()
    torch.testing.assert_close(out["conv1.bn"], direct)
    torch.testing.assert_close(out["conv1.relu"], torch.relu(direct))


def test_resnet_block_internals_add_up() -> None:
    bb = bv.load_backbone("resnet50", "untrained", device="cpu")
    x = torch.randn(1, 3, 224, 224)
    names = ["layer2.0.bn3", "layer2.0.downsample.1", "layer2.0.add", "layer2.0"]
    with torch.no_grad():
        out = bb.extract(x, names)
    torch.testing.assert_close(out["layer2.0.add"], out["layer2.0.bn3"] + out["layer2.0.downsample.1"])
    torch.testing.assert_close(out["layer2.0"], torch.relu(out["layer2.0.add"]))
    assert (out["layer2.0.add"] < 0).any()  # the sum is kept before the ReLU overwrites anything


def test_extract_never_registers_hooks_or_changes_the_model(lite0: bv.Backbone) -> None:
    before = {k: v.clone() for k, v in lite0.model.state_dict().items()}
    x = torch.randn(1, 3, 224, 224, requires_grad=True)
    out = lite0.extract(x, ["blocks.4.1.conv_dw", LOGITS])
    torch.autograd.grad(out[LOGITS][0, 3], [out["blocks.4.1.conv_dw"]])
    assert not lite0.model.training
    for module in lite0.model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert all(p.grad is None and not p.requires_grad for p in lite0.model.parameters())
    for k, v in lite0.model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_tiny_model_nodes() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            y.relu_()  # an in-place method call: rewritten out-of-place in the graph
            return y

    from backbone_viz.core.graph import NodeGraph

    net = Net().eval()
    graph = NodeGraph(net)
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        out = graph.extractor(["conv", "relu_"])(x)
        conv = net.conv(x)
    torch.testing.assert_close(out["conv"], conv)  # not overwritten by the ReLU
    torch.testing.assert_close(out["relu_"], conv.relu())


def test_a_backbone_traced_while_other_threads_run_models_disturbs_neither(lite0: bv.Backbone) -> None:
    """Loading a backbone traces it, and torch.fx patches ``nn.Module.__call__`` for the whole process
    while it traces: a class's other sessions keep running their models meanwhile (seen at N=30 as
    "NameError: module is not installed as a submodule" on pages of sessions that were not loading)."""
    x = lite0.preprocess(bv.load_image(SAMPLES_DIR / "cat.jpg"))
    head = nn.Linear(lite0.spec.layers[-1].channels, 3)  # a learner's head: a plain module call
    with torch.no_grad():
        reference = lite0.extract(x, [POOLED])[POOLED]
        reference_head = head(reference)
    stop = threading.Event()
    problems: list[BaseException] = []
    runs = [0]

    def student() -> None:
        try:
            while not stop.is_set():
                with torch.no_grad():
                    pooled = lite0.extract(x, [POOLED])[POOLED]
                    torch.testing.assert_close(pooled, reference)
                    torch.testing.assert_close(head(pooled), reference_head)
                runs[0] += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            problems.append(error)

    threads = [threading.Thread(target=student) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            traced = NodeGraph(bv.load_backbone("efficientnet_lite0", "untrained").model)
            assert "blocks.2.1.add" in traced.node_names
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not problems, problems[0]
    assert runs[0] > 0
