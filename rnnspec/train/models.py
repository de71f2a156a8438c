"""The module a run trains: the spec's network, or for ``objective: seq2seq``
an encoder-decoder pair built from it.

Seq2seq: the encoder is the network's recurrent layers reading
``train.seq2seq.source`` (its own input layer, no read-out); its final state
is the decoder's initial state.  The decoder is the network itself, fed the
target shifted right (``bos`` first) during training (teacher forcing) and
its own previous prediction when decoding.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from rnnspec.compiler import build
from rnnspec.spec.model import Spec


class Seq2Seq(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, bos: int, eos: Optional[int], max_len: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.bos, self.eos, self.max_len = bos, eos, max_len
        self.batch_first = getattr(decoder, "batch_first", False)

    def encode(self, src: Tensor, src_lengths: Optional[Tensor]) -> Any:
        _, state = self.encoder(src, None, src_lengths)
        return state

    def forward(self, src: Tensor, src_lengths: Optional[Tensor], tgt: Tensor, tgt_lengths: Optional[Tensor]) -> Tensor:
        """Teacher-forced decoder logits; ``tgt`` is [B, U] target ids (batch-first)."""
        state = self.encode(src, src_lengths)
        bos = torch.full((tgt.shape[0], 1), self.bos, dtype=torch.long, device=tgt.device)
        inp = torch.cat([bos, tgt[:, :-1].long().clamp(min=0)], 1)
        if not self.batch_first:
            inp = inp.t()
        y, _ = self.decoder(inp, state, tgt_lengths)
        return y

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Optional[Tensor], max_len: Optional[int] = None) -> list[list[int]]:
        state = self.encode(src, src_lengths)
        B = src.shape[0] if self.batch_first else src.shape[1]
        tok = torch.full((B,), self.bos, dtype=torch.long, device=src.device)
        out: list[list[int]] = [[] for _ in range(B)]
        done = torch.zeros(B, dtype=torch.bool)
        for _ in range(max_len or self.max_len):
            x = tok.view(B, 1) if self.batch_first else tok.view(1, B)
            y, state = self.decoder(x, state)
            logits = y[:, -1] if self.batch_first else y[-1]
            tok = logits.argmax(-1)
            for i, k in enumerate(tok.tolist()):
                if not done[i]:
                    if self.eos is not None and k == self.eos:
                        done[i] = True
                    else:
                        out[i].append(k)
            if bool(done.all()):
                break
        return out


def encoder_spec(spec: Spec) -> Spec:
    """The spec of a seq2seq encoder: the network's layers, the source input, no read-out."""
    assert spec.model is not None and spec.train is not None and spec.train.seq2seq is not None
    model = spec.model.model_copy(update={"input": spec.train.seq2seq.source, "output": None})
    enc = spec.model_copy(update={"model": model})
    enc._where, enc._library, enc._file = spec._where, spec._library, spec._file
    return enc


def build_model(spec: Spec, objective: str) -> nn.Module:
    """The module to train (parameters created in a fixed order, so a seed fixes them)."""
    if objective != "seq2seq":
        return build(spec)
    s2s = spec.train.seq2seq  # type: ignore[union-attr]
    assert s2s is not None
    decoder = build(spec)
    encoder = build(encoder_spec(spec))
    return Seq2Seq(encoder, decoder, s2s.bos, s2s.eos, s2s.max_len)
