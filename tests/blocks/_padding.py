"""A check the block specs share: padding is invisible."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def assert_padding_is_invisible(net: nn.Module, x: Tensor, lengths: Tensor) -> None:
    """``x`` [T, B, F] with NaN past each length: the batch's outputs equal
    each sequence run alone, and are zero past its length."""
    y, _ = net(x, lengths=lengths)
    for b in range(x.shape[1]):
        n = int(lengths[b])
        alone, _ = net(x[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b : b + 1], alone)
        assert torch.all(y[n:, b] == 0)
