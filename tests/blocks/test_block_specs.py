"""Memory blocks as spec layers: both formats, errors, compiled behaviour."""
from __future__ import annotations

import pytest
import torch

import rnnspec
from rnnspec.spec.dump import dump_rnn, dump_yaml

from _padding import assert_padding_is_invisible  # noqa: E402

NET = """
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}
network mem {
  input vector(5)
  block ntm(hidden=12, slots=8, width=4, out=6, controller=mgu)
  block dnc(hidden=10, slots=6, width=3, read_heads=2)
  block hopfield(hidden=4, stored=3)
  output linear(2) every step
}
"""


def test_blocks_round_trip_both_formats() -> None:
    spec = rnnspec.loads(NET, "rnn")
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    memory = rnnspec.loads("name hop\nmemory hopfield(units=64, rule=pseudo_inverse, update=sync)\n", "rnn")
    assert rnnspec.loads(dump_yaml(memory), "yaml") == memory


def test_unknown_controller_is_located_with_a_suggestion() -> None:
    text = "network m {\n  input vector(3)\n  block ntm(hidden=4, controller=lstn)\n}\n"
    with pytest.raises(rnnspec.SpecError, match="did you mean 'lstm'") as e:
        rnnspec.loads(text, "rnn")
    assert e.value.pos.line == 3


def test_a_field_that_does_not_apply_is_an_error() -> None:
    text = "name: m\nmodel:\n  input: {vector: 3}\n  layers:\n    - {block: dnc, hidden: 4, write_heads: 2}\n"
    with pytest.raises(rnnspec.SpecError, match="'write_heads' do\\(es\\) not apply to a dnc block") as e:
        rnnspec.loads(text, "yaml")
    assert e.value.pos.line == 5


def test_padded_batch_matches_each_sequence_alone() -> None:
    torch.manual_seed(0)
    net = rnnspec.compile(rnnspec.loads(NET, "rnn")).double()
    x = torch.randn(6, 3, 5, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    x[2:, 1] = float("nan")  # padding never reaches the memory
    x[4:, 2] = float("nan")
    assert_padding_is_invisible(net, x, lengths)


def test_chunked_run_with_state_equals_whole_run() -> None:
    torch.manual_seed(1)
    net = rnnspec.compile(rnnspec.loads(NET, "rnn")).double()
    x = torch.randn(8, 2, 5, dtype=torch.float64)
    whole, _ = net(x)
    first, state = net(x[:3])
    second, _ = net(x[3:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_memory_spec_compiles_to_an_associative_memory() -> None:
    from rnnspec.blocks import BAM, HopfieldNetwork

    hop = rnnspec.compile(rnnspec.loads("name h\nmemory hopfield(units=32)\n", "rnn"))
    bam = rnnspec.compile(rnnspec.loads("name: b\nmemory: {bam: {n: 16, p: 8}}\n", "yaml"))
    assert isinstance(hop, HopfieldNetwork) and isinstance(bam, BAM)
    patterns = torch.sign(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    hop.store(patterns)
    assert torch.equal(hop.recall(patterns[0]).state, patterns[0])
