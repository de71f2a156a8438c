"""Shared cases and the comparison used by the kernel tests (interpreter and GPU)."""
from __future__ import annotations

import warnings
from typing import Optional

import torch

import rnnspec
from rnnspec.backends.torch_backend import Cell, run_direction
from rnnspec.spec.loader import cell_ir, standard_library

# Tolerances, float32 against the torch backend (measured worst: 1.2e-7 on
# values, 1.6e-6 on gradients, under the interpreter with ieee dots).
ATOL, RTOL = 1e-5, 1e-4

LIB_ARGS = {"jordan": {"out": 5}}
UNSUPPORTED = {"second_order": "outer"}

CUSTOM = {
    # the DESIGN's example: the recurrent product's operand is an expression
    "mgu": """
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}""",
    # every function, a split temporary, the raw input used elementwise,
    # an elementwise parameter inside a nonlinearity, two state sizes
    "zoo": """
cell zoo(x, h[hidden], c[input]) -> y {
    param a[hidden]: uniform(0.5, 1.5)
    param W[2*hidden, input]
    a1, a2 = split(W @ x + U @ h + b, 2)
    p = softplus(a1) + abs(a2) * hard_sigmoid(a1 - a2)
    q = hard_tanh(a2) - min(a1, h) + max(p, 0.25) * clamp(h, -0.5, 0.5)
    r = sqrt(square(p) + 1) / (exp(-abs(q)) + a) + log(1 + sigmoid(q))
    c' = sin(V @ r) * cos(c) - identity(x) / 4
    h' = tanh(r * a) / 2 + relu(q) + U2 @ tanh(c')
    y = h' * r
}""",
    # a second state of another size fed through a product of new and old state
    "twosize": """
cell twosize(x, u[hidden], s[slow], slow=5) -> u {
    z1, z2, z3 = split(W @ x + U @ u + V @ tanh(s) + b, 3)
    u' = sigmoid(z1) * u + sigmoid(z2) * tanh(z3)
    s' = 0.9 * s + P @ (u' * u) / 3
}""",
}


def library_ir(name: str, input_size: int = 5, hidden: int = 12):
    lib = standard_library()
    return cell_ir(name, lib[name], input_size=input_size, hidden=hidden, args=LIB_ARGS.get(name))


def custom_ir(name: str, input_size: int = 5, hidden: int = 12):
    spec = rnnspec.loads(CUSTOM[name], fmt="rnn")
    return cell_ir(name, spec.cells[name], input_size=input_size, hidden=hidden)


def make_cell(ir, heads: int = 1, seed: int = 0, device: str = "cpu") -> Cell:
    torch.manual_seed(seed)
    cell = Cell(ir, heads=heads)
    with torch.no_grad():  # move zero-initialized parameters off zero so every gradient path shows
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return cell.to(device)


def run_and_grad(run, cell: Cell, x: torch.Tensor, state: list[torch.Tensor], lengths: Optional[torch.Tensor],
                 w_out: torch.Tensor, w_state: list[torch.Tensor]):
    x = x.detach().clone().requires_grad_(True)
    state = [s.detach().clone().requires_grad_(True) for s in state]
    out, new = run(cell, x, state, lengths)
    loss = (out.float() * w_out).sum() + sum((n.float() * w).sum() for n, w in zip(new, w_state))
    params = list(cell.parameters())
    grads = torch.autograd.grad(loss, [x, *state, *params], allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, [x, *state, *params])]
    return out.detach(), [n.detach() for n in new], grads


def compare(cell: Cell, T: int, B: int, lengths: Optional[list[int]] = None, *, seed: int = 1,
            atol: float = ATOL, rtol: float = RTOL, device: str = "cpu", fallback: bool = False) -> dict[str, float]:
    """Values and gradients (input, initial state, every parameter) of the
    Triton runner against the torch backend; returns the worst differences.
    Unless ``fallback``, the kernels must really run (no fallback warning)."""
    from rnnspec.kernels import launch

    def run_direction_triton(*args):  # noqa: ANN002, ANN202
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = launch.run_direction_triton(*args)
        fell_back = [w for w in caught if "falls back" in str(w.message)]
        assert bool(fell_back) == fallback, [str(w.message) for w in caught]
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return result

    g = torch.Generator().manual_seed(seed)
    ir = cell.ir
    x = torch.randn(T, B, ir.inputs[0][1], generator=g).to(device)
    state = [torch.randn(B, n, generator=g).to(device) for _, n in ir.states]
    lens = None if lengths is None else torch.tensor(lengths, device=device)
    w_out = torch.randn(T, B, ir.output_size, generator=g).to(device)
    w_state = [torch.randn(B, n, generator=g).to(device) for _, n in ir.states]
    ref = run_and_grad(run_direction, cell, x, state, lens, w_out, w_state)
    got = run_and_grad(run_direction_triton, cell, x, state, lens, w_out, w_state)
    names = ["x", *[f"state {s}" for s, _ in ir.states], *[n for n, _ in cell.named_parameters()]]
    worst = {"out": (got[0] - ref[0]).abs().max().item() if got[0].numel() else 0.0}
    assert torch.allclose(got[0], ref[0], atol=atol, rtol=rtol), f"outputs differ by {worst['out']:.3g}"
    if lens is not None:
        t = torch.arange(T, device=device)[:, None]
        assert torch.all(got[0][t >= lens[None, :]] == 0), "outputs past a sequence's length must be zero"
    for (s, _), a, b in zip(ir.states, got[1], ref[1]):
        assert torch.allclose(a, b, atol=atol, rtol=rtol), f"final state {s} differs by {(a - b).abs().max():.3g}"
    worst["state"] = max((a - b).abs().max().item() for a, b in zip(got[1], ref[1]))
    worst["grad"] = 0.0
    for name, a, b in zip(names, got[2], ref[2]):
        err = (a - b).abs().max().item() if a.numel() else 0.0
        worst["grad"] = max(worst["grad"], err)
        assert torch.allclose(a, b, atol=atol, rtol=rtol), f"gradient of {name} differs by {err:.3g}"
    return worst
