"""A learned initial state (``initial_state: learned``) through the generated
Triton kernels, under TRITON_INTERPRET=1 on the CPU: the kernels take the
broadcast start state as s0 and return its gradient, which must equal the
torch backend's (tolerance as tests/kernels/test_triton.py: float32, atol
1e-5, rtol 1e-4)."""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import warnings  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import rnnspec  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="needs TRITON_INTERPRET=1 (set before triton was imported) or a GPU",
)

triton = pytest.importorskip("triton")

SPEC = """
network learned_start {
    input vector(3)
    layer lstm(hidden=5, initial_state=learned, initial_init="normal(0.5)") bidirectional depth 2
    output linear(2) every step
}
"""


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSPEC_CACHE", str(tmp_path))


def _grads(backend: str, state: dict, x: torch.Tensor, lengths: torch.Tensor, w: torch.Tensor):
    net = rnnspec.compile(rnnspec.loads(SPEC, "rnn"), backend=backend)
    net.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the torch loop would warn: the kernels must run
        y, _ = net(x, lengths=lengths)
    (y * w).sum().backward()
    return y.detach(), {k: p.grad for k, p in net.named_parameters() if ".initial." in k}


def test_learned_initial_state_gradient_matches_the_torch_backend() -> None:
    device = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    torch.manual_seed(0)
    state = rnnspec.compile(rnnspec.loads(SPEC, "rnn")).state_dict()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, 3, generator=g).to(device)
    lengths = torch.tensor([5, 2, 4], device=device)
    w = torch.randn(5, 3, 2, generator=g).to(device)
    state = {k: v.to(device) for k, v in state.items()}
    y_ref, ref = _grads("torch", state, x, lengths, w)
    y_got, got = _grads("triton", state, x, lengths, w)
    torch.testing.assert_close(y_got, y_ref, atol=1e-5, rtol=1e-4)
    assert sorted(ref) == ["rnn.groups.0.initial.c", "rnn.groups.0.initial.h"]
    for k in ref:
        assert ref[k].abs().min() > 0, k  # every layer and direction's start gets a gradient
        torch.testing.assert_close(got[k], ref[k], atol=1e-5, rtol=1e-4, msg=k)
