"""``block: clockwork`` (Koutník et al. 2014): spec forms, errors, the clocked
update and block-triangular recurrence, state carried over chunks, padding,
generated module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.blocks.clockwork import Clockwork
from rnnspec.codegen.standalone import generate
from rnnspec.spec.dump import dump_rnn, dump_yaml

RNN = """
network cw {
  input vector(3)
  block clockwork(hidden=12, periods=[1, 2, 5])
  output linear(2) every step
}
"""

YAML = """\
name: cw
model:
  input: {vector: 3}
  layers:
    - {block: clockwork, hidden: 12, periods: [1, 2, 5]}
  output: {linear: 2, every_step: true}
"""


def test_both_formats_give_the_same_spec_and_round_trip() -> None:
    spec = rnnspec.loads(RNN, "rnn")
    assert rnnspec.loads(YAML, "yaml") == spec
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    assert spec.model.layers[0].periods == [1, 2, 5]


@pytest.mark.parametrize("fields, message, col", [
    ("hidden=12", "a clockwork block needs 'periods'", 9),
    ("hidden=10, periods=[1, 2, 4]", "hidden \\(10\\) must split into 3 equal modules", 9),
    ("hidden=12, periods=[1, 4, 2]", "periods must increase", 38),
    ("hidden=12, periods=[1, 2, 2]", "periods must increase", 38),
    ("hidden=12, periods=[1, 2, 0]", "'model.layers\\[0\\].periods\\[2\\]': input should be greater than 0", 38),
    ("hidden=12, periods=[]", "periods': list should have at least 1 item", 38),
    ("hidden=12, periods=[1, 2, 3], leak=0.5", "'leak' do\\(es\\) not apply to a clockwork block", 9),
])
def test_bad_fields_are_located(fields: str, message: str, col: int) -> None:
    text = f"network m {{\n  input vector(1)\n  block clockwork({fields})\n}}\n"
    with pytest.raises(rnnspec.SpecError, match=message) as e:
        rnnspec.loads(text, "rnn")
    assert (e.value.pos.line, e.value.pos.col) == (3, col)


def test_bad_periods_in_yaml_are_located() -> None:
    text = "name: m\nmodel:\n  input: {vector: 1}\n  layers:\n    - block: clockwork\n      hidden: 8\n      periods: [1, 3, 2, 4]\n"
    with pytest.raises(rnnspec.SpecError, match="periods must increase") as e:
        rnnspec.loads(text, "yaml")
    assert (e.value.pos.line, e.value.pos.col) == (7, 16)


def _by_hand(cw: Clockwork, x: torch.Tensor) -> torch.Tensor:
    """Koutník et al. §3 written out: module i (k units) updates at
    t mod T_i == 0 from the modules j >= i only."""
    g, k = len(cw.periods), cw.hidden // len(cw.periods)
    h = torch.zeros(x.shape[1], cw.hidden, dtype=x.dtype)
    out = []
    for t in range(x.shape[0]):
        new = h.clone()
        for i, period in enumerate(cw.periods):
            if t % period:
                continue
            rows = slice(i * k, (i + 1) * k)
            slower = slice(i * k, g * k)
            new[:, rows] = torch.tanh(x[t] @ cw.weight_ih[rows].T + h[:, slower] @ cw.weight_hh[rows, slower].T
                                      + cw.bias[rows])
        h = new
        out.append(h)
    return torch.stack(out)


def test_update_matches_the_paper_by_hand() -> None:
    torch.manual_seed(0)
    cw = Clockwork(3, 12, [1, 2, 5]).double()
    x = torch.randn(11, 2, 3, dtype=torch.float64)
    y, state = cw.sequence(x, cw.initial_state(2, x.device, x.dtype), None)
    torch.testing.assert_close(y, _by_hand(cw, x))
    assert state.t.tolist() == [11, 11]
    s = cw.initial_state(2, x.device, x.dtype)
    for t in range(11):
        step_y, s = cw.step(x[t], s)
        torch.testing.assert_close(step_y, y[t])


def test_modules_keep_their_state_between_ticks_and_slow_ignore_fast() -> None:
    torch.manual_seed(1)
    cw = Clockwork(3, 12, [1, 2, 5]).double()
    x = torch.randn(10, 1, 3, dtype=torch.float64)
    y, _ = cw.sequence(x, cw.initial_state(1, x.device, x.dtype), None)
    slow = y[:, 0, 8:]  # period 5: changes only at t = 0 and 5
    for t in range(1, 10):
        assert torch.equal(slow[t], slow[t - 1]) == (t % 5 != 0)
    # the recurrent weight is block upper-triangular: no gradient reaches a cut connection
    y.sum().backward()
    assert torch.all(cw.weight_hh.grad[4:, :4] == 0) and torch.all(cw.weight_hh.grad[8:, :8] == 0)
    assert torch.all(cw.weight_hh.grad[:4] != 0)
    # perturbing the fastest module's state leaves the slow module's future unchanged
    state = cw.initial_state(1, x.device, x.dtype)
    kicked = state._replace(h=state.h.clone().index_fill_(1, torch.arange(4), 0.9))
    with torch.no_grad():
        a, _ = cw.sequence(x, state, None)
        b, _ = cw.sequence(x, kicked, None)
    torch.testing.assert_close(a[:, :, 8:], b[:, :, 8:], rtol=0, atol=0)
    assert not torch.allclose(a[:, :, :4], b[:, :, :4])


def test_chunked_run_equals_whole_run_and_padding_is_ignored() -> None:
    torch.manual_seed(2)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    x = torch.randn(13, 3, 3, dtype=torch.float64)
    whole, final = net(x)
    parts, state = [], None
    for s, e in ((0, 3), (3, 4), (4, 9), (9, 13)):  # chunk ends off the clock's ticks
        y, state = net(x[s:e], state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts), whole)
    torch.testing.assert_close(state.h, final.h)
    assert state.t.tolist() == [13, 13, 13]
    lengths = torch.tensor([13, 4, 7])
    x[4:, 1] = float("nan")
    x[7:, 2] = float("nan")
    y, states = net(x, lengths=lengths)
    assert states.t.tolist() == [13, 4, 7]  # padding does not advance the clock
    for b in range(3):
        n = int(lengths[b])
        alone, s = net(x[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b : b + 1], alone)
        torch.testing.assert_close(states.h[b : b + 1], s.h)
        assert torch.all(y[n:, b] == 0)
    # a padded batch continued in chunks stays exact per sequence
    first, st = net(x[:5], lengths=lengths.clamp(max=5))
    second, st = net(x[5:], st, lengths=(lengths - 5).clamp(min=0))
    torch.testing.assert_close(torch.cat([first, second]), y)


def test_generated_module_equals_in_process(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    """``rnnspec compile -o`` carries both new blocks (a reservoir feeding a
    clockwork layer); the generated module, run in two chunks where rnnspec
    cannot be imported, equals the in-process network run whole."""
    spec = rnnspec.loads(RNN.replace("  block clockwork", "  block reservoir(hidden=20, leak=0.7, bias_scale=0.2)\n  block clockwork"), "rnn")
    assert [layer.block for layer in spec.model.layers] == ["reservoir", "clockwork"]
    (tmp_path / "cw_model.py").write_text(generate(spec, "cw.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    x = torch.randn(9, 2, 3)
    expected, state = net(x)
    y, t = run_standalone("cw_model", net.state_dict(), x,
                          "a, s = m(inp[:4])\nb, s = m(inp[4:], s)\nout = (torch.cat([a, b]), s[1].t)")
    # chunks of 4 and 5 steps hoist the input products as GEMMs of other
    # shapes than the whole run (and the child may use more threads): equal
    # up to float32 rounding, not bit for bit
    torch.testing.assert_close(y, expected.detach(), rtol=1e-6, atol=1e-6)
    assert t.tolist() == state[1].t.tolist() == [9, 9]
