"""Spec semantics beyond parsing: includes, the library, layer arguments,
bias removal, heads, and every library cell's round trip."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.spec.dump import dump_rnn, dump_yaml
from rnnspec.spec.loader import cell_ir, standard_library


def test_include_brings_cells_from_another_file(tmp_path: Path) -> None:
    (tmp_path / "lib.rnn").write_text("cell twice(x, h[hidden]) {\n  h' = tanh(W @ x + U @ h) * 2\n}\n")
    (tmp_path / "net.yaml").write_text(
        "name: n\ninclude: [lib.rnn]\nmodel:\n  input: {vector: 3}\n  layers: [{cell: twice, hidden: 4}]\n"
    )
    net = rnnspec.compile(tmp_path / "net.yaml")
    y, h = net(torch.randn(5, 2, 3))
    assert y.shape == (5, 2, 4) and y.abs().max() <= 2.0


def test_own_cell_overrides_the_library(tmp_path: Path) -> None:
    spec = rnnspec.loads(
        "cell elman(x, h[hidden]) {\n  h' = relu(W @ x)\n}\nnetwork n {\n  input vector(3)\n  layer elman(hidden=4)\n}\n",
        fmt="rnn",
    )
    net = rnnspec.compile(spec)
    cell = net.rnn.groups[0].layers[0][0]
    assert [p.name for p in cell.ir.params] == ["W"]


def test_layer_constant_overrides_the_cell_default() -> None:
    lib = standard_library()
    relu = cell_ir("elman", lib["elman"], input_size=3, hidden=4, args={"act": "relu"})
    assert "relu" in str(relu.equations[0].expr)


def test_bias_false_removes_only_additive_vectors() -> None:
    lib = standard_library()
    ind = cell_ir("indrnn", lib["indrnn"], input_size=3, hidden=4, bias=False)
    assert {p.name for p in ind.params} == {"W", "u"}  # u multiplies h: it stays
    gru = cell_ir("gru", lib["gru"], input_size=3, hidden=4, bias=False)
    assert {p.name for p in gru.params} == {"W", "U"}


def test_heads_make_the_recurrence_block_diagonal() -> None:
    spec = rnnspec.loads("network n {\n input vector(3)\n layer lstm(hidden=8, heads=2)\n}\n", fmt="rnn")
    net = rnnspec.compile(spec)
    cell = net.rnn.groups[0].layers[0][0]
    U = cell.weight("U")  # [32, 8]: unit i of each gate sees only its head's half of h
    for gate in range(4):
        block = U[gate * 8 : (gate + 1) * 8]
        assert torch.all(block[:4, 4:] == 0) and torch.all(block[4:, :4] == 0)
        assert torch.all(block[:4, :4] != 0)
    # The masked-out weights get no gradient.
    y, _ = net(torch.randn(4, 2, 3))
    y.sum().backward()
    assert torch.all(cell.U.grad[:4, 4:] == 0)


@pytest.mark.parametrize("name", sorted(standard_library()))
def test_every_library_cell_round_trips_through_both_formats(name: str) -> None:
    args = ", out=3" if name == "jordan" else ""
    spec = rnnspec.loads(f"network n {{\n input vector(3)\n layer {name}(hidden=4{args})\n}}\n", fmt="rnn")
    spec.cells[name] = standard_library()[name]
    again_yaml = rnnspec.loads(dump_yaml(spec), fmt="yaml")
    again_rnn = rnnspec.loads(dump_rnn(spec), fmt="rnn")
    assert again_yaml == spec and again_rnn == spec


def test_deep_stack_sizes_follow_the_previous_level() -> None:
    spec = rnnspec.loads(
        "network n {\n input vector(3)\n layer gru(hidden=5) bidirectional depth 2\n layer elman(hidden=7)\n}\n", fmt="rnn"
    )
    net = rnnspec.compile(spec)
    g0, g1 = net.rnn.groups
    assert g0.layers[0][0].ir.inputs[0][1] == 3
    assert g0.layers[1][0].ir.inputs[0][1] == 10  # two directions concatenated
    assert g1.layers[0][0].ir.inputs[0][1] == 10
    y, (s0, s1) = net(torch.randn(6, 2, 3))
    assert y.shape == (6, 2, 7) and s0.shape == (4, 2, 5) and s1.shape == (1, 2, 7)
