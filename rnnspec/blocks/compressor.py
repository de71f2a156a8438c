"""Neural history compressor (Schmidhuber 1992, "Learning complex, extended
sequences using the principle of history compression", Neural Computation
4(2):234-242).

The principle (§2): if a predictor of the next input is right, that input
carries no new information; the unexpected inputs, with the time steps at
which they occur, are a loss-free description of the whole history.  So a
second, higher-level recurrent net that sees *only* the unexpected inputs
sees a shorter sequence, on a slower time scale, in which long time lags of
the raw stream become short ones.

Two levels of the predictor hierarchy of §3, named as in the paper's
two-network system (the *automatizer* A below, the *chunker* C above):

* the automatizer runs on every input ``x_t`` and predicts the next one,
  ``p_{t+1} = W_p o^A_t + b_p``; its prediction loss is trained alongside the
  task (:attr:`Compressor.prediction_loss`, collected by the trainer as an
  auxiliary loss);
* ``x_t`` is *unexpected* when there was no prediction yet (the first input
  of a sequence) or when the prediction made at ``t-1`` failed: with
  ``surprise="symbol"`` (one-hot / local inputs, the paper's experiments) when
  the probability ``softmax(p_t) . x_t`` that the automatizer gave the
  symbol that came is below ``threshold``; with ``surprise="error"``
  (real-valued inputs) when the mean squared error ``|p_t - x_t|^2 / F`` is
  above it;
* the chunker steps only on unexpected inputs: its input is ``x_t`` together
  with when it came (§2: the time step of an unexpected input is part of the
  compressed description), given as ``1 / (1 + gap)`` where ``gap`` is the
  number of inputs it skipped since its previous step; on all other steps
  its state and output are held unchanged;
* the layer's output at every step reads both levels,
  ``y_t = W_y [o^A_t, o^C_t] + b_y``: the chunker's held output carries the
  unexpected events (the target-relevant part of a long lag), the
  automatizer's the predictable detail.  In the paper each level's own
  output units predict; a trained linear read-out of both states is the
  nearest form for a layer whose target is a task label.

Notes and departures: the surprise test is a hard gate with no gradient;
the gradient of the task loss reaches the chunker through the steps it
took, and the automatizer through its output.  The paper's further step of
training A to also predict C's state (so that C's knowledge moves down into
A, "collapsing" the hierarchy) is not done, and there are two levels, not an
arbitrary number.

Batched: every row has its own surprises; the chunker is evaluated when at
least one row of the batch is surprised, and ``torch.where`` keeps the state
of the rows that were not, so each row sees exactly its own compressed
sequence.  ``ticks`` in the state counts each row's chunker steps.

This module imports only torch (``rnnspec compile -o`` copies it).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Compressor", "CompressorState"]


class CompressorState(NamedTuple):
    """What the compressor carries from one step to the next.

    Attributes:
        automatizer: the automatizer cell's state.
        chunker: the chunker cell's state (changed only on its steps).
        chunker_out: ``[B, O_C]`` the chunker's output at its last step.
        prediction: ``[B, F]`` the automatizer's prediction of the next input
            (logits for ``surprise="symbol"``, values for ``"error"``).
        primed: ``[B]`` 1 where ``prediction`` is a real prediction (0 before
            the first input: the first input is always unexpected).
        gap: ``[B]`` steps since the chunker's last step.
        ticks: ``[B]`` chunker steps taken so far.
    """

    automatizer: Any
    chunker: Any
    chunker_out: Tensor
    prediction: Tensor
    primed: Tensor
    gap: Tensor
    ticks: Tensor


def _hold(keep: Tensor, new: Any, old: Any) -> Any:
    """Per batch row, ``new`` where ``keep`` else ``old``, through nested tuples."""
    if isinstance(new, Tensor):
        return torch.where(keep.view(-1, *([1] * (new.dim() - 1))), new, old)
    return type(new)(_hold(keep, n, o) for n, o in zip(new, old))


class Compressor(nn.Module):
    """Two-level history compressor as a step module.

    Args:
        input_size: features of ``x_t`` (the symbols, one-hot, for ``"symbol"``).
        output_size: features of ``y_t``.
        automatizer: module ``(x, state) -> (o, state)`` with ``output_size``
            and ``initial_state(B, device, dtype)`` (a CellController), fed
            ``x_t`` (``input_size`` features).
        chunker: the same kind of module, fed ``[x_t, 1/(1+gap)]``
            (``input_size + 1`` features).
        threshold: the surprise threshold (see the module docstring).
        surprise: ``"symbol"`` or ``"error"``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        automatizer: nn.Module,
        chunker: nn.Module,
        *,
        threshold: float = 0.5,
        surprise: str = "symbol",
    ) -> None:
        super().__init__()
        if surprise not in ("symbol", "error"):
            raise ValueError(f"surprise must be 'symbol' or 'error', got {surprise!r}")
        self.input_size = input_size
        self.output_size = output_size
        self.threshold = float(threshold)
        self.surprise = surprise
        self.automatizer = automatizer
        self.chunker = chunker
        self.predict = nn.Linear(automatizer.output_size, input_size)
        self.readout = nn.Linear(automatizer.output_size + chunker.output_size, output_size)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> CompressorState:
        zeros = torch.zeros(batch_size, device=device, dtype=dtype)
        return CompressorState(
            automatizer=self.automatizer.initial_state(batch_size, device, dtype),
            chunker=self.chunker.initial_state(batch_size, device, dtype),
            chunker_out=torch.zeros(batch_size, self.chunker.output_size, device=device, dtype=dtype),
            prediction=torch.zeros(batch_size, self.input_size, device=device, dtype=dtype),
            primed=zeros,
            gap=zeros,
            ticks=zeros,
        )

    def prediction_loss(self, x: Tensor, state: CompressorState) -> tuple[Tensor, Tensor]:
        """The automatizer's loss for predicting ``x`` (made at the previous
        step): cross-entropy for symbols, mean squared error for vectors.
        Returns the loss per row ``[B]`` and the row weights ``[B]`` (0 where
        there was no prediction yet)."""
        if self.surprise == "symbol":
            loss = -(x * F.log_softmax(state.prediction, dim=-1)).sum(-1)
        else:
            loss = (state.prediction - x).pow(2).mean(-1)
        return loss * state.primed, state.primed

    @torch.no_grad()
    def surprised(self, x: Tensor, state: CompressorState) -> Tensor:
        """``[B]`` bool: which rows' ``x`` the automatizer failed to predict (§2-3)."""
        if self.surprise == "symbol":
            missed = (torch.softmax(state.prediction, dim=-1) * x).sum(-1) < self.threshold
        else:
            missed = (state.prediction - x).pow(2).mean(-1) > self.threshold
        return missed | (state.primed == 0)

    def step(self, x: Tensor, state: CompressorState) -> tuple[Tensor, CompressorState]:
        a_out, a_state = self.automatizer(x, state.automatizer)
        hit = self.surprised(x, state)
        gap = state.gap
        c_state, c_out = state.chunker, state.chunker_out
        if bool(hit.any()):  # no row surprised: the chunker does not run at all
            when = (1.0 / (1.0 + gap)).unsqueeze(-1)
            out, new = self.chunker(torch.cat([x, when], dim=-1), c_state)
            c_state = _hold(hit, new, c_state)
            c_out = torch.where(hit.unsqueeze(-1), out, c_out)
        flag = hit.to(x.dtype)
        new_state = CompressorState(
            automatizer=a_state,
            chunker=c_state,
            chunker_out=c_out,
            prediction=self.predict(a_out),
            primed=torch.ones_like(state.primed),
            gap=(gap + 1.0) * (1.0 - flag),
            ticks=state.ticks + flag,
        )
        y = self.readout(torch.cat([a_out, c_out], dim=-1))
        return y, new_state
