"""Auxiliary losses that network parts add to the training objective.

A module whose forward computes a loss of its own, besides the network's
output (the history compressor's automatizer predicting its next input,
Schmidhuber 1992), stores it as ``module.aux_loss`` (a scalar tensor, a mean
over what it scored).  After each forward the trainer takes the sum over all
submodules, adds it to the task loss it back-propagates, and logs it as the
metric ``aux_loss``.  Taking clears it, so a value is never counted twice.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn


def take_aux_loss(net: nn.Module) -> Optional[torch.Tensor]:
    """The sum of the submodules' ``aux_loss`` from the last forward (None if
    no module set one); each is reset to None."""
    total: Optional[torch.Tensor] = None
    for m in net.modules():
        value = getattr(m, "aux_loss", None)
        if isinstance(value, torch.Tensor):
            total = value if total is None else total + value
            m.aux_loss = None
    return total


def add_aux(window: dict[str, Any], aux: torch.Tensor, parts: int) -> None:
    """Count one chunk's auxiliary loss (of a batch cut into ``parts`` chunks)
    in a logging window: the window's ``aux_loss`` is the mean per batch."""
    window["aux_sum"] = window.get("aux_sum", 0.0) + aux.detach() / parts
    window["aux_n"] = window.get("aux_n", 0.0) + 1.0 / parts


def aux_metrics(window: dict[str, Any]) -> dict[str, float]:
    """``{"aux_loss": mean}`` for a window that counted one, else ``{}``."""
    if not window.get("aux_n"):
        return {}
    return {"aux_loss": float(window["aux_sum"]) / float(window["aux_n"])}
