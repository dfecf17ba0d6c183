"""Block kinds are a registry: every block names one, and each kind carries what differs between kinds."""

from __future__ import annotations

import typing

import pytest

import backbone_viz as bv
from backbone_viz.core import block_kinds
from backbone_viz.core.blocks import BlockSpec, PartSpec, Role


def test_every_block_of_every_backbone_names_a_registered_kind() -> None:
    roles = set(typing.get_args(Role))
    seen = set()
    for spec in bv.list_backbones():
        for block in spec.blocks:
            kind = block_kinds.get_kind(block.kind)
            seen.add(kind.name)
            assert set(kind.chain) <= roles and kind.title.startswith(("a ", "an "))
            assert kind.chain or kind.side_by_side
    assert seen == {"plain", "residual", "inception", "inverted_residual"}


def test_an_unknown_kind_is_refused_where_a_block_is_described() -> None:
    with pytest.raises(ValueError, match="Unknown block kind 'dense'; choose one of: plain, residual"):
        BlockSpec("features.0", "conv1", "dense", 1, (PartSpec("x", "input", "input"),))  # type: ignore[arg-type]


def test_a_new_kind_is_one_class() -> None:
    @block_kinds.register_kind
    class Dense(block_kinds.Kind):
        name = "dense"
        title = "a dense block"
        chain = ("input", "conv", "output")

    try:
        block = BlockSpec("features.0", "conv1", "dense", 1, (PartSpec("x", "input", "input"),))  # type: ignore[arg-type]
        assert block_kinds.get_kind(block.kind).title == "a dense block"
        with pytest.raises(ValueError, match="registered already"):
            block_kinds.register_kind(Dense)
    finally:
        block_kinds._KINDS.remove("dense")
