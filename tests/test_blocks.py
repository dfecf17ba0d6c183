"""Contract: every block of every backbone matches the traced graph and the real outputs."""

from __future__ import annotations

import pytest
import torch

import backbone_viz as bv

NAMES = [spec.name for spec in bv.list_backbones()]


@pytest.fixture(scope="module", params=NAMES)
def backbone(request: pytest.FixtureRequest) -> bv.Backbone:
    return bv.load_backbone(request.param, "untrained", device="cpu")


def test_one_block_per_layer_with_the_layers_name_and_stage(backbone: bv.Backbone) -> None:
    spec = backbone.spec
    assert [b.name for b in spec.blocks] == [layer.name for layer in spec.layers]
    assert [b.stage for b in spec.blocks] == [layer.stage for layer in spec.layers]
    assert [b.label for b in spec.blocks] == [layer.label for layer in spec.layers]


def test_every_part_is_a_node_and_roles_follow_the_kind(backbone: bv.Backbone) -> None:
    expected = {
        "plain": [{"input", "conv", "relu", "output"}, {"input", "conv", "relu", "pool", "output"}],
        "residual": [{"input", "residual", "shortcut", "sum", "output"}],
        "inception": [{"input", "branch", "output"}],
        "inverted_residual": [
            {"input", "expand", "depthwise", "project", "output"},
            {"input", "expand", "depthwise", "project", "shortcut", "sum", "output"},
            {"input", "depthwise", "project", "output"},
        ],
    }
    nodes = set(backbone.node_names)
    for block in backbone.spec.blocks:
        roles = [p.role for p in block.parts]
        assert roles[0] == "input" and roles[-1] == "output", block.name
        assert set(roles) in expected[block.kind], (block.name, roles)
        if block.kind == "inception":
            assert roles.count("branch") == 4
        for part in block.parts:
            assert part.name in nodes, (block.name, part.name)
            assert part.label


def test_the_input_part_is_what_the_block_reads(backbone: bv.Backbone) -> None:
    graph = backbone.graph
    name_of = {node: name for name, node in graph._by_name.items()}
    for block in backbone.spec.blocks:
        inner = {p.name for p in block.parts if p.role not in ("input", "shortcut", "output")}
        readers = [
            node for name, node in graph._by_name.items() if name in inner or name.startswith(block.name + ".")
        ]
        reads = {name_of.get(arg) for node in readers for arg in node.all_input_nodes}
        assert block.part("input").name in reads, block.name


def test_parts_have_the_shapes_and_values_their_roles_promise(backbone: bv.Backbone) -> None:
    spec = backbone.spec
    size = spec.preprocessing.crop
    x = torch.randn(1, 3, size, size)
    names = sorted({p.name for b in spec.blocks for p in b.parts} | {layer.name for layer in spec.layers})
    with torch.no_grad():
        out = backbone.extract(x, names)
    for block, layer in zip(spec.blocks, spec.layers, strict=True):
        part = {p.role: out[p.name] for p in block.parts if p.role != "branch"}
        output = out[block.part("output").name]
        if block.part("pool") is None:
            torch.testing.assert_close(output, out[layer.name], msg=block.name)
        else:
            torch.testing.assert_close(part["relu"], out[layer.name], msg=block.name)
            assert output.shape[-1] * 2 in (part["relu"].shape[-1], part["relu"].shape[-1] + 1), block.name
        if block.has_shortcut:
            residual = part.get("residual", part.get("project"))
            assert residual.shape == part["shortcut"].shape == part["sum"].shape, block.name
            torch.testing.assert_close(part["sum"], residual + part["shortcut"], atol=1e-5, rtol=1e-5)
        if block.kind == "residual":
            torch.testing.assert_close(output, torch.relu(part["sum"]), msg=block.name)
        if block.kind == "inception":
            branches = [out[p.name] for p in block.parts if p.role == "branch"]
            assert torch.equal(torch.cat(branches, dim=1), output), block.name
        if block.kind == "inverted_residual":
            c_in = part["input"].shape[1]
            if "expand" in part:
                assert part["expand"].shape[1] == c_in * block.expansion, block.name
            assert part["depthwise"].shape[1] == c_in * block.expansion, block.name
            assert part["project"].shape[1] == layer.channels, block.name
            conv_dw = backbone.model.get_submodule(block.name).conv_dw
            assert conv_dw.kernel_size == (block.kernel, block.kernel)
            assert conv_dw.groups == conv_dw.in_channels  # one filter per channel


def test_list_blocks_in_forward_order() -> None:
    spec = bv.get_spec("resnet50")
    blocks = bv.list_blocks(spec)
    assert blocks == spec.blocks
    assert [b.kind for b in blocks[:2]] == ["plain", "residual"]
    assert sum(b.kind == "residual" for b in blocks) == 16
    assert sum(b.kind == "inception" for b in bv.list_blocks(bv.get_spec("googlenet"))) == 9
    lite0 = bv.list_blocks(bv.get_spec("efficientnet_lite0"))
    assert sum(b.has_shortcut for b in lite0) == 9
    assert bv.list_blocks("vgg16") == bv.get_spec("vgg16").blocks
