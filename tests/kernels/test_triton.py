"""Generated Triton recurrences (forward and BPTT kernels) against the torch
backend, under TRITON_INTERPRET=1 on the CPU.

Tolerance: float32, atol 1e-5 and rtol 1e-4 on outputs, final states and the
gradients of the input, the initial states and every parameter (measured
worst: 1.3e-7 on values, 1.6e-6 on gradients).  Sizes are tiny (the
interpreter is slow) and chosen not to divide the 16-wide tiles.
"""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import warnings  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from _kernel_cases import (  # noqa: E402
    CUSTOM,
    UNSUPPORTED,
    compare,
    custom_ir,
    library_ir,
    make_cell,
)
from rnnspec.spec.loader import standard_library  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="needs TRITON_INTERPRET=1 (set before triton was imported) or a GPU",
)

triton = pytest.importorskip("triton")


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    """Generated sources go to a fresh cache directory."""
    old = os.environ.get("RNNSPEC_CACHE")
    path = tmp_path_factory.mktemp("kernels")
    os.environ["RNNSPEC_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RNNSPEC_CACHE", None)
    else:
        os.environ["RNNSPEC_CACHE"] = old


@pytest.fixture(params=["gemm", "chip"])
def wgrad(request, monkeypatch):
    monkeypatch.setenv("RNNSPEC_WGRAD", request.param)
    return request.param


SUPPORTED = [n for n in sorted(standard_library()) if n not in UNSUPPORTED]


@pytest.mark.parametrize("name", SUPPORTED)
def test_library_cell(name):
    cell = make_cell(library_ir(name))
    compare(cell, T=5, B=3, lengths=[5, 2, 4])


@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_custom_cell(name, wgrad):
    cell = make_cell(custom_ir(name))
    compare(cell, T=4, B=3, lengths=[4, 1, 3])


@pytest.mark.parametrize("name", ["lstm", "gru", "jordan", "mtrnn", "indrnn"])
def test_parameter_gradients_on_chip(name, monkeypatch):
    monkeypatch.setenv("RNNSPEC_WGRAD", "chip")
    cell = make_cell(library_ir(name))
    compare(cell, T=4, B=3, lengths=[4, 2, 3])


@pytest.mark.parametrize(
    "T, B, hidden, lengths",
    [
        (1, 1, 12, None),  # one step, one sequence
        (6, 19, 20, [6, 0, 3, 1, 6, 2, 5, 4, 6, 1, 2, 3, 4, 5, 6, 6, 5, 4, 3]),  # two programs, a 32-wide tile, an empty sequence
        (3, 2, 17, None),  # no lengths
    ],
    ids=["T1-B1", "T6-B19-H20-mixed", "T3-B2-H17"],
)
def test_shapes(T, B, hidden, lengths, wgrad):
    cell = make_cell(library_ir("lstm", input_size=7, hidden=hidden))
    compare(cell, T=T, B=B, lengths=lengths)


EDGE_CELLS = {
    # no hoisted product at all: the per-step stream is empty
    "noinput": "cell noinput(x, h[hidden]) {\n    h' = tanh(U @ h + b)\n}",
    # a parameter-only temporary (broadcast over the batch) and a product scaled by zero
    "constc": "cell constc(x, h[hidden]) {\n    param b[hidden]\n    a = b * 2\n    h' = a + 0 * (W @ x) + U @ h\n}",
}


@pytest.mark.parametrize("name", sorted(EDGE_CELLS))
def test_edge_cells(name):
    import rnnspec
    from rnnspec.spec.loader import cell_ir

    spec = rnnspec.loads(EDGE_CELLS[name], fmt="rnn")
    ir = cell_ir(name, spec.cells[name], input_size=6, hidden=9)
    compare(make_cell(ir), T=3, B=2, lengths=[3, 1])


SPLIT_CELLS = ["lstm", "gru", "mtrnn", "ctrnn", "indrnn"]


@pytest.mark.parametrize("P", [2, 3])
@pytest.mark.parametrize("name", SPLIT_CELLS)
def test_split_over_programs(name, P, monkeypatch):
    """The multi-program kernels (units split over P programs per batch tile,
    a launch per step standing in for the grid barrier under the interpreter)."""
    from rnnspec.kernels import launch

    monkeypatch.setenv("RNNSPEC_SPLIT", str(P))
    cell = make_cell(library_ir(name))
    assert launch.choose(cell, torch.zeros(1, 3, 5))[:2] == ("split", P)
    compare(cell, T=4, B=3, lengths=[4, 1, 3])


def test_split_two_batch_tiles_wide_state(monkeypatch):
    monkeypatch.setenv("RNNSPEC_SPLIT", "2")
    cell = make_cell(library_ir("lstm", input_size=7, hidden=40))
    compare(cell, T=3, B=19, lengths=[3, 0, 2, 1, 3, 2, 3, 1, 2, 3, 3, 2, 1, 3, 2, 1, 3, 3, 2])


def test_split_declines_in_step_products(monkeypatch):
    """Jordan's V @ h' needs h' within the step: the split kernels say so and
    the single-program kernels run it."""
    from rnnspec.kernels import codegen, launch

    assert any("V @ h'" in r for r in codegen.split_reasons(library_ir("jordan")))
    assert codegen.split_reasons(library_ir("lstm")) == []
    monkeypatch.setenv("RNNSPEC_SPLIT", "2")
    cell = make_cell(library_ir("jordan"))
    with pytest.warns(RuntimeWarning, match="RNNSPEC_SPLIT=2 ignored"):
        assert launch.choose(cell, torch.zeros(1, 3, 5))[:2] == ("single", 1)


def test_heads_block_diagonal():
    ir = library_ir("gru", input_size=5, hidden=12)
    cell = make_cell(ir, heads=3)
    compare(cell, T=4, B=2, lengths=[4, 3])
    cell = make_cell(library_ir("lstm", input_size=5, hidden=12), heads=2)
    compare(cell, T=3, B=2)


def test_bf16_input_fp32_state():
    """bfloat16 parameters and inputs: the kernels read them and compute in
    float32; compare against the float32 torch backend on the same (rounded)
    numbers."""
    from rnnspec.kernels.launch import run_direction_triton
    from rnnspec.backends.torch_backend import run_direction

    cell32 = make_cell(library_ir("lstm"))
    cell16 = make_cell(library_ir("lstm")).to(torch.bfloat16)
    with torch.no_grad():
        for p32, p16 in zip(cell32.parameters(), cell16.parameters()):
            p32.copy_(p16.float())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 5, generator=g).to(torch.bfloat16)
    state = [torch.zeros(3, 12, dtype=torch.bfloat16), torch.zeros(3, 12, dtype=torch.bfloat16)]
    x16 = x.clone().requires_grad_(True)
    out, new = run_direction_triton(cell16, x16, state, torch.tensor([4, 2, 3]))
    assert out.dtype == torch.bfloat16 and new[0].dtype == torch.bfloat16
    out.float().sum().backward()
    x32 = x.float().requires_grad_(True)
    ref, _ = run_direction(cell32, x32, [s.float() for s in state], torch.tensor([4, 2, 3]))
    ref.sum().backward()
    assert torch.allclose(out.float(), ref, atol=2e-2)
    assert torch.allclose(x16.grad.float(), x32.grad, atol=5e-2)
    assert cell16.U.grad.dtype == torch.bfloat16
    assert torch.allclose(cell16.U.grad.float(), cell32.U.grad, atol=5e-2)


def test_unsupported_cell_falls_back_with_reason():
    from rnnspec.kernels.codegen import explain

    ir = library_ir("second_order", input_size=3, hidden=4)
    reasons = explain(ir)
    assert reasons and "outer" in reasons[0]
    assert explain(library_ir("lstm")) == []
    cell = make_cell(ir)
    with pytest.warns(RuntimeWarning, match="falls back to the torch backend.*outer"):
        compare(cell, T=3, B=2, lengths=[3, 1], fallback=True)


def test_network_dispatch_bidirectional():
    """A compiled network with backend='triton' runs the kernels through
    pick_runner (both directions, padded lengths) and matches torch.nn.LSTM."""
    import rnnspec

    torch.manual_seed(0)
    ref = torch.nn.LSTM(4, 10, num_layers=2, bidirectional=True)
    net = rnnspec.from_torch(ref)
    for group in net.rnn.groups:
        group.backend = "triton"
    x = torch.randn(5, 3, 4)
    lengths = torch.tensor([5, 3, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback allowed
        y, (h, c) = net.rnn(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    yr, (hr, cr) = ref(packed)
    yr, _ = torch.nn.utils.rnn.pad_packed_sequence(yr, total_length=5)
    assert torch.allclose(y, yr, atol=1e-5)
    assert torch.allclose(h, hr, atol=1e-5) and torch.allclose(c, cr, atol=1e-5)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_generated_source_is_cached_and_readable(kernel_cache):
    from rnnspec.kernels import codegen

    ir = library_ir("gru")
    path = codegen.source_path(ir)
    assert path.parent == kernel_cache and path.name.startswith("gru_") and path.suffix == ".py"
    text = path.read_text()
    assert "r = sigmoid(xr + hr)" in text  # the equations, in the header
    assert "def forward_kernel(" in text and "def backward_kernel(" in text
    assert "for t in range(0, T):" in text and "for tt in range(0, T):" in text
    assert "Saved for backward: the states" in text
    assert codegen.source_path(ir) == path  # same IR, same file
    other = library_ir("gru", hidden=13)
    assert codegen.source_path(other) != path
    k = codegen.load(ir)
    assert k.path == path and k.plan.S == 12


def test_zero_steps():
    from rnnspec.kernels.launch import run_direction_triton

    cell = make_cell(library_ir("elman"))
    out, new = run_direction_triton(cell, torch.zeros(0, 2, 5), [torch.ones(2, 12)], None)
    assert out.shape == (0, 2, 12) and torch.equal(new[0], torch.ones(2, 12))


@pytest.mark.parametrize("P", [1, 2])
@pytest.mark.parametrize("name", SPLIT_CELLS + ["elman"])
def test_streamed_split(name, P, monkeypatch):
    """The split kernels' streamed variant (weights read from global memory
    in K-chunks every step, for cells whose weights do not fit on chip):
    the same values and gradients as the torch backend.  Hidden 40 > one
    K-chunk of 32, so the chunk loop runs twice and masks its tail."""
    from rnnspec.kernels import launch

    monkeypatch.setenv("RNNSPEC_SPLIT", str(P))
    monkeypatch.setenv("RNNSPEC_STREAM", "1")
    cell = make_cell(library_ir(name, input_size=5, hidden=40))
    assert launch.choose(cell, torch.zeros(1, 3, 5))[:2] == ("stream", P)
    compare(cell, T=3, B=3, lengths=[3, 1, 2])
