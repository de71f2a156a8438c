"""The continuous stack of the NNPDA (rnnspec.blocks.stack): push/pop/read
against hand-computed values, overflow, gradients against finite differences."""
from __future__ import annotations

import torch

from rnnspec.blocks.stack import NNPDA, stack_pop, stack_push, stack_read, stack_step

F64 = torch.float64


def _empty(depth: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(1, depth, width, dtype=F64), torch.zeros(1, depth, dtype=F64)


def _t(*v: float) -> torch.Tensor:
    return torch.tensor([list(v)], dtype=F64)


def _s(v: float) -> torch.Tensor:
    return torch.tensor([v], dtype=F64)


def test_push_pop_read_by_hand() -> None:
    # Three steps worked by hand from eqs. 1-3 (the pushes and pops that
    # Grefenstette et al. 2015 illustrate in their Figure 1), with
    # v1 = (1, 0), v2 = (0, 1), v3 = (1, 1):
    values, strengths = _empty(4, 2)
    # t=1: push v1 with d=0.8            -> s = [0.8], r = 0.8 v1
    values, strengths, r, lost = stack_step(values, strengths, _s(0.8), _s(0.0), _t(1, 0))
    torch.testing.assert_close(strengths, _t(0.8, 0, 0, 0))
    torch.testing.assert_close(r, _t(0.8, 0.0))
    # t=2: pop u=0.1 (v1: 0.8 -> 0.7), push v2 with d=0.5
    #      -> s = [0.5, 0.7] (top first), r = 0.5 v2 + min(0.7, 1 - 0.5) v1
    values, strengths, r, lost = stack_step(values, strengths, _s(0.5), _s(0.1), _t(0, 1))
    torch.testing.assert_close(strengths, _t(0.5, 0.7, 0, 0))
    torch.testing.assert_close(r, _t(0.5, 0.5))
    # t=3: pop u=0.9: all of v2 (0.5), then 0.4 of v1 (0.7 -> 0.3); push v3 with d=0.9
    #      -> s = [0.9, 0, 0.3], r = 0.9 v3 + 0 v2 + min(0.3, 1 - 0.9) v1 = (1.0, 0.9)
    values, strengths, r, lost = stack_step(values, strengths, _s(0.9), _s(0.9), _t(1, 1))
    torch.testing.assert_close(strengths, _t(0.9, 0, 0.3, 0))
    torch.testing.assert_close(r, _t(1.0, 0.9))
    torch.testing.assert_close(values[0, :3], torch.tensor([[1, 1], [0, 1], [1, 0]], dtype=F64))
    assert lost.item() == 0.0


def test_pop_beyond_the_bottom_empties_and_reads_zero() -> None:
    strengths = _t(0.6, 0.3, 0.0)
    torch.testing.assert_close(stack_pop(strengths, _s(0.5)), _t(0.1, 0.3, 0.0))
    torch.testing.assert_close(stack_pop(strengths, _s(0.7)), _t(0.0, 0.2, 0.0))
    torch.testing.assert_close(stack_pop(strengths, _s(5.0)), _t(0.0, 0.0, 0.0))
    values = torch.randn(1, 3, 4, dtype=F64)
    torch.testing.assert_close(stack_read(values, _t(0.0, 0.0, 0.0)), torch.zeros(1, 4, dtype=F64))
    # the read takes one unit of thickness from the top down: 0.6 + 0.3 + 0.1 of the third
    w = _t(0.6, 0.3, 0.1)
    torch.testing.assert_close(stack_read(values, _t(0.6, 0.3, 0.8)), torch.einsum("bd,bdw->bw", w, values))


def test_overflow_drops_the_bottom_and_counts_it() -> None:
    values, strengths = _empty(2, 1)
    for k, d in enumerate((1.0, 0.7, 0.4)):
        values, strengths, dropped = stack_push(values, strengths, _t(float(k + 1)), _s(d))
        assert dropped.item() == (1.0 if k == 2 else 0.0)  # the third push drops the first element
    torch.testing.assert_close(strengths, _t(0.4, 0.7))
    torch.testing.assert_close(values[0, :, 0], torch.tensor([3.0, 2.0], dtype=F64))
    # a sequence no longer than the depth gives the same result as a deeper stack
    torch.manual_seed(0)
    small = NNPDA(3, 2, controller="feedforward", controller_hidden=5, stack_width=2, stack_depth=6).double()
    big = NNPDA(3, 2, controller="feedforward", controller_hidden=5, stack_width=2, stack_depth=40).double()
    big.load_state_dict(small.state_dict())
    x = torch.randn(6, 4, 3, dtype=F64)
    (ys, ss), (yb, sb) = small(x), big(x)
    torch.testing.assert_close(ys, yb, rtol=0, atol=0)
    assert torch.all(ss.overflow == 0)
    y7, s7 = small(torch.cat([x, x[:1]]))  # the 7th step overflows the depth-6 stack
    assert torch.all(s7.overflow > 0)


def test_signed_action_pushes_or_pops_never_both() -> None:
    # Sun et al. 1993: one analog action a in (-1, 1): a > 0 pushes a, a < 0 pops |a|.
    pda = NNPDA(2, 1, controller="feedforward", controller_hidden=3, action="signed").double()
    with torch.no_grad():
        pda.actions.weight.zero_()
        pda.actions.bias.fill_(0.5)
        push, pop = pda.push_pop(torch.zeros(1, 3, dtype=F64))
        torch.testing.assert_close((push, pop), (_s(torch.tanh(torch.tensor(0.5)).item()), _s(0.0)))
        pda.actions.bias.fill_(-2.0)
        push, pop = pda.push_pop(torch.zeros(1, 3, dtype=F64))
        torch.testing.assert_close((push, pop), (_s(0.0), _s(torch.tanh(torch.tensor(2.0)).item())))


def test_stack_step_gradients_match_finite_differences() -> None:
    g = torch.Generator().manual_seed(0)
    B, D, W = 3, 5, 4
    values = torch.randn(B, D, W, dtype=F64, generator=g, requires_grad=True)
    strengths = torch.rand(B, D, dtype=F64, generator=g).mul(0.8).add(0.05).requires_grad_()
    push = torch.rand(B, dtype=F64, generator=g).requires_grad_()
    pop = torch.rand(B, dtype=F64, generator=g).mul(1.5).requires_grad_()  # up to popping more than one element
    vector = torch.randn(B, W, dtype=F64, generator=g, requires_grad=True)
    # every output (new values, strengths, the reading, the dropped thickness) against every input
    assert torch.autograd.gradcheck(stack_step, (values, strengths, push, pop, vector))


def test_nnpda_gradients_through_several_steps_match_finite_differences() -> None:
    torch.manual_seed(3)
    for action in ("push_pop", "signed"):
        pda = NNPDA(3, 2, controller="lstm", controller_hidden=4, stack_width=3, stack_depth=6, action=action).double()
        x = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda inp: pda(inp)[0], (x,))
