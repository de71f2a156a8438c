"""A learned initial state (layer option ``initial_state: learned``).

One trainable tensor per state variable, layer and direction (parameter
``rnn.groups.<g>.initial.<state>`` [depth*dirs, size]), broadcast over the
batch where no state is given; a given state overrides it.  Checked here:
the spec in both formats and its round trip, the parameters and their keys,
what the network computes from them (against an explicit state), their
gradient (finite differences, float64), chunked runs (the learned state
starts a sequence only), the generated standalone module, to_torch's refusal,
and located errors.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.errors import SpecError
from rnnspec.spec.dump import dump_rnn, dump_yaml

YAML = """
name: learned_start
model:
  input: {vector: 3}
  layers:
    - cell: lstm
      hidden: 4
      depth: 2
      bidirectional: true
      initial_state: learned
      initial_init: uniform(0, 1)
    - {cell: elman, hidden: 5}
  output: {linear: 2, every_step: true}
"""

RNN = """
network learned_start {
    input vector(3)
    layer lstm(hidden=4, initial_state=learned, initial_init="uniform(0, 1)") bidirectional depth 2
    layer elman(hidden=5)
    output linear(2) every step
}
"""


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _net(dtype: torch.dtype = torch.float32) -> rnnspec.Network:
    return rnnspec.compile(rnnspec.loads(YAML, "yaml"), backend="torch").to(dtype)


def test_both_formats_give_one_spec_that_round_trips() -> None:
    a, b = rnnspec.loads(YAML, "yaml"), rnnspec.loads(RNN, "rnn")
    assert a == b
    layer = a.model.layers[0]
    assert (layer.initial_state, layer.initial_init) == ("learned", "uniform(0, 1)")
    assert a.model.layers[1].initial_state == "zeros"  # the default, torch.nn's
    assert rnnspec.loads(dump_yaml(a), "yaml") == a
    assert rnnspec.loads(dump_rnn(a), "rnn") == a
    assert "initial_state" not in dump_yaml(a).split("elman")[1]  # defaults stay unsaid


def test_one_parameter_per_state_with_a_row_per_layer_and_direction() -> None:
    net = _net()
    learned = {k: v for k, v in net.state_dict().items() if ".initial." in k}
    # depth 2 x 2 directions = 4 rows; the elman group (zeros) has none
    assert {k: tuple(v.shape) for k, v in learned.items()} == {
        "rnn.groups.0.initial.h": (4, 4),
        "rnn.groups.0.initial.c": (4, 4),
    }
    names = dict(net.named_parameters())
    assert all(names[k].requires_grad for k in learned)
    for v in learned.values():  # initial_init: uniform(0, 1)
        assert 0.0 <= float(v.min()) and float(v.max()) <= 1.0 and float(v.std()) > 0.1


def test_the_learned_state_starts_each_sequence_and_a_given_state_overrides_it() -> None:
    net = _net()
    x, lengths = torch.randn(6, 3, 3), torch.tensor([6, 2, 4])
    g = net.rnn.groups[0]
    explicit = tuple(p.detach()[:, None, :].expand(-1, 3, -1).clone() for p in g.initial.values())
    y, _ = net(x, lengths=lengths)
    y_given, _ = net(x, state=[explicit, torch.zeros(1, 3, 5)], lengths=lengths)
    torch.testing.assert_close(y, y_given, rtol=0, atol=0)
    # a given zero state is not the learned one: with it the net is the zeros-start net
    zero = (torch.zeros(4, 3, 4), torch.zeros(4, 3, 4))
    y_zero, _ = net(x, state=[zero, torch.zeros(1, 3, 5)], lengths=lengths)
    plain = rnnspec.compile(rnnspec.loads(YAML.replace("initial_state: learned", "initial_state: zeros")
                                          .replace("      initial_init: uniform(0, 1)\n", ""), "yaml"),
                            backend="torch")
    missing = plain.load_state_dict(net.state_dict(), strict=False)
    assert sorted(missing.unexpected_keys) == ["rnn.groups.0.initial.c", "rnn.groups.0.initial.h"]
    y_plain, _ = plain(x, lengths=lengths)
    torch.testing.assert_close(y_zero, y_plain, rtol=0, atol=0)
    assert (y - y_zero).abs().max() > 1e-3


def test_the_learned_state_gradient_matches_finite_differences() -> None:
    net = _net(torch.float64)
    x, lengths = torch.randn(5, 2, 3, dtype=torch.float64), torch.tensor([5, 3])
    g = net.rnn.groups[0]
    h0, c0 = g.initial["h"], g.initial["c"]

    def f(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h0.copy_(h)
            c0.copy_(c)
        return net(x, lengths=lengths)[0]

    y = net(x, lengths=lengths)[0]
    w = torch.randn_like(y)
    (y * w).sum().backward()
    analytic = (h0.grad.clone(), c0.grad.clone())
    assert analytic[0].abs().min() > 0  # every layer and direction's start gets a gradient
    base = (h0.detach().clone(), c0.detach().clone())
    eps = 1e-6
    for k in range(2):
        numeric = torch.zeros_like(base[k])
        for idx in range(base[k].numel()):
            plus = [b.clone() for b in base]
            minus = [b.clone() for b in base]
            plus[k].view(-1)[idx] += eps
            minus[k].view(-1)[idx] -= eps
            numeric.view(-1)[idx] = ((f(*plus) - f(*minus)) * w).sum() / (2 * eps)
        torch.testing.assert_close(analytic[k], numeric, rtol=1e-6, atol=1e-8)


def test_chunks_with_the_state_carried_equal_the_whole_run() -> None:
    # truncated BPTT / stateful training: the learned state starts a sequence
    # only; later chunks start from the carried state (one direction: a
    # backward pass cannot be cut into chunks)
    net = rnnspec.compile(rnnspec.loads(YAML.replace("      bidirectional: true\n", ""), "yaml"), backend="torch")
    assert net.rnn.groups[0].initial["h"].shape == (2, 4)
    x, lengths = torch.randn(9, 3, 3), torch.tensor([9, 3, 6])
    whole, final = net(x, lengths=lengths)
    y1, s = net(x[:4], lengths=lengths.clamp(max=4))
    y2, s = net(x[4:], state=s, lengths=(lengths - 4).clamp(min=0))
    torch.testing.assert_close(torch.cat([y1, y2]), whole, rtol=1e-6, atol=1e-6)
    for a, b in zip(torch.utils._pytree.tree_leaves(s), torch.utils._pytree.tree_leaves(final)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_generated_module_carries_the_learned_state(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    from rnnspec.codegen.standalone import generate

    spec = rnnspec.loads(RNN, "rnn")
    (tmp_path / "learned_model.py").write_text(generate(spec, "learned.rnn"))
    net = rnnspec.compile(spec)
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 4])
    expected, _ = net(x, lengths=lengths)
    got = run_standalone("learned_model", net.state_dict(), {"x": x, "lengths": lengths},
                         "out, _ = m(inp['x'], lengths=inp['lengths'])\n"
                         "assert sorted(k for k in m.state_dict() if '.initial.' in k) == "
                         "['rnn.groups.0.initial.c', 'rnn.groups.0.initial.h']")
    torch.testing.assert_close(got, expected.detach(), rtol=0, atol=0)


def test_to_torch_refuses_a_learned_initial_state() -> None:
    spec = rnnspec.loads("network n {\n    input vector(3)\n    layer lstm(hidden=4, initial_state=learned)\n}\n", "rnn")
    with pytest.raises(SpecError, match="no learned initial state"):
        rnnspec.to_torch(rnnspec.compile(spec))


# ---------------------------------------------------------------- errors


def _error(text: str, fmt: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        rnnspec.loads(text, fmt, filename=f"bad.{fmt}")
    return info.value


@pytest.mark.parametrize("fmt, text, line, word", [
    ("yaml", "model:\n  input: {vector: 3}\n  layers:\n    - {cell: elman, hidden: 4, initial_state: leaned}\n", 4, "leaned"),
    ("rnn", "network n {\n    input vector(3)\n    layer elman(hidden=4, initial_state=leaned)\n}\n", 3, "leaned"),
])
def test_a_misspelt_initial_state_is_located_with_a_did_you_mean(fmt: str, text: str, line: int, word: str) -> None:
    err = _error(text, fmt)
    col = text.splitlines()[line - 1].index(word) + 1
    assert (err.pos.file, err.pos.line, err.pos.col) == (f"bad.{fmt}", line, col)
    assert "did you mean 'learned'?" in err.message and "'zeros' or 'learned'" in err.message


@pytest.mark.parametrize("fmt, text, line, word, says", [
    ("yaml", "model:\n  input: {vector: 3}\n  layers:\n    - cell: elman\n      hidden: 4\n"
             "      initial_init: uniform(0, 1)\n", 6, "uniform", "applies to a learned initial state"),
    ("rnn", "network n {\n    input vector(3)\n    layer elman(hidden=4, initial_init=\"ones\")\n}\n",
     3, '"ones"', "applies to a learned initial state"),
    ("yaml", "model:\n  input: {vector: 3}\n  layers:\n    - cell: elman\n      hidden: 4\n"
             "      initial_state: learned\n      initial_init: unifrm(0, 1)\n", 7, "unifrm", "did you mean 'uniform'?"),
    ("rnn", "network n {\n    input vector(3)\n    layer elman(hidden=4, initial_state=learned, "
            "initial_init=\"uniform(0, 1, 2)\")\n}\n", 3, '"uniform', "takes 0 or 2 argument(s), got 3"),
])
def test_a_bad_initial_init_is_located(fmt: str, text: str, line: int, word: str, says: str) -> None:
    err = _error(text, fmt)
    col = text.splitlines()[line - 1].index(word) + 1
    assert (err.pos.file, err.pos.line, err.pos.col) == (f"bad.{fmt}", line, col), str(err)
    assert says in err.message
