"""The NNPDA stack as a spec layer (`block: pda`): both formats, located
errors, `rnnspec compile -o`, padding and resumable state."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.blocks.stack import NNPDA, NNPDAState
from rnnspec.cli import main
from rnnspec.spec.dump import dump_rnn, dump_yaml

from _padding import assert_padding_is_invisible  # noqa: E402

RNN = """
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}
network stacks {
  input vector(3)
  block pda(hidden=6, stack_width=4, stack_depth=12, out=5)
  block pda(hidden=7, controller=mgu, stack_width=3, action=signed)
  block pda(controller=feedforward, hidden=5, stack_depth=4)
  output linear(2) every step
}
"""

YAML = """
cells:
  mgu:
    inputs: [x]
    state: {h: hidden}
    equations:
      - f  = sigmoid(W_f @ x + U_f @ h + b_f)
      - n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
      - h' = (1 - f) * h + f * n
name: stacks
model:
  input: {vector: 3}
  layers:
    - {block: pda, hidden: 6, stack_width: 4, stack_depth: 12, out: 5}
    - {block: pda, hidden: 7, controller: mgu, stack_width: 3, action: signed}
    - {block: pda, controller: feedforward, hidden: 5, stack_depth: 4}
  output: {linear: 2, every_step: true}
"""


def _pdas(net: torch.nn.Module) -> list[NNPDA]:
    return [m for m in net.modules() if isinstance(m, NNPDA)]


def test_yaml_and_rnn_give_the_same_spec_and_round_trip() -> None:
    spec = rnnspec.loads(RNN, "rnn")
    assert rnnspec.loads(YAML, "yaml") == spec
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    first, second, third = spec.model.layers
    assert (first.block, first.stack_width, first.stack_depth, first.action, first.output_size) == ("pda", 4, 12, "push_pop", 5)
    assert (second.controller, second.action, second.output_size) == ("mgu", "signed", 7)


def test_fields_reach_the_module_and_a_cell_controller_reads_the_stack_top() -> None:
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn"))
    a, b, c = _pdas(net)
    assert (a.input_size, a.output_size, a.stack_width, a.stack_depth, a.action) == (3, 5, 4, 12, "push_pop")
    assert (b.input_size, b.output_size, b.stack_width, b.action) == (5, 7, 3, "signed")
    assert (c.input_size, c.stack_depth) == (7, 4)
    # the custom controller sees [x_t, r_{t-1}]: input 5 + stack width 3
    assert b.controller.cell.ir.inputs == (("x", 8),)
    y, state = net(torch.randn(6, 2, 3))
    assert y.shape == (6, 2, 2) and torch.isfinite(y).all()


def _error(text: str, fmt: str) -> rnnspec.SpecError:
    with pytest.raises(rnnspec.SpecError) as e:
        rnnspec.loads(text, fmt, filename=f"bad.{fmt}")
    return e.value


HEAD_YAML = "name: m\nmodel:\n  input: {vector: 3}\n  layers:\n"
HEAD_RNN = "network m {\n  input vector(3)\n"


@pytest.mark.parametrize(
    "layer, message, culprit",
    [
        ("{block: pda, hidden: 4, slots: 8}", r"'slots' do\(es\) not apply to a pda block", None),
        ("{block: ntm, hidden: 4, stack_width: 8}", r"'stack_width' do\(es\) not apply to a ntm block", None),
        ("{block: pda, hidden: 4, action: shove}", r"got the string 'shove'; expected 'push_pop' or 'signed'", "shove"),
        ("{block: pda, hidden: 4, stack_depth: 0}", "greater than 0", "0"),
        ("{block: pda, hidden: 4, stack_width: 2.5}", "expected an integer", "2.5"),
        ("{block: pda, hidden: 4, controller: lstn}", "did you mean 'lstm'", "lstn"),
    ],
)
def test_bad_fields_are_located_in_yaml(layer: str, message: str, culprit: str | None) -> None:
    line = f"    - {layer}"
    err = _error(HEAD_YAML + line + "\n", "yaml")
    assert err.pos is not None and (err.pos.file, err.pos.line) == ("bad.yaml", 5), str(err)
    if culprit is not None:  # the caret is under the bad value
        assert err.pos.col == line.rindex(culprit) + 1, str(err)
    assert re.search(message, err.message), err.message


@pytest.mark.parametrize(
    "args, message, culprit",
    [
        ("hidden=4, width=8", r"'width' do\(es\) not apply to a pda block", None),
        ("hidden=4, action=pop_only", r"got the string 'pop_only'; expected 'push_pop' or 'signed'", "pop_only"),
        ("hidden=4, stack_depth=-3", "greater than 0", "-3"),
        ("hidden=4, controller=grux", "did you mean 'gru'", "grux"),
    ],
)
def test_bad_fields_are_located_in_rnn(args: str, message: str, culprit: str | None) -> None:
    line = f"  block pda({args})"
    err = _error(HEAD_RNN + line + "\n}\n", "rnn")
    assert err.pos is not None and (err.pos.file, err.pos.line) == ("bad.rnn", 3), str(err)
    if culprit is not None:
        assert err.pos.col == line.rindex(culprit) + 1, str(err)
    assert re.search(message, err.message), err.message


def test_compile_o_writes_a_module_that_matches_in_process(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    src = tmp_path / "stacks.rnn"
    src.write_text(RNN)
    out = tmp_path / "stacks_model.py"
    assert main(["compile", str(src), "-o", str(out)]) == 0
    torch.manual_seed(0)
    net = rnnspec.compile(rnnspec.load(src))
    x = torch.randn(9, 3, 3)
    expected, _ = net(x)
    got = run_standalone("stacks_model", net.state_dict(), x, "out, _ = m(inp)")
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)


def test_chunked_run_with_returned_state_equals_whole_run() -> None:
    torch.manual_seed(1)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    x = torch.randn(10, 2, 3, dtype=torch.float64)
    whole, state = net(x)
    first, mid = net(x[:4])
    second, end = net(x[4:], mid)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    # the state is the stacks themselves (and the controllers'), resumable as is
    stacks = [s for s in end if isinstance(s, NNPDAState)]
    assert len(stacks) == 3
    for a, b in zip(stacks, [s for s in state if isinstance(s, NNPDAState)]):
        torch.testing.assert_close(a.strengths, b.strengths)
        torch.testing.assert_close(a.values, b.values)
    # 10 steps: the stacks of depth 12 and 64 hold them all; the one of depth 4 lost its bottom
    assert torch.all(stacks[0].overflow == 0) and torch.all(stacks[1].overflow == 0)
    assert torch.all(stacks[2].overflow > 0.1)


def test_padded_batch_matches_each_sequence_alone() -> None:
    torch.manual_seed(2)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5])
    x[3:, 1] = float("nan")  # padding never reaches the stack
    x[5:, 2] = float("nan")
    assert_padding_is_invisible(net, x, lengths)
