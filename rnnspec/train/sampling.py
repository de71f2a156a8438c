"""Text generation from a trained language model: temperature and top-k."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn


@torch.no_grad()
def sample_ids(
    net: nn.Module,
    prompt: Tensor,
    length: int,
    *,
    temperature: float = 0.8,
    top_k: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> list[int]:
    """Feed ``prompt`` (1-D ids), then draw ``length`` tokens one at a time,
    carrying the recurrent state (one step per token, no re-reading)."""
    was_training = net.training
    net.eval()
    batch_first = getattr(net, "batch_first", False)

    def run(ids: Tensor, state: Any) -> tuple[Tensor, Any]:
        x = ids.view(1, -1) if batch_first else ids.view(-1, 1)
        y, state = net(x, state)
        last = y[0, -1] if batch_first else y[-1, 0]
        return last, state

    logits, state = run(prompt, None)
    out: list[int] = []
    for _ in range(length):
        scaled = logits.float() / max(temperature, 1e-6)
        if top_k is not None and top_k < scaled.numel():
            kth = torch.topk(scaled, top_k).values[-1]
            scaled = torch.where(scaled < kth, torch.full_like(scaled, float("-inf")), scaled)
        nxt = int(torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator))
        out.append(nxt)
        logits, state = run(torch.tensor([nxt], device=prompt.device), state)
    net.train(was_training)
    return out
