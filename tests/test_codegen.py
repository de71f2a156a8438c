"""`rnnspec compile -o`: the standalone module matches the in-process one and
imports where rnnspec is not installed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_generated_module_matches_in_process(tmp_path: Path) -> None:
    spec = rnnspec.loads(SPEC, fmt="rnn")
    path = tmp_path / "mixed_model.py"
    path.write_text(generate(spec, "mixed.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    x = torch.randint(0, 11, (7, 3))
    lengths = torch.tensor([7, 2, 5])
    torch.save({"x": x, "lengths": lengths}, tmp_path / "inputs.pt")
    expected, _ = net(x, lengths=lengths)

    # A fresh interpreter that cannot import rnnspec at all.
    script = f"""
import sys
sys.modules['rnnspec'] = None  # importing rnnspec now fails
sys.path.insert(0, {str(tmp_path)!r})
import torch, mixed_model
m = mixed_model.Model()
m.load_state_dict(torch.load({str(tmp_path / 'weights.pt')!r}))
inp = torch.load({str(tmp_path / 'inputs.pt')!r})
y, _ = m(inp['x'], lengths=inp['lengths'])
torch.save(y, {str(tmp_path / 'out.pt')!r})
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = torch.load(tmp_path / "out.pt")
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


def test_generated_module_carries_memory_blocks(tmp_path: Path) -> None:
    spec = rnnspec.loads(BLOCKS, fmt="rnn")
    (tmp_path / "mem_model.py").write_text(generate(spec, "mem.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    x = torch.randn(5, 2, 5)
    torch.save(x, tmp_path / "x.pt")
    expected, _ = net(x)
    script = f"""
import sys
sys.modules['rnnspec'] = None
sys.path.insert(0, {str(tmp_path)!r})
import torch, mem_model
m = mem_model.Model()
m.load_state_dict(torch.load({str(tmp_path / 'weights.pt')!r}))
y, _ = m(torch.load({str(tmp_path / 'x.pt')!r}))
torch.save(y, {str(tmp_path / 'out.pt')!r})
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected.detach(), rtol=0, atol=0)
