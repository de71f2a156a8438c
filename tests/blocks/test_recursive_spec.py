"""``block: recursive`` in a spec: both formats give the same spec and
round-trip, bad fields are located errors, the compiled network runs a
library cell as the composition, and ``rnnspec compile -o`` writes a module
that computes what the in-process network computes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.blocks.recursive import Recursive
from rnnspec.codegen.standalone import generate
from rnnspec.data import collate
from rnnspec.data import synthetic as S
from rnnspec.spec.dump import dump_rnn, dump_yaml

YAML = """\
name: arith
model:
  input: {tokens: 25}
  layers:
    - {block: recursive, hidden: 8, open: 0, close: 1, compose: gru, operator: gate, stack_size: 20}
  output: {linear: 1}
  batch_first: true
"""

RNN = """\
network arith {
    input  tokens(25)
    block  recursive(hidden=8, open=0, close=1, compose=gru, operator=gate, stack_size=20)
    output linear(1)
    batch_first = true
}
"""


def error(text: str, fmt: str) -> rnnspec.SpecError:
    with pytest.raises(rnnspec.SpecError) as e:
        rnnspec.loads(text, fmt, filename=f"bad.{fmt}")
    return e.value


def test_yaml_and_rnn_give_the_same_spec_and_round_trip() -> None:
    a, b = rnnspec.loads(YAML, "yaml"), rnnspec.loads(RNN, "rnn")
    assert a == b
    assert rnnspec.loads(dump_yaml(a), "yaml") == a
    assert rnnspec.loads(dump_rnn(a), "rnn") == a
    block = a.model.layers[0]  # type: ignore[union-attr]
    assert (block.compose, block.operator, block.open, block.close, block.stack_size) == ("gru", "gate", 0, 1, 20)


def test_a_library_cell_composes_and_a_batch_equals_each_tree_alone() -> None:
    torch.manual_seed(0)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    block = net.rnn.groups[0].block
    assert isinstance(block, Recursive) and block.cell is not None  # the library's gru, compiled
    b = collate(S.make_arithmetic(6, seed=3, lengths=[1, 3, 6]))
    y, _ = net(b.x, lengths=b.lengths)
    for i in range(6):
        n = int(b.lengths[i])
        alone, _ = net(b.x[i : i + 1, :n])
        torch.testing.assert_close(y[i], alone[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "layer, at, message",
    [  # ``at``: the text the error points at (the layer's mapping for whole-layer rules)
        ("{block: recursive, hidden: 8, open: 0}", "{", "needs 'close'"),
        ("{block: recursive, hidden: 8, open: 1, close: 1}", "{", "must be different"),
        ("{block: recursive, hidden: 8, close: 25}", "25", "not a token of this input: it has 25"),
        ("{block: recursive, hidden: 8, close: 1, compose: gur}", "gur", "did you mean 'gru'"),
        ("{block: recursive, hidden: 8, close: 1, operator: infix}", "infix", "expected 'child', 'gate' or 'none'"),
        ("{block: recursive, hidden: 8, close: 1, slots: 4}", "{", "'slots' do(es) not apply to a recursive block"),
        ("{block: recursive, hidden: 8, close: 1, controller: lstm}", "{", "'controller' do(es) not apply"),
        ("{block: recursive, hidden: 8, close: 1, stack_size: 0}", "0}", "greater than 0"),
    ],
)
def test_bad_fields_are_located_errors(layer: str, at: str, message: str) -> None:
    line = f"    - {layer}"
    e = error(f"name: m\nmodel:\n  input: {{tokens: 25}}\n  layers:\n{line}\n", "yaml")
    assert message in e.message, e.message
    assert e.pos is not None and (e.pos.line, e.pos.col) == (5, line.index(at) + 1), (e.pos, e.message)


def test_the_block_must_see_the_bracket_tokens() -> None:
    line = "  input: {tokens: 25, embed: 8}"
    e = error(f"name: m\nmodel:\n{line}\n  layers:\n    - {{block: recursive, hidden: 8, close: 1}}\n", "yaml")
    assert "'embed' hides" in e.message and (e.pos.line, e.pos.col) == (3, line.index("embed") + 1)  # type: ignore[union-attr]
    rnn = "network m {\n  input tokens(25)\n  layer gru(hidden=4)\n  block recursive(hidden=8, close=1)\n}\n"
    e = error(rnn, "rnn")
    assert "must be the first layer" in e.message and e.pos.line == 4  # type: ignore[union-attr]


def test_a_composing_cell_must_output_a_node_vector() -> None:
    rnn = """\
cell wide(x, h[hidden], y[2*hidden]) -> y {
    h' = tanh(W @ x + U @ h + b)
    y' = tanh(V @ h')
}
network m {
    input tokens(25)
    block recursive(hidden=8, close=1, compose=wide)
}
"""
    e = error(rnn, "rnn")
    col = rnn.splitlines()[6].index("wide") + 1
    assert "outputs 16 values at hidden=8" in e.message and (e.pos.line, e.pos.col) == (7, col), (e.pos, e.message)  # type: ignore[union-attr]


def test_compiled_module_equals_the_in_process_network(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    spec = rnnspec.loads(RNN, "rnn")
    (tmp_path / "arith_model.py").write_text(generate(spec, "arith.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    b = collate(S.make_arithmetic(5, seed=1, lengths=[1, 4, 7]))
    expected, _ = net(b.x, lengths=b.lengths)
    got = run_standalone("arith_model", net.state_dict(), (b.x, b.lengths), "out, _ = m(inp[0], lengths=inp[1])")
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)
