"""Echo-state reservoir: a fixed random recurrent layer (Jaeger 2001; Jaeger & Haas 2004).

Jaeger, "The 'echo state' approach to analysing and training recurrent neural
networks", GMD Report 148 (2001), §6.4 (Mackey-Glass); Jaeger & Haas,
"Harnessing nonlinearity", Science 304 (2004).  An echo-state network is a
large random recurrent network that is never trained; only a linear read-out
of its state is fitted (by linear regression, :mod:`rnnspec.train.ridge`).

The update (Jaeger 2001's, without output feedback, at ``a = 1``; the leak
rate ``a`` is that of Jaeger, Lukoševičius, Popovici & Siewert 2007)::

    x~(t) = tanh(W_in u(t) + W x(t-1) + b)
    x(t)  = (1 - a) x(t-1) + a x~(t)

``W`` is sparse (a fraction ``density`` of its entries nonzero, uniform in
[-1, 1]) and rescaled so its spectral radius (largest |eigenvalue|) is
``spectral_radius``; below about 1 the state forgets its initial condition
(the echo-state property, Jaeger 2001 §3).  ``W_in`` is uniform in
``[-input_scale, input_scale]``, ``b`` uniform in ``[-bias_scale, bias_scale]``.

All three are buffers, not parameters: no optimizer moves them, they are
drawn from torch's global generator when the module is built (the trainer
seeds it with ``train.seed`` first, so a run is reproducible), and they are
in the ``state_dict``, so a checkpoint restores them exactly.

This module imports only torch: ``rnnspec compile -o`` copies it into
generated modules.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


def scaled_reservoir(hidden: int, spectral_radius: float, density: float) -> Tensor:
    """A random sparse ``[hidden, hidden]`` matrix with the given spectral radius.

    The eigenvalues are computed in float64 (400 units: about 0.1 s).  A matrix
    with no nonzero entry (a tiny ``density``) stays zero."""
    w = torch.rand(hidden, hidden, dtype=torch.float64) * 2.0 - 1.0
    keep = torch.rand(hidden, hidden, dtype=torch.float64) < density
    w = w * keep
    radius = float(torch.linalg.eigvals(w).abs().max()) if hidden > 0 else 0.0
    if radius > 0.0:
        w = w * (spectral_radius / radius)
    return w.to(torch.float32)


class Reservoir(nn.Module):
    """``step(u_t [B, I], x [B, H]) -> (x_new, x_new)``; the output is the state."""

    def __init__(
        self,
        input_size: int,
        hidden: int = 100,
        *,
        spectral_radius: float = 0.9,
        leak: float = 1.0,
        input_scale: float = 1.0,
        density: float = 0.1,
        bias_scale: float = 0.0,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden = hidden
        self.output_size = hidden
        self.spectral_radius = spectral_radius
        self.leak = leak
        self.register_buffer("weight", scaled_reservoir(hidden, spectral_radius, density))
        self.register_buffer("weight_in", (torch.rand(hidden, input_size) * 2.0 - 1.0) * input_scale)
        self.register_buffer("bias", (torch.rand(hidden) * 2.0 - 1.0) * bias_scale)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch_size, self.hidden, device=device, dtype=dtype)

    def step(self, u: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        pre = torch.addmm(self.bias, u, self.weight_in.t())
        cand = torch.tanh(torch.addmm(pre, x, self.weight.t()))
        new = cand if self.leak == 1.0 else (1.0 - self.leak) * x + self.leak * cand
        return new, new

    def sequence(self, u: Tensor, x: Tensor, valid: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """All steps of ``u`` [T, B, I] (as :meth:`step` would, one by one); steps
        where ``valid`` [T, B] is false keep the state and output zeros.  The
        input products are computed once for the sequence."""
        T = u.shape[0]
        pre = torch.addmm(self.bias, u.reshape(-1, u.shape[-1]), self.weight_in.t()).view(T, -1, self.hidden)
        w = self.weight.t()
        keep = valid.unbind(0) if valid is not None else None
        outs = []
        for k, p in enumerate(pre.unbind(0)):
            cand = torch.tanh(torch.addmm(p, x, w))
            new = cand if self.leak == 1.0 else (1.0 - self.leak) * x + self.leak * cand
            if keep is not None:
                new = torch.where(keep[k][:, None], new, x)
            x = new
            outs.append(new)
        y = torch.stack(outs, 0) if outs else u.new_zeros(0, u.shape[1], self.hidden)
        if valid is not None:
            y = torch.where(valid[:, :, None], y, torch.zeros((), dtype=y.dtype, device=y.device))
        return y, x
