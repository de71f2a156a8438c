"""Clockwork RNN: a recurrent layer whose modules run at different rates.

Koutník, Greff, Gomez & Schmidhuber, "A Clockwork RNN", ICML 2014 (§3:
the SRN step, eqs. (1)-(2), with the hidden layer split into clocked
modules); the idea of a hierarchy of time scales goes back to El Hihi &
Bengio, "Hierarchical recurrent neural networks for long-term dependencies",
NIPS 1995/1996.

The hidden layer of ``hidden`` units is split into ``g = len(periods)``
equal modules; module ``i`` has period ``T_i`` (increasing: the fastest
module first).  At step ``t`` (counted from 0 at the start of a sequence)
only the modules with ``t mod T_i = 0`` compute; the others keep their
state::

    h~(t) = tanh(W_H h(t-1) + W_I x(t) + b)
    h_i(t) = h~_i(t)  if t mod T_i == 0  else  h_i(t-1)

``W_H`` is block upper-triangular: module ``i`` reads modules ``j >= i``
(itself and the slower ones), never the faster ones, so slow modules hold
the long time scales undisturbed by fast ones.  The layer's output is the
whole state (all modules); the spec's read-out layer is the paper's
``y = f_O(W_O h)``.

The step counter is part of the state (per sequence), so a sequence run in
chunks with the state carried over clocks exactly as the whole sequence
does, and padded steps neither update the state nor advance the clock.

This module imports only torch: ``rnnspec compile -o`` copies it into
generated modules.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn


class ClockworkState(NamedTuple):
    h: Tensor  # [B, hidden]
    t: Tensor  # [B] int64: the step about to be taken, per sequence


def clockwork_mask(periods: Sequence[int], module_size: int) -> Tensor:
    """``[H, H]`` 0/1 mask: unit r reads unit c when c's module is r's or slower."""
    module = torch.arange(len(periods) * module_size) // module_size
    return (module[None, :] >= module[:, None]).float()


class Clockwork(nn.Module):
    """``step(x_t [B, I], state) -> (h [B, H], state)``."""

    def __init__(self, input_size: int, hidden: int, periods: Sequence[int]) -> None:
        super().__init__()
        periods = [int(p) for p in periods]
        if not periods or hidden % len(periods):
            raise ValueError(f"hidden ({hidden}) must split into {len(periods)} equal modules")
        if any(b <= a for a, b in zip(periods, periods[1:])) or periods[0] < 1:
            raise ValueError(f"periods must be positive and increasing, got {periods}")
        self.input_size = input_size
        self.hidden = hidden
        self.output_size = hidden
        self.periods = periods
        k = hidden // len(periods)
        bound = 1.0 / math.sqrt(hidden)  # torch.nn.RNN's initialization
        self.weight_ih = nn.Parameter(torch.empty(hidden, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(hidden, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(hidden).uniform_(-bound, bound))
        # derived from the spec, so not in the state_dict
        self.register_buffer("mask", clockwork_mask(periods, k), persistent=False)
        self.register_buffer("unit_period", torch.tensor(periods).repeat_interleave(k), persistent=False)

    def recurrent_weight(self) -> Tensor:
        """``W_H`` with the faster-to-slower connections cut (block upper-triangular)."""
        return self.weight_hh * self.mask.to(self.weight_hh.dtype)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ClockworkState:
        return ClockworkState(torch.zeros(batch_size, self.hidden, device=device, dtype=dtype),
                              torch.zeros(batch_size, dtype=torch.int64, device=device))

    def step(self, x: Tensor, state: ClockworkState) -> tuple[Tensor, ClockworkState]:
        h, t = state
        active = (t[:, None] % self.unit_period[None, :]) == 0  # [B, H]
        pre = torch.addmm(self.bias, x, self.weight_ih.t())
        cand = torch.tanh(torch.addmm(pre, h, self.recurrent_weight().t()))
        new = torch.where(active, cand, h)
        return new, ClockworkState(new, t + 1)

    def sequence(self, x: Tensor, state: ClockworkState, valid: Optional[Tensor]) -> tuple[Tensor, ClockworkState]:
        """All steps of ``x`` [T, B, I] (as :meth:`step` would, one by one); steps
        where ``valid`` [T, B] is false neither update the state nor advance the
        clock, and output zeros.  The input products and the masked recurrent
        weight are computed once for the sequence."""
        h, t0 = state
        T = x.shape[0]
        pre = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight_ih.t()).view(T, -1, self.hidden)
        u = self.recurrent_weight().t()
        clock = t0[None, :] + torch.arange(T, device=t0.device)[:, None]  # [T, B]
        active = (clock[:, :, None] % self.unit_period) == 0  # [T, B, H]
        if valid is not None:
            active = active & valid[:, :, None]
        outs = []
        pres, acts = pre.unbind(0), active.unbind(0)  # once: indexing per step makes backward quadratic in T
        for k in range(T):
            h = torch.where(acts[k], torch.tanh(torch.addmm(pres[k], h, u)), h)
            outs.append(h)
        y = torch.stack(outs, 0) if outs else x.new_zeros(0, x.shape[1], self.hidden)
        if valid is not None:
            y = torch.where(valid[:, :, None], y, torch.zeros((), dtype=y.dtype, device=y.device))
            return y, ClockworkState(h, t0 + valid.sum(0))
        return y, ClockworkState(h, t0 + T)
