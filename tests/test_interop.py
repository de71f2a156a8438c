"""torch.nn.LSTM / GRU / RNN and the standard library's lstm, gru and elman
cells compute the same function: outputs, final states and the gradients of
every parameter, of the input and of the initial state, in float32 and
float64, over random shapes.  Compiled networks are ordinary modules:
state_dict, torch.save, deepcopy, torch.compile and torch.export work."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import rnnspec
from rnnspec.interop import _NAMES, _parse_name

KINDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: one intra-op thread is fastest, and immune to a busy machine
    (with 2 threads on an oversubscribed CPU each tiny matmul can wait ~20 ms)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_torch(kind: str, **kw) -> nn.RNNBase:
    if kind == "lstm":
        return nn.LSTM(**kw)
    if kind == "gru":
        return nn.GRU(**kw)
    return nn.RNN(nonlinearity=kind.split("_")[1], **kw)


def ours(net, name: str) -> torch.Tensor:
    """Our parameter that holds torch's ``name`` (weight_ih_l1_reverse ...)."""
    stem, layer, reverse = _parse_name(name)
    return getattr(net.rnn.groups[0].layers[layer][1 if reverse else 0], _NAMES[stem])


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


configs = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(KINDS),
        "input_size": st.integers(1, 6),
        "hidden_size": st.integers(1, 7),
        "num_layers": st.integers(1, 3),
        "bidirectional": st.booleans(),
        "batch_first": st.booleans(),
        "bias": st.booleans(),
        "T": st.integers(1, 6),
        "B": st.integers(1, 4),
        "with_state": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


def check_equivalence(cfg: dict, dtype: torch.dtype) -> None:
    torch.manual_seed(cfg["seed"])
    kind, T, B = cfg["kind"], cfg["T"], cfg["B"]
    m = make_torch(
        kind,
        input_size=cfg["input_size"],
        hidden_size=cfg["hidden_size"],
        num_layers=cfg["num_layers"],
        bidirectional=cfg["bidirectional"],
        batch_first=cfg["batch_first"],
        bias=cfg["bias"],
    ).to(dtype)
    with torch.no_grad():  # biases away from torch's init, so a lost bias would show
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    net = rnnspec.from_torch(m)
    dirs = 2 if cfg["bidirectional"] else 1
    n = cfg["num_layers"] * dirs
    H = cfg["hidden_size"]

    # every torch parameter has exactly one twin, and we have no others
    torch_names = [name for name, _ in m.named_parameters()]
    assert len(list(net.parameters())) == len(torch_names)
    assert {id(ours(net, name)) for name in torch_names} == {id(p) for p in net.parameters()}
    for name, p in m.named_parameters():
        q = ours(net, name)
        assert q.dtype == dtype and q.shape == p.shape
        torch.testing.assert_close(q, p, rtol=0, atol=0)

    shape = (B, T, cfg["input_size"]) if cfg["batch_first"] else (T, B, cfg["input_size"])
    x1 = torch.randn(shape, dtype=dtype, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    n_state = 2 if kind == "lstm" else 1
    if cfg["with_state"]:
        s1 = [torch.randn(n, B, H, dtype=dtype, requires_grad=True) for _ in range(n_state)]
        s2 = [s.detach().clone().requires_grad_(True) for s in s1]
        arg1 = tuple(s1) if kind == "lstm" else s1[0]
        arg2 = tuple(s2) if kind == "lstm" else s2[0]
    else:
        s1 = s2 = []
        arg1 = arg2 = None

    y1, f1 = m(x1, arg1)
    y2, f2 = net(x2, arg2)
    f1 = list(f1) if kind == "lstm" else [f1]
    f2 = list(f2) if kind == "lstm" else [f2]
    assert y2.shape == y1.shape and y2.dtype == dtype
    torch.testing.assert_close(y2, y1, **tol(dtype))
    assert len(f2) == len(f1)
    for a, b in zip(f2, f1):
        assert a.shape == b.shape == (n, B, H)
        torch.testing.assert_close(a, b, **tol(dtype))

    # a loss that weighs every output and final-state entry differently
    wy = torch.randn_like(y1)
    wf = [torch.randn_like(f) for f in f1]
    loss1 = (y1 * wy).sum() + sum((f * w).sum() for f, w in zip(f1, wf))
    loss2 = (y2 * wy).sum() + sum((f * w).sum() for f, w in zip(f2, wf))
    loss1.backward()
    loss2.backward()
    for name, p in m.named_parameters():
        q = ours(net, name)
        assert q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, **tol(dtype), msg=lambda s: f"grad of {name}: {s}")
    torch.testing.assert_close(x2.grad, x1.grad, **tol(dtype))
    for a, b in zip(s2, s1):
        torch.testing.assert_close(a.grad, b.grad, **tol(dtype))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs)
def test_equivalence_float32(cfg):
    check_equivalence(cfg, torch.float32)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs)
def test_equivalence_float64(cfg):
    check_equivalence(cfg, torch.float64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_equivalence_each_kind_deep(kind, bidirectional):
    # the randomized tests above may not draw every kind; this grid does
    cfg = dict(kind=kind, input_size=3, hidden_size=5, num_layers=3, bidirectional=bidirectional,
               batch_first=False, bias=True, T=4, B=3, with_state=True, seed=7)
    check_equivalence(cfg, torch.float64)


@settings(max_examples=15, deadline=None)
@given(cfg=configs)
def test_to_torch_of_from_torch_reproduces_the_module(cfg):
    torch.manual_seed(cfg["seed"])
    m = make_torch(cfg["kind"], input_size=cfg["input_size"], hidden_size=cfg["hidden_size"],
                   num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
                   batch_first=cfg["batch_first"], bias=cfg["bias"])
    back = rnnspec.to_torch(rnnspec.from_torch(m))
    assert type(back) is type(m)
    for attr in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first", "bias"):
        assert getattr(back, attr) == getattr(m, attr), attr
    if isinstance(m, nn.RNN):
        assert back.nonlinearity == m.nonlinearity
    sd_m, sd_b = m.state_dict(), back.state_dict()
    assert sd_m.keys() == sd_b.keys()
    for k in sd_m:
        torch.testing.assert_close(sd_b[k], sd_m[k], rtol=0, atol=0)
    shape = (cfg["B"], cfg["T"], cfg["input_size"]) if cfg["batch_first"] else (cfg["T"], cfg["B"], cfg["input_size"])
    x = torch.randn(shape)
    ya, sa = m(x)
    yb, sb = back(x)
    torch.testing.assert_close(yb, ya, rtol=0, atol=0)


def test_from_torch_copies_weights_not_shares():
    m = nn.GRU(3, 4)
    net = rnnspec.from_torch(m)
    x = torch.randn(5, 2, 3)
    before = net(x)[0].detach()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    torch.testing.assert_close(net(x)[0], before)


def test_from_torch_keeps_dtype_and_mode():
    m = nn.LSTM(2, 3).double().eval()
    net = rnnspec.from_torch(m)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert not net.training


def test_to_torch_of_a_dsl_spec():
    spec = rnnspec.loads("network t {\n input vector(3)\n layer lstm(hidden=4) bidirectional depth 2\n}\n", "rnn")
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    m = rnnspec.to_torch(net)
    assert isinstance(m, nn.LSTM) and m.num_layers == 2 and m.bidirectional
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(m(x)[0], net(x)[0], rtol=1e-5, atol=1e-5)


def test_from_torch_refuses_proj_size_and_other_modules():
    with pytest.raises(rnnspec.SpecError):
        rnnspec.from_torch(nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(rnnspec.SpecError):
        rnnspec.from_torch(nn.Linear(3, 4))  # type: ignore[arg-type]


# ---------------------------------------------------------------- ordinary modules

LSTM_NET = """network t {
    input vector(3)
    layer lstm(hidden=8) bidirectional depth 2
    layer gru(hidden=6, heads=2)
    output linear(2) every step
}
"""


def compiled(text: str = LSTM_NET, seed: int = 0):
    torch.manual_seed(seed)
    return rnnspec.compile(rnnspec.loads(text, "rnn"))


def test_state_dict_round_trip():
    a, b = compiled(seed=0), compiled(seed=1)
    x = torch.randn(7, 3, 3)
    assert not torch.allclose(a(x)[0], b(x)[0])
    sd = a.state_dict()
    assert not any("mask" in k for k in sd), "head masks are derived, not state"
    b.load_state_dict(sd)
    torch.testing.assert_close(b(x)[0], a(x)[0], rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    c = compiled(seed=2)
    c.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(c(x)[0], a(x)[0], rtol=0, atol=0)


def test_state_dict_matches_torch_names_after_from_torch():
    m = nn.LSTM(3, 4, num_layers=2)
    net = rnnspec.from_torch(m)
    sd = net.state_dict()
    assert len(sd) == len(m.state_dict())


def test_torch_save_and_load_whole_network():
    net = compiled()
    x = torch.randn(5, 2, 3)
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    net2 = torch.load(buf, weights_only=False)
    torch.testing.assert_close(net2(x)[0], net(x)[0], rtol=0, atol=0)


def test_deepcopy_is_independent():
    net = rnnspec.from_torch(nn.GRU(3, 5))
    x = torch.randn(6, 2, 3)
    twin = copy.deepcopy(net)
    torch.testing.assert_close(twin(x)[0], net(x)[0])
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    # GRU with all weights zero: z = 1/2, n = 0, h' = h/2 from h0 = 0: output exactly 0
    assert twin(x)[0].abs().max().item() == 0.0
    y, _ = twin(x)
    y.sum().backward()
    assert all(p.grad is None for p in net.parameters())
    assert all(p.grad is not None for p in twin.parameters())


def _same_values_and_grads(a_fn, net, x):
    y_ref, _ = net(x)
    y_ref.sum().backward()
    ref = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    y, _ = a_fn(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    y.sum().backward()
    for k, p in net.named_parameters():
        torch.testing.assert_close(p.grad, ref[k], rtol=1e-5, atol=1e-6, msg=lambda s: f"{k}: {s}")


def test_torch_compile_eager_backend():
    torch._dynamo.reset()
    net = compiled("network t {\n input vector(3)\n layer lstm(hidden=4) bidirectional\n output linear(2) every step\n}\n")
    x = torch.randn(3, 2, 3)
    _same_values_and_grads(torch.compile(net, backend="eager"), net, x)


@pytest.mark.slow
def test_torch_compile_inductor_tiny():
    torch._dynamo.reset()
    net = compiled("network t {\n input vector(3)\n layer lstm(hidden=4)\n output linear(2) every step\n}\n")
    x = torch.randn(4, 2, 3)
    _same_values_and_grads(torch.compile(net), net, x)


def test_torch_export_lstm():
    net = compiled("network t {\n input vector(3)\n layer lstm(hidden=8) depth 2\n output linear(2) every step\n}\n").eval()
    x = torch.randn(5, 2, 3)
    ep = torch.export.export(net, (x,))
    y, (h, c) = ep.module()(x)
    y_ref, (h_ref, c_ref) = net(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h, h_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(c, c_ref, rtol=1e-6, atol=1e-6)
    x2 = torch.randn(5, 2, 3)  # another input of the exported shape
    torch.testing.assert_close(ep.module()(x2)[0], net(x2)[0], rtol=1e-6, atol=1e-6)


def test_torch_export_from_torch_lstm():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True).eval()
    net = rnnspec.from_torch(m)
    x = torch.randn(6, 2, 3)
    ep = torch.export.export(net, (x,))
    torch.testing.assert_close(ep.module()(x)[0], m(x)[0], rtol=1e-5, atol=1e-5)
