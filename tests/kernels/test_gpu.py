"""The same comparisons as test_triton.py, compiled for a real GPU (no
interpreter), plus sizes only a GPU runs in test time.  Skipped without CUDA.

Tolerance: float32 with ieee dots (torch.backends.cuda.matmul.allow_tf32 is
off by default, and the launcher then asks tl.dot for exact float32):
atol 1e-5 / rtol 1e-4 at the interpreter's sizes, 1e-4 / 1e-3 over 64 steps.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from _kernel_cases import CUSTOM, UNSUPPORTED, compare, custom_ir, library_ir, make_cell
from rnnspec.spec.loader import standard_library

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SUPPORTED = [n for n in sorted(standard_library()) if n not in UNSUPPORTED]


@pytest.fixture(autouse=True)
def exact_fp32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("name", SUPPORTED)
def test_library_cell_gpu(name):
    cell = make_cell(library_ir(name), device="cuda")
    compare(cell, T=5, B=3, lengths=[5, 2, 4], device="cuda")


@pytest.mark.parametrize("name", sorted(CUSTOM))
@pytest.mark.parametrize("wgrad", ["gemm", "chip"])
def test_custom_cell_gpu(name, wgrad, monkeypatch):
    monkeypatch.setenv("RNNSPEC_WGRAD", wgrad)
    cell = make_cell(custom_ir(name), device="cuda")
    compare(cell, T=4, B=3, lengths=[4, 1, 3], device="cuda")


# sizes that fit one program on an A100 as well as an H100 (see test_aot.py)
@pytest.mark.parametrize("name, hidden", [("lstm", 64), ("gru", 64), ("elman", 64), ("lstm", 20)])
def test_longer_sequences_gpu(name, hidden):
    cell = make_cell(library_ir(name, input_size=32, hidden=hidden), device="cuda")
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 65, (37,), generator=g).tolist()
    compare(cell, T=64, B=37, lengths=lengths, device="cuda", atol=1e-4, rtol=1e-3)


def test_large_hidden_splits_over_programs_gpu():
    """LSTM at H=256 does not fit one program: the launcher picks the
    multi-program kernels (persistent, grid barrier) and they agree."""
    from rnnspec.kernels import launch

    cell = make_cell(library_ir("lstm", input_size=32, hidden=256), device="cuda")
    mode, programs, reasons = launch.choose(cell, torch.zeros(1, 37, 32, device="cuda"))
    assert mode == "split" and programs > 1, reasons
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 33, (37,), generator=g).tolist()
    compare(cell, T=32, B=37, lengths=lengths, device="cuda", atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("name", ["lstm", "gru", "mtrnn"])
def test_forced_split_gpu(name, monkeypatch):
    monkeypatch.setenv("RNNSPEC_SPLIT", "4")
    cell = make_cell(library_ir(name, input_size=16, hidden=64), device="cuda")
    compare(cell, T=16, B=20, lengths=list(range(1, 17)) + [16, 16, 3, 9], device="cuda", atol=1e-4, rtol=1e-3)


def test_weights_too_large_for_chip_stream_gpu():
    """LSTM at H=1024 (16 MiB of float32 recurrent weights): no split holds
    them on chip; the streamed split reads them from L2 every step."""
    from rnnspec.kernels import launch

    cell = make_cell(library_ir("lstm", input_size=16, hidden=1024), device="cuda")
    mode, programs, reasons = launch.choose(cell, torch.zeros(1, 20, 16, device="cuda"))
    assert mode == "stream" and programs > 1, reasons
    compare(cell, T=8, B=20, lengths=[8, 3] * 10, device="cuda", atol=1e-4, rtol=1e-3)


def test_jordan_too_wide_falls_back_gpu():
    """Jordan cannot split (V @ h' within the step) and one program cannot
    keep vectors of 512 lanes in registers: the torch backend runs it."""
    cell = make_cell(library_ir("jordan", input_size=16, hidden=512), device="cuda")
    compare(cell, T=2, B=4, device="cuda", fallback=True)


def test_auto_backend_uses_kernels_on_cuda():
    import rnnspec

    ref = torch.nn.GRU(8, 32, num_layers=1).cuda()
    net = rnnspec.from_torch(ref)
    assert net.rnn.groups[0].backend == "auto"
    x = torch.randn(10, 4, 8, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        y, h = net.rnn(x)
    yr, hr = ref(x)
    assert torch.allclose(y, yr, atol=1e-4) and torch.allclose(h, hr, atol=1e-4)


def test_bf16_gpu():
    from rnnspec.kernels.launch import run_direction_triton

    cell = make_cell(library_ir("lstm", input_size=16, hidden=32), device="cuda").to(torch.bfloat16)
    x = torch.randn(8, 5, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    state = [torch.zeros(5, 32, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    out, new = run_direction_triton(cell, x, state, None)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad.float()).all()
