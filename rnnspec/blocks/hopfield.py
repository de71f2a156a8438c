"""Hopfield networks: the classical binary one and the modern continuous one.

* :class:`HopfieldNetwork` — Hopfield (1982), "Neural networks and physical
  systems with emergent collective computational abilities", PNAS 79.
  ``N`` bipolar units with symmetric weights and zero self-coupling; the
  energy ``E = -1/2 s^T W s`` never rises under asynchronous updates, so
  every probe descends to a fixed point (an attractor). Stored patterns are
  attractors as long as ``P`` stays below about ``0.138 N`` (Amit, Gutfreund
  & Sompolinsky 1985) with the Hebbian rule; the pseudo-inverse (projection)
  rule of Personnaz, Guyon & Dreyfus (1985) / Kanter & Sompolinsky (1987)
  makes every linearly independent pattern a fixed point.

* :class:`ModernHopfield` — Ramsauer et al. (2020), "Hopfield Networks is
  All You Need", arXiv:2008.02217. Continuous states, energy
  ``-lse(beta, X^T xi) + 1/2 xi^T xi``, and the update rule
  ``xi_new = X softmax(beta X^T xi)`` (their eq. 3), which retrieves a
  pattern in one step and stores exponentially many. With learnable
  projections it is a trainable layer (their §3, layer "Hopfield").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "RecallResult",
    "HopfieldNetwork",
    "ModernHopfield",
    "retrieval_weights",
    "hopfield_update",
    "modern_energy",
    "sign_keep",
]

Rule = Literal["hebbian", "pseudo_inverse"]
Mode = Literal["async", "sync"]


class RecallResult(NamedTuple):
    """Outcome of :meth:`HopfieldNetwork.recall` (and of the BAM's recalls).

    For a single probe ``[N]`` the fields are unbatched; for ``[B, N]`` probes
    each field has a leading batch dimension.

    Attributes:
        state: the final state, same shape as the probe.
        steps: ``int64`` number of update rounds (sweeps for ``async``) that
            changed the state, i.e. how many rounds it took to reach the fixed
            point (or ``max_steps`` if it was not reached).
        converged: ``bool``; a full round left the state unchanged.
        energies: ``[..., S + 1]`` energy before the first round and after each
            of the ``S`` rounds run (rounds after a probe converged repeat its
            final energy).
    """

    state: Tensor
    steps: Tensor
    converged: Tensor
    energies: Tensor


def sign_keep(field: Tensor, previous: Tensor) -> Tensor:
    """Threshold unit: +1 if the field is positive, -1 if negative, unchanged if 0.

    Keeping the old value on a zero field (Hopfield 1982's convention with
    zero thresholds) is what makes a fixed point well defined and the energy
    argument exact.
    """
    ones = torch.ones_like(previous)
    return torch.where(field > 0, ones, torch.where(field < 0, -ones, previous))


def check_bipolar(patterns: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless every entry is +1 or -1 (the storage rules assume it)."""
    if not bool(((patterns == 1) | (patterns == -1)).all()):
        raise ValueError(f"{name} must be bipolar (every entry +1 or -1)")


class HopfieldNetwork(nn.Module):
    """Classical binary Hopfield network (Hopfield 1982).

    Args:
        n: number of units ``N``.
        rule: ``"hebbian"`` — ``W = 1/N sum_mu xi^mu xi^mu^T`` (Hopfield 1982
            eq. 2, zero diagonal); or ``"pseudo_inverse"`` —
            ``W = 1/N Xi^T C^+ Xi`` with the overlap matrix ``C = Xi Xi^T / N``
            (projection rule), diagonal zeroed so that the energy argument
            holds. Both give a symmetric ``W`` with zero diagonal.

    The weights are a buffer (they are set by :meth:`store`, not learned by
    gradient descent), so ``.to(device)`` and ``state_dict`` work as usual.
    """

    weight: Tensor
    patterns: Tensor

    def __init__(self, n: int, rule: Rule = "hebbian") -> None:
        super().__init__()
        if n < 1:
            raise ValueError("n must be positive")
        if rule not in ("hebbian", "pseudo_inverse"):
            raise ValueError(f"unknown rule {rule!r}; expected 'hebbian' or 'pseudo_inverse'")
        self.n = n
        self.rule: Rule = rule
        self.register_buffer("weight", torch.zeros(n, n))
        self.register_buffer("patterns", torch.zeros(0, n))

    # -- learning ------------------------------------------------------------

    def store(self, patterns: Tensor, append: bool = False) -> None:
        """Set the weights so that ``patterns [P, N]`` (bipolar) become attractors.

        With ``append=True`` the new patterns join the ones already stored (the
        pseudo-inverse rule needs all of them, so the weights are recomputed).
        """
        if patterns.dim() == 1:
            patterns = patterns.unsqueeze(0)
        if patterns.dim() != 2 or patterns.shape[1] != self.n:
            raise ValueError(f"patterns must be [P, {self.n}], got {tuple(patterns.shape)}")
        check_bipolar(patterns, "patterns")
        patterns = patterns.to(self.weight)
        if append:
            patterns = torch.cat([self.patterns, patterns], dim=0)
        self.patterns = patterns
        if self.rule == "hebbian":
            weight = patterns.T @ patterns / self.n
        else:
            overlap = patterns @ patterns.T / self.n
            weight = patterns.T @ torch.linalg.pinv(overlap) @ patterns / self.n
        weight = 0.5 * (weight + weight.T)  # exact symmetry despite round-off
        self.weight = weight.fill_diagonal_(0.0)

    # -- dynamics ------------------------------------------------------------

    def energy(self, state: Tensor) -> Tensor:
        """Hopfield's energy ``E = -1/2 sum_ij w_ij s_i s_j`` (1982, eq. 7); ``[N] -> []``, ``[B, N] -> [B]``."""
        state = state.to(self.weight)
        return -0.5 * ((state @ self.weight) * state).sum(dim=-1)

    def recall(
        self,
        probe: Tensor,
        mode: Mode = "async",
        max_steps: int = 100,
        generator: torch.Generator | None = None,
    ) -> RecallResult:
        """Let ``probe`` (``[N]`` or ``[B, N]``) relax to a fixed point.

        Args:
            probe: initial state; entries +-1, or 0 for unknown bits (a partial
                cue).
            mode: ``"async"`` updates one unit at a time in a random order per
                sweep (Hopfield's dynamics: energy never rises, always
                converges); ``"sync"`` updates all units at once (faster, but
                may end in a 2-cycle, reported as ``converged=False``).
            max_steps: most sweeps (async) or parallel updates (sync).
            generator: source of the async update order (for reproducibility).
        """
        if probe.shape[-1] != self.n or probe.dim() not in (1, 2):
            raise ValueError(f"probe must be [{self.n}] or [B, {self.n}], got {tuple(probe.shape)}")
        if mode not in ("async", "sync"):
            raise ValueError(f"unknown mode {mode!r}; expected 'async' or 'sync'")
        single = probe.dim() == 1
        state = probe.reshape(-1, self.n).to(self.weight).clone()
        if mode == "async":
            result = relax_to_fixed_point(state, self.energy, lambda s: self._sweep(s, generator), max_steps)
        else:
            result = relax_to_fixed_point(state, self.energy, self._parallel, max_steps)
        return _unbatch(result) if single else result

    def _sweep(self, state: Tensor, generator: torch.Generator | None) -> Tensor:
        """One asynchronous sweep: every unit once, in random order (in place)."""
        order = torch.randperm(self.n, generator=generator, device="cpu").tolist()
        for i in order:
            field = state @ self.weight[:, i]
            state[:, i] = sign_keep(field, state[:, i])
        return state

    def _parallel(self, state: Tensor) -> Tensor:
        """One synchronous update of all units."""
        return sign_keep(state @ self.weight, state)


def relax_to_fixed_point(
    state: Tensor,
    energy: Callable[[Tensor], Tensor],
    update: Callable[[Tensor], Tensor],
    max_steps: int,
) -> RecallResult:
    """Iterate ``update`` until no row of ``state [B, N]`` changes (shared by Hopfield and BAM).

    ``update`` must leave rows that are at a fixed point unchanged, which holds
    for threshold dynamics with :func:`sign_keep`.
    """
    batch = state.shape[0]
    steps = torch.zeros(batch, dtype=torch.long, device=state.device)
    converged = torch.zeros(batch, dtype=torch.bool, device=state.device)
    energies = [energy(state)]
    for _ in range(max_steps):
        previous = state.clone()
        state = update(state)
        changed = (state != previous).any(dim=-1)
        steps += changed.long()
        converged |= ~changed
        energies.append(energy(state))
        if bool(converged.all()):
            break
    return RecallResult(state, steps, converged, torch.stack(energies, dim=-1))


def _unbatch(result: RecallResult) -> RecallResult:
    return RecallResult(*(field.squeeze(0) for field in result))


# ---------------------------------------------------------------------------
# Modern (continuous) Hopfield network
# ---------------------------------------------------------------------------


def retrieval_weights(query: Tensor, stored: Tensor, beta: float | Tensor, mask: Tensor | None = None) -> Tensor:
    """``softmax(beta X^T xi)``: how much each stored pattern is retrieved (Ramsauer et al. eq. 3).

    Args:
        query: ``[..., Q, d]`` state patterns ``xi`` (one per row).
        stored: ``[..., S, d]`` stored patterns ``X`` (one per row).
        beta: inverse temperature; large beta retrieves single patterns, small
            beta averages them (metastable states, their §2).
        mask: optional bool, broadcastable to ``[..., Q, S]``; ``False`` slots
            are never retrieved.

    Returns:
        ``[..., Q, S]``, rows summing to 1.
    """
    scores = beta * query @ stored.transpose(-1, -2)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def hopfield_update(query: Tensor, stored: Tensor, beta: float | Tensor, values: Tensor | None = None) -> Tensor:
    """One step of the modern Hopfield update ``xi_new = X softmax(beta X^T xi)`` (Ramsauer et al. eq. 3).

    ``values`` (``[..., S, d_v]``) replaces ``X`` on the output side, which is
    the key/value separation of their Hopfield layer; it defaults to ``stored``.
    Returns ``[..., Q, d_v]``.
    """
    return retrieval_weights(query, stored, beta) @ (stored if values is None else values)


def modern_energy(query: Tensor, stored: Tensor, beta: float | Tensor) -> Tensor:
    """Energy ``E = -1/beta log sum_i exp(beta x_i^T xi) + 1/2 xi^T xi`` (Ramsauer et al. eq. 2, without constants).

    :func:`hopfield_update` never increases it (their Theorem 1). ``[..., Q, d] -> [..., Q]``.
    """
    lse = torch.logsumexp(beta * query @ stored.transpose(-1, -2), dim=-1) / beta
    return -lse + 0.5 * (query * query).sum(dim=-1)


class ModernHopfield(nn.Module):
    """Trainable modern Hopfield layer (Ramsauer et al. 2020, §3 layer "Hopfield").

    ``Z = softmax(beta Q K^T) V`` with ``Q = R W_q`` (queries, the state
    patterns), ``K = Y W_k`` (stored patterns in the associative space) and
    ``V = Y W_v`` (or ``values W_v``). With ``update_steps > 1`` the query is
    first iterated with the Hopfield update in the associative space
    (``Q <- softmax(beta Q K^T) K``, eq. 3) before the final retrieval.

    The stored patterns ``Y`` can be passed to :meth:`forward` (e.g. a set
    given in the input, as in attention), or, if ``num_stored > 0``, they are
    learned parameters of the layer (their "HopfieldLayer" variant).

    Args:
        query_size: ``d_q``, features of a query.
        stored_size: ``d_y``, features of a stored pattern (default: ``query_size``).
        hidden_size: ``d_k``, width of the associative space.
        output_size: width of the output (default: ``stored_size``).
        value_size: features of the ``values`` argument, if values are given
            separately from the stored patterns (default: ``stored_size``).
        beta: inverse temperature (default ``1/sqrt(hidden_size)``, the
            attention scaling).
        learn_beta: make ``beta`` a (log-parametrised, hence positive)
            parameter.
        num_stored: number of learned stored patterns (0: they come from the
            input).
        update_steps: Hopfield updates, at least 1.
    """

    def __init__(
        self,
        query_size: int,
        stored_size: int | None = None,
        hidden_size: int = 64,
        output_size: int | None = None,
        value_size: int | None = None,
        beta: float | None = None,
        learn_beta: bool = False,
        num_stored: int = 0,
        update_steps: int = 1,
    ) -> None:
        super().__init__()
        stored_size = stored_size or query_size
        value_size = value_size or stored_size
        output_size = output_size or stored_size
        if update_steps < 1:
            raise ValueError("update_steps must be >= 1")
        self.query_size = query_size
        self.stored_size = stored_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.update_steps = update_steps
        self.query_proj = nn.Linear(query_size, hidden_size, bias=False)  # W_q
        self.key_proj = nn.Linear(stored_size, hidden_size, bias=False)  # W_k
        self.value_proj = nn.Linear(value_size, output_size, bias=False)  # W_v
        log_beta = torch.tensor(math.log(beta if beta is not None else 1.0 / math.sqrt(hidden_size)))
        if learn_beta:
            self.log_beta = nn.Parameter(log_beta)
        else:
            self.register_buffer("log_beta", log_beta)
        self.stored: nn.Parameter | None = None
        if num_stored > 0:
            self.stored = nn.Parameter(torch.randn(num_stored, stored_size) / math.sqrt(stored_size))

    @property
    def beta(self) -> Tensor:
        """Inverse temperature (positive by construction)."""
        return self.log_beta.exp()

    def forward(
        self,
        query: Tensor,
        stored: Tensor | None = None,
        values: Tensor | None = None,
        mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Retrieve from the stored patterns.

        Args:
            query: ``[B, d_q]`` or ``[B, T, d_q]``.
            stored: ``[B, S, d_y]`` per-example or ``[S, d_y]`` shared stored
                patterns; omit to use the learned ones.
            values: optional ``[B, S, d_v]`` / ``[S, d_v]`` values (default: ``stored``).
            mask: optional ``[B, S]`` or ``[S]`` bool, ``True`` = may be retrieved.
            return_attention: also return the retrieval weights ``[B, (T,) S]``.

        Returns:
            ``[B, output_size]`` or ``[B, T, output_size]`` (and the attention).
        """
        single = query.dim() == 2
        if single:
            query = query.unsqueeze(1)
        if stored is None:
            if self.stored is None:
                raise ValueError("no stored patterns: pass `stored` or build the layer with num_stored > 0")
            stored = self.stored
        if stored.dim() == 2:
            stored = stored.unsqueeze(0)
        values = stored if values is None else (values.unsqueeze(0) if values.dim() == 2 else values)

        q = self.query_proj(query)  # [B, T, d_k]
        k = self.key_proj(stored)  # [B|1, S, d_k]
        v = self.value_proj(values)  # [B|1, S, d_out]
        scores_mask = None
        if mask is not None:
            scores_mask = (mask if mask.dim() == 2 else mask.unsqueeze(0)).unsqueeze(1)  # [B|1, 1, S]
        for _ in range(self.update_steps - 1):
            q = retrieval_weights(q, k, self.beta, scores_mask) @ k
        attention = retrieval_weights(q, k, self.beta, scores_mask)
        out = attention @ v
        if single:
            out, attention = out.squeeze(1), attention.squeeze(1)
        return (out, attention) if return_attention else out
