"""Bidirectional Associative Memory (Kosko 1988, IEEE Trans. SMC 18(1):49-60).

A BAM stores pairs ``(x_k, y_k)`` of bipolar vectors (``x`` of length ``n``,
``y`` of length ``p``) in one correlation matrix ``W = sum_k x_k^T y_k``
(Kosko's correlation encoding) and recalls one member of a pair from a (noisy) copy of the
other by bouncing between the two layers::

    y <- sgn(x W)      x <- sgn(y W^T)      (a unit keeps its value when
                                              its field is 0)

until neither layer changes. Every such half-step lowers or keeps the energy
``E(x, y) = -x W y^T``, which is bounded below, so recall always
reaches a fixed point (Kosko's bidirectional stability theorem). Capacity is
roughly ``min(n, p)`` divided by a small constant in practice; with ``n = p =
100`` and 10 % flipped bits, five pairs come back perfectly and twenty do not.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnspec.blocks.hopfield import check_bipolar, relax_to_fixed_point, sign_keep

__all__ = ["BAM", "BAMResult"]


class BAMResult(NamedTuple):
    """Outcome of :meth:`BAM.recall_y` / :meth:`BAM.recall_x`.

    Unbatched for a single probe, with a leading batch dimension otherwise.

    Attributes:
        x: final ``x`` layer ``[..., n]``.
        y: final ``y`` layer ``[..., p]``.
        steps: ``int64`` number of round trips (x -> y -> x) that changed a layer.
        converged: ``bool``; a round trip changed nothing (bidirectional fixed point).
        energies: ``[..., S + 1]`` ``E(x, y)`` once the first recalled layer
            exists and after each of the ``S`` round trips; never increases.
    """

    x: Tensor
    y: Tensor
    steps: Tensor
    converged: Tensor
    energies: Tensor


class BAM(nn.Module):
    """Kosko's BAM with the correlation (outer-product) encoding.

    Args:
        n: length of the ``x`` vectors.
        p: length of the ``y`` vectors.
    """

    weight: Tensor

    def __init__(self, n: int, p: int) -> None:
        super().__init__()
        if n < 1 or p < 1:
            raise ValueError("n and p must be positive")
        self.n = n
        self.p = p
        self.register_buffer("weight", torch.zeros(n, p))

    def store(self, x: Tensor, y: Tensor, append: bool = False) -> None:
        """Encode the pairs ``(x[k], y[k])``: ``W = sum_k x_k^T y_k`` (Kosko's correlation encoding).

        ``x`` is ``[P, n]`` and ``y`` is ``[P, p]``, both bipolar. With
        ``append=True`` the pairs are added to those already stored (the
        encoding is a sum, so this is exact).
        """
        x, y = x.reshape(-1, self.n), y.reshape(-1, self.p)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"need as many x as y patterns, got {x.shape[0]} and {y.shape[0]}")
        check_bipolar(x, "x")
        check_bipolar(y, "y")
        weight = x.to(self.weight).T @ y.to(self.weight)
        self.weight = self.weight + weight if append else weight

    def energy(self, x: Tensor, y: Tensor) -> Tensor:
        """Kosko's energy ``E(x, y) = -x W y^T``; ``[n], [p] -> []`` or batched ``[B]``."""
        return -((x.to(self.weight) @ self.weight) * y.to(self.weight)).sum(dim=-1)

    def recall_y(self, x: Tensor, max_steps: int = 100) -> BAMResult:
        """Recall the ``y`` associated with ``x`` (``[n]`` or ``[B, n]``; 0 = unknown bit)."""
        if x.shape[-1] != self.n or x.dim() not in (1, 2):
            raise ValueError(f"x must be [{self.n}] or [B, {self.n}], got {tuple(x.shape)}")
        first, second, steps, converged, energies = self._recall(x, self.weight, max_steps)
        return self._result(x.dim() == 1, first, second, steps, converged, energies)

    def recall_x(self, y: Tensor, max_steps: int = 100) -> BAMResult:
        """Recall the ``x`` associated with ``y`` (``[p]`` or ``[B, p]``; 0 = unknown bit)."""
        if y.shape[-1] != self.p or y.dim() not in (1, 2):
            raise ValueError(f"y must be [{self.p}] or [B, {self.p}], got {tuple(y.shape)}")
        first, second, steps, converged, energies = self._recall(y, self.weight.T, max_steps)
        return self._result(y.dim() == 1, second, first, steps, converged, energies)

    @staticmethod
    def _recall(probe: Tensor, weight: Tensor, max_steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Bounce between the probed layer (``a``) and the other one (``b = sgn(a weight)``).

        The two layers are kept side by side in one ``[B, n_a + n_b]`` tensor
        so that the fixed-point loop is the very one the Hopfield network uses.
        """
        a = probe.reshape(-1, weight.shape[0]).to(weight).clone()
        b = sign_keep(a @ weight, torch.zeros(a.shape[0], weight.shape[1], dtype=a.dtype, device=a.device))
        split = a.shape[1]

        def round_trip(state: Tensor) -> Tensor:
            a, b = state[:, :split], state[:, split:]
            a = sign_keep(b @ weight.T, a)
            b = sign_keep(a @ weight, b)
            return torch.cat([a, b], dim=1)

        def energy(state: Tensor) -> Tensor:
            return -((state[:, :split] @ weight) * state[:, split:]).sum(dim=-1)

        start = torch.cat([a, b], dim=1)
        state, steps, converged, energies = relax_to_fixed_point(start, energy, round_trip, max_steps)
        return state[:, :split], state[:, split:], steps, converged, energies

    @staticmethod
    def _result(single: bool, x: Tensor, y: Tensor, steps: Tensor, converged: Tensor, energies: Tensor) -> BAMResult:
        result = BAMResult(x, y, steps, converged, energies)
        return BAMResult(*(field.squeeze(0) for field in result)) if single else result
