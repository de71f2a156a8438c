"""`rnnspec compile -o`: the standalone module matches the in-process one and
imports where rnnspec is not installed."""
from __future__ import annotations

import json
from pathlib import Path

import torch

import rnnspec
from rnnspec.codegen.standalone import generate

SPEC = """
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}
network mixed {
    input  tokens(11, embed=5)
    layer  lstm(hidden=8, heads=2) bidirectional depth 2
    layer  mgu(hidden=6)
    layer  indrnn(hidden=6)
    layer  mtrnn(hidden=4, slow=3)
    output linear(3) every step
}
"""


def test_generated_module_matches_in_process(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    spec = rnnspec.loads(SPEC, fmt="rnn")
    path = tmp_path / "mixed_model.py"
    path.write_text(generate(spec, "mixed.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    x = torch.randint(0, 11, (7, 3))
    lengths = torch.tensor([7, 2, 5])
    expected, _ = net(x, lengths=lengths)
    got = run_standalone("mixed_model", net.state_dict(), {"x": x, "lengths": lengths},
                         "out, _ = m(inp['x'], lengths=inp['lengths'])")
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)


def test_generated_source_carries_the_equations() -> None:
    src = generate(rnnspec.loads(SPEC, fmt="rnn"), "mixed.rnn")
    assert "n = tanh(W_n @ x + U_n @ (f * h) + b_n)" in src
    assert "c' = sigmoid(f) * c + sigmoid(i) * tanh(g)" in src
    assert "import rnnspec" not in src and "from rnnspec" not in src


BLOCKS = """
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
  layer gru(hidden=4)
  output linear(2) every step
}
"""


def test_generated_module_carries_memory_blocks(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    spec = rnnspec.loads(BLOCKS, fmt="rnn")
    (tmp_path / "mem_model.py").write_text(generate(spec, "mem.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    x = torch.randn(5, 2, 5)
    expected, _ = net(x)
    got = run_standalone("mem_model", net.state_dict(), x, "out, _ = m(inp)")
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)
