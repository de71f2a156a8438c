"""Padded batches with ``lengths``: every sequence gets exactly what it gets
alone (outputs within its length, zeros after, final states), whatever the
cell, direction, depth or layout; the backward direction of a bidirectional
layer starts at each sequence's own end, not at the padded end."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnspec

CELLS = ["lstm", "gru", "elman"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and immune to a busy machine
    yield
    torch.set_num_threads(n)


def network(cell: str, hidden: int, *, bidirectional: bool, depth: int, batch_first: bool, inp: int = 3,
            output: str = "", seed: int = 0):
    flags = (" bidirectional" if bidirectional else "") + f" depth {depth}"
    text = (
        "network t {\n"
        f"    input vector({inp})\n"
        f"    layer {cell}(hidden={hidden}){flags}\n"
        f"{output}"
        f"    batch_first = {'true' if batch_first else 'false'}\n"
        "}\n"
    )
    torch.manual_seed(seed)
    return rnnspec.compile(rnnspec.loads(text, "rnn")).double()


def as_list(state):
    return list(state) if isinstance(state, (tuple, list)) else [state]


def pick(state, i):
    """The state of batch element i, kept as a batch of one."""
    parts = [s[:, i : i + 1] for s in as_list(state)]
    return tuple(parts) if isinstance(state, tuple) else parts[0]


TOL = dict(rtol=1e-10, atol=1e-10)

cases = st.fixed_dictionaries(
    {
        "cell": st.sampled_from(CELLS),
        "hidden": st.integers(1, 6),
        "bidirectional": st.booleans(),
        "depth": st.integers(1, 2),
        "batch_first": st.booleans(),
        "with_state": st.booleans(),
        "lengths": st.lists(st.integers(1, 7), min_size=1, max_size=5),
        "extra": st.integers(0, 2),  # padding beyond the longest sequence
        "seed": st.integers(0, 1000),
        "as_tensor": st.booleans(),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=cases)
def test_padded_batch_equals_each_sequence_alone(c):
    net = network(c["cell"], c["hidden"], bidirectional=c["bidirectional"], depth=c["depth"],
                  batch_first=c["batch_first"], seed=c["seed"])
    lengths = c["lengths"]
    B, T = len(lengths), max(lengths) + c["extra"]
    g = torch.Generator().manual_seed(c["seed"])
    x = torch.randn(T, B, 3, generator=g, dtype=torch.float64)
    for i, L in enumerate(lengths):  # garbage in the padding must not matter
        x[L:, i] = 1e3 * torch.randn(T - L, 3, generator=g, dtype=torch.float64)
    dirs = 2 if c["bidirectional"] else 1
    n_state = 2 if c["cell"] == "lstm" else 1
    state = None
    if c["with_state"]:
        parts = [torch.randn(c["depth"] * dirs, B, c["hidden"], generator=g, dtype=torch.float64) for _ in range(n_state)]
        state = tuple(parts) if n_state == 2 else parts[0]
    lens = torch.tensor(lengths) if c["as_tensor"] else lengths

    xin = x.transpose(0, 1) if c["batch_first"] else x
    y, final = net(xin, state, lengths=lens)
    if c["batch_first"]:
        y = y.transpose(0, 1)
    H_out = c["hidden"] * dirs
    assert y.shape == (T, B, H_out)
    assert len(as_list(final)) == n_state

    for i, L in enumerate(lengths):
        xi = x[:L, i : i + 1]
        xi = xi.transpose(0, 1) if c["batch_first"] else xi
        yi, fi = net(xi, None if state is None else pick(state, i))
        if c["batch_first"]:
            yi = yi.transpose(0, 1)
        torch.testing.assert_close(y[:L, i : i + 1], yi, **TOL)
        assert torch.all(y[L:, i] == 0), f"sequence {i}: padding outputs are not zero"
        for got, want in zip(as_list(final), as_list(fi)):
            torch.testing.assert_close(got[:, i : i + 1], want, **TOL)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_backward_direction_starts_at_each_end(cell, batch_first):
    net = network(cell, 4, bidirectional=True, depth=1, batch_first=batch_first, seed=3)
    T, lengths = 6, [6, 2, 4]
    x = torch.randn(T, 3, 3, dtype=torch.float64)
    x[2:, 1] = 5.0  # padding that would change the state if it were read
    x[4:, 2] = -5.0
    xin = x.transpose(0, 1) if batch_first else x
    y, _ = net(xin, lengths=torch.tensor(lengths))
    y = y.transpose(0, 1) if batch_first else y
    fwd, bwd = y[..., :4], y[..., 4:]
    # the backward half of the *last valid* step has seen exactly one input:
    # it equals a one-step run of the backward cell on that input alone
    back_cell_net = network(cell, 4, bidirectional=True, depth=1, batch_first=False, seed=3)
    for i, L in enumerate(lengths):
        one, _ = back_cell_net(x[L - 1 : L, i : i + 1])
        torch.testing.assert_close(bwd[L - 1, i], one[0, 0, 4:], **TOL)
        first, _ = back_cell_net(x[:1, i : i + 1])
        torch.testing.assert_close(fwd[0, i], first[0, 0, :4], **TOL)
        # and the backward half at step 0 has seen the whole sequence, and not
        # the padding (reading it first would give something else)
        whole, _ = back_cell_net(x[:L, i : i + 1])
        torch.testing.assert_close(bwd[0, i], whole[0, 0, 4:], **TOL)
        if L < T:
            padded_read, _ = back_cell_net(x[:, i : i + 1])
            assert not torch.allclose(bwd[0, i], padded_read[0, 0, 4:])


@pytest.mark.parametrize("cell", CELLS)
def test_last_step_readout_uses_each_length(cell):
    net = network(cell, 5, bidirectional=False, depth=1, batch_first=True, seed=1,
                  output="    output linear(2)\n")
    lengths = [3, 7, 1]
    x = torch.randn(3, 7, 3, dtype=torch.float64)
    y, _ = net(x, lengths=lengths)
    assert y.shape == (3, 2)
    for i, L in enumerate(lengths):
        yi, _ = net(x[i : i + 1, :L])
        torch.testing.assert_close(y[i : i + 1], yi, **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_every_step_readout_with_lengths(cell):
    net = network(cell, 5, bidirectional=True, depth=2, batch_first=False, seed=2,
                  output="    output linear(2) every step\n")
    lengths = [5, 2]
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    y, _ = net(x, lengths=lengths)
    for i, L in enumerate(lengths):
        yi, _ = net(x[:L, i : i + 1])
        torch.testing.assert_close(y[:L, i : i + 1], yi, **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_gets_no_gradient_and_changes_no_gradient(cell):
    net = network(cell, 4, bidirectional=True, depth=2, batch_first=False, seed=5)
    lengths = torch.tensor([5, 3])
    base = torch.randn(5, 2, 3, dtype=torch.float64)

    def grads(pad_value: float):
        net.zero_grad()
        x = base.clone()
        x[3:, 1] = pad_value
        x.requires_grad_(True)
        y, final = net(x, lengths=lengths)
        (y.square().sum() + sum(f.square().sum() for f in as_list(final))).backward()
        return x.grad.clone(), {k: p.grad.clone() for k, p in net.named_parameters()}

    gx0, gp0 = grads(0.0)
    gx1, gp1 = grads(123.0)
    assert torch.all(gx0[3:, 1] == 0) and torch.all(gx1[3:, 1] == 0)
    torch.testing.assert_close(gx1, gx0, **TOL)
    for k in gp0:
        torch.testing.assert_close(gp1[k], gp0[k], **TOL, msg=lambda s: f"{k}: {s}")


def test_full_lengths_equal_no_lengths():
    net = network("lstm", 4, bidirectional=True, depth=2, batch_first=False, seed=0)
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    y0, (h0, c0) = net(x)
    y1, (h1, c1) = net(x, lengths=[6, 6, 6])
    torch.testing.assert_close(y1, y0, **TOL)
    torch.testing.assert_close(h1, h0, **TOL)
    torch.testing.assert_close(c1, c0, **TOL)


def test_lengths_of_the_wrong_shape_are_refused():
    net = network("gru", 4, bidirectional=False, depth=1, batch_first=False)
    with pytest.raises(ValueError, match="lengths"):
        net(torch.randn(5, 3, 3, dtype=torch.float64), lengths=[5, 5])


def test_matches_torch_packed_sequence():
    """The same padded batch through torch.nn.LSTM with a PackedSequence."""
    torch.manual_seed(0)
    m = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    net = rnnspec.from_torch(m)
    lengths = torch.tensor([6, 4, 1])
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    yp, (hp, cp) = m(packed)
    y_ref, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=6)
    y, (h, c) = net(x, lengths=lengths)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(h, hp, **TOL)
    torch.testing.assert_close(c, cp, **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_nan_padding_does_not_reach_outputs(cell):
    net = network(cell, 4, bidirectional=True, depth=2, batch_first=False, seed=6)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    x[3:, 1] = float("nan")
    y, final = net(x, lengths=[5, 3])
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(f).all() for f in as_list(final))


@pytest.mark.parametrize("cell", CELLS)
def test_nan_padding_does_not_poison_gradients(cell):
    net = network(cell, 4, bidirectional=False, depth=1, batch_first=False, seed=6)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    x[3:, 1] = float("nan")
    y, final = net(x, lengths=[5, 3])
    (y.sum() + sum(f.sum() for f in as_list(final))).backward()
    for k, p in net.named_parameters():
        assert torch.isfinite(p.grad).all(), k
