"""``block: reservoir`` (echo-state network, Jaeger 2001): spec forms, errors,
fixed weights at the requested spectral radius, state, padding, generated module."""
from __future__ import annotations


import pytest
import torch

import rnnspec
from rnnspec.blocks.reservoir import Reservoir, scaled_reservoir
from rnnspec.spec.dump import dump_rnn, dump_yaml

RNN = """
network esn {
  input vector(2)
  block reservoir(hidden=40, spectral_radius=0.8, leak=0.5, input_scale=0.3, density=0.2, bias_scale=0.1)
  output linear(1) every step
}
"""

YAML = """\
name: esn
model:
  input: {vector: 2}
  layers:
    - {block: reservoir, hidden: 40, spectral_radius: 0.8, leak: 0.5, input_scale: 0.3, density: 0.2, bias_scale: 0.1}
  output: {linear: 1, every_step: true}
"""


def test_both_formats_give_the_same_spec_and_round_trip() -> None:
    spec = rnnspec.loads(RNN, "rnn")
    assert rnnspec.loads(YAML, "yaml") == spec
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    layer = spec.model.layers[0]
    assert (layer.spectral_radius, layer.leak, layer.input_scale, layer.density, layer.bias_scale) == (0.8, 0.5, 0.3, 0.2, 0.1)


@pytest.mark.parametrize("fields, message, line, col", [
    ("hidden=10, periods=[1, 2]", "'periods' do\\(es\\) not apply to a reservoir block", 3, 9),
    ("hidden=10, density=0", "'model.layers\\[0\\].density': input should be greater than 0", 3, 38),
    ("hidden=10, density=1.5", "density': input should be less than or equal to 1", 3, 38),
    ("hidden=10, spectral_radius=-1", "spectral_radius': input should be greater than 0", 3, 46),
    ("hidden=10, leak=0", "leak': input should be greater than 0", 3, 35),
    ("hidden=10, input_scale=-0.5", "input_scale': input should be greater than or equal to 0", 3, 42),
    ("hidden=10, controller=gru", "'controller' do\\(es\\) not apply to a reservoir block", 3, 9),
    ("hidden=10, spectral_radious=0.5", "unknown key 'spectral_radious' .*did you mean 'spectral_radius'", 3, 30),
])
def test_bad_fields_are_located(fields: str, message: str, line: int, col: int) -> None:
    text = f"network m {{\n  input vector(1)\n  block reservoir({fields})\n}}\n"
    with pytest.raises(rnnspec.SpecError, match=message) as e:
        rnnspec.loads(text, "rnn")
    assert (e.value.pos.line, e.value.pos.col) == (line, col)


def test_bad_field_in_yaml_is_located() -> None:
    text = "name: m\nmodel:\n  input: {vector: 1}\n  layers:\n    - block: reservoir\n      hidden: 10\n      leak: 2.0\n"
    with pytest.raises(rnnspec.SpecError, match="leak': input should be less than or equal to 1") as e:
        rnnspec.loads(text, "yaml")
    assert (e.value.pos.line, e.value.pos.col) == (7, 13)


def test_weights_are_fixed_buffers_at_the_requested_spectral_radius() -> None:
    torch.manual_seed(0)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn"))
    res = net.rnn.groups[0].block
    assert isinstance(res, Reservoir)
    assert [n for n, _ in net.named_parameters()] == ["head.weight", "head.bias"]  # only the read-out learns
    radius = torch.linalg.eigvals(res.weight.double()).abs().max()
    assert float(radius) == pytest.approx(0.8, rel=1e-5)
    assert 0.1 < float((res.weight != 0).float().mean()) < 0.3  # density 0.2
    assert float(res.weight_in.abs().max()) <= 0.3 and float(res.bias.abs().max()) <= 0.1
    # a checkpoint restores them exactly; the same seed draws the same ones
    torch.manual_seed(1)
    other = rnnspec.compile(rnnspec.loads(RNN, "rnn"))
    assert not torch.equal(other.rnn.groups[0].block.weight, res.weight)
    other.load_state_dict(net.state_dict())
    x = torch.randn(9, 2, 2)
    torch.testing.assert_close(other(x)[0], net(x)[0], rtol=0, atol=0)
    torch.manual_seed(0)
    again = rnnspec.compile(rnnspec.loads(RNN, "rnn"))
    assert torch.equal(again.rnn.groups[0].block.weight, res.weight)


def test_scaled_reservoir_radius_for_several_sizes() -> None:
    torch.manual_seed(3)
    for n, rho in ((5, 0.5), (50, 1.25), (200, 0.95)):
        w = scaled_reservoir(n, rho, 0.3)
        assert float(torch.linalg.eigvals(w.double()).abs().max()) == pytest.approx(rho, rel=1e-5)


def test_step_matches_the_equations_and_the_sequence_run() -> None:
    """x(t) = (1 - a) x(t-1) + a tanh(W_in u(t) + W x(t-1) + b), by hand."""
    torch.manual_seed(2)
    res = Reservoir(3, 16, spectral_radius=0.9, leak=0.3, input_scale=0.7, density=0.5, bias_scale=0.2).double()
    u = torch.randn(7, 2, 3, dtype=torch.float64)
    x = torch.zeros(2, 16, dtype=torch.float64)
    by_hand = []
    for t in range(7):
        x = 0.7 * x + 0.3 * torch.tanh(u[t] @ res.weight_in.T + x @ res.weight.T + res.bias)
        by_hand.append(x)
    y, final = res.sequence(u, res.initial_state(2, u.device, u.dtype), None)
    torch.testing.assert_close(y, torch.stack(by_hand))
    torch.testing.assert_close(final, by_hand[-1])
    s = res.initial_state(2, u.device, u.dtype)
    for t in range(7):
        out, s = res.step(u[t], s)
    torch.testing.assert_close(s, final)


def test_chunked_run_equals_whole_run_and_padding_is_ignored() -> None:
    torch.manual_seed(4)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    x = torch.randn(10, 3, 2, dtype=torch.float64)
    whole, final = net(x)
    first, state = net(x[:4])
    second, state = net(x[4:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    torch.testing.assert_close(state, final)
    lengths = torch.tensor([10, 3, 6])
    x[3:, 1] = float("nan")
    x[6:, 2] = float("nan")
    y, states = net(x, lengths=lengths)
    for b in range(3):
        n = int(lengths[b])
        alone, s = net(x[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b : b + 1], alone)
        torch.testing.assert_close(states[b : b + 1], s)  # the state stops at each sequence's end
        assert torch.all(y[n:, b] == 0)


# The generated module (rnnspec compile -o) with a reservoir and a clockwork layer:
# tests/blocks/test_clockwork_spec.py::test_generated_module_equals_in_process.
