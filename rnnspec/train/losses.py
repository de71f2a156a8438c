"""Objectives: how a batch is scored, for every task the trainer knows.

=========  ======================================  ==========================
objective  target                                  loss (masked, summed)
=========  ======================================  ==========================
lm         next token per step                     cross-entropy; perplexity, bits per token
classify   one class per sequence (last valid      cross-entropy; accuracy
           step)
tag        a class per step, or a multi-hot set    cross-entropy / BCE; accuracy (multi-hot: also
                                                   bit_errors, micro-F1 f1)
regress    a vector per step or per sequence       MSE; MAE (with train.anomaly: also auc,
                                                   precision, recall, f1; rnnspec.train.anomaly)
seq2seq    a token sequence (teacher forcing)      cross-entropy; accuracy, perplexity, exact
ctc        an unaligned label sequence             CTC (blank explicit, 0 by
                                                   default); label error rate
=========  ======================================  ==========================

``exact`` (seq2seq) is the share of target sequences whose every token is
the argmax under teacher forcing; that is exactly the share that greedy
decoding reproduces in full (each greedy input is then the teacher's).

Every loss is a *sum* over scored elements; the trainer divides by the
number of scored elements of the whole (global) batch, so a batch split into
truncated-BPTT chunks or over processes gives exactly the gradient of the
unsplit batch.  Per-step losses score only real steps (``lengths``) where
``extras["loss_mask"]`` (if any) is true.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

LN2 = math.log(2.0)


@dataclass
class Prepared:
    """A batch in the trainer's terms: ``x`` in the network's layout, targets
    and masks batch-first ([B, T, ...])."""

    x: Tensor
    lengths: Optional[Tensor]  # None: every row is full length (LM stream)
    y: Optional[Tensor]
    mask: Optional[Tensor]  # [B, T] bool: scored steps (per-step targets)
    count: float  # scored elements in this (local) batch
    extras: dict[str, Any] = field(default_factory=dict)
    batch_first: bool = True
    size: int = 0
    steps: int = 0
    tokens: int = 0  # input steps (for throughput)


def _bf(t: Tensor, batch_first: bool) -> Tensor:
    """[T, B, ...] -> [B, T, ...] unless already batch-first."""
    return t if batch_first else t.transpose(0, 1)


class Objective:
    """Scoring for one objective; see the module doc."""

    def __init__(self, name: str, loss: str, *, per_step: bool, every_step_output: bool, num_outputs: int,
                 multi_label: bool = False, blank: int = 0, decode: str = "greedy", beam: int = 8) -> None:
        self.name = name
        self.loss = loss
        self.per_step = per_step
        self.every_step_output = every_step_output
        self.num_outputs = num_outputs
        self.multi_label = multi_label
        self.blank = blank  # ctc: the blank output
        self.decode = decode  # ctc: greedy (best path) or beam (prefix beam search)
        self.beam = beam

    anomaly: Any = None  # train.anomaly (an AnomalySpec) for a per-step regress predictor; set by load_data

    # ---- which metrics, and which direction is better
    @property
    def metrics(self) -> tuple[str, ...]:
        if self.name == "lm":
            return ("loss", "perplexity", "bpc", "accuracy")
        if self.name == "seq2seq":
            return ("loss", "perplexity", "accuracy", "exact")
        if self.name == "tag" and self.multi_label:
            return ("loss", "accuracy", "bit_errors", "f1")
        if self.name == "regress" and self.anomaly is not None:
            return ("loss", "mae", "auc", "precision", "recall", "f1")
        if self.name in ("classify", "tag"):
            return ("loss", "accuracy")
        if self.name == "regress":
            return ("loss", "mae")
        if self.name == "ctc":
            return ("loss", "ler")
        return ("loss",)

    @staticmethod
    def mode(metric: str) -> str:
        return "max" if metric in ("accuracy", "f1", "exact", "auc", "precision", "recall") else "min"

    # ---- batches
    def prepare(self, batch: Any, batch_first: bool) -> Prepared:
        """A :class:`rnnspec.data.Batch` (or an LM stream batch) -> :class:`Prepared`."""
        x, y = batch.x, batch.y
        B = int(batch.lengths.shape[0])
        T = int(x.shape[1] if batch.batch_first else x.shape[0])
        lengths = batch.lengths
        full = bool((lengths == T).all())
        mask = None
        yb = None
        extras = dict(batch.extras)
        if y is not None:
            yb = _bf(y, batch.batch_first) if batch.per_step else y
        if self.per_step:
            mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
            lm = extras.get("loss_mask")
            if isinstance(lm, Tensor):
                mask = mask & _bf(lm, batch.batch_first).to(torch.bool).cpu()
            count = float(mask.sum())
            if self.name == "regress" or (self.name == "tag" and self.multi_label):
                count *= float(yb.shape[-1]) if yb is not None and yb.dim() == 3 else 1.0
        elif self.name in ("seq2seq", "ctc"):
            assert yb is not None
            if yb.dim() == 1:
                yb = yb.unsqueeze(1)
            tl = extras.get("target_lengths")
            if not isinstance(tl, Tensor):
                tl = torch.full((B,), int(yb.shape[1]), dtype=torch.int64)
            extras["target_lengths"] = tl
            if self.name == "seq2seq":
                mask = torch.arange(int(yb.shape[1])).unsqueeze(0) < tl.unsqueeze(1)
                count = float(tl.sum())
            else:
                count = float(B)
        elif self.name == "regress":
            count = float(B * (yb[0].numel() if yb is not None else 1))
        elif self.name == "classify" and yb is not None:
            yb = yb.reshape(B)
            count = float(B)
        else:
            count = float(B)
        return Prepared(x=x, lengths=None if full else lengths, y=yb, mask=mask, count=count,
                        extras=extras, batch_first=batch.batch_first, size=B, steps=T, tokens=int(lengths.sum()))

    def to(self, p: Prepared, device: torch.device) -> Prepared:
        def mv(v: Any) -> Any:
            return v.to(device, non_blocking=True) if isinstance(v, Tensor) else v

        return Prepared(x=mv(p.x), lengths=p.lengths, y=mv(p.y), mask=mv(p.mask), count=p.count,
                        extras={k: mv(v) for k, v in p.extras.items()}, batch_first=p.batch_first, size=p.size,
                        steps=p.steps, tokens=p.tokens)

    # ---- scoring
    def score(self, out: Tensor, p: Prepared, start: int = 0, stop: Optional[int] = None,
              chunk_lengths: Optional[Tensor] = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Summed loss of the network output ``out`` for steps ``start:stop`` of
        ``p`` (the whole batch by default), and summed statistics."""
        stop = p.steps if stop is None else stop
        out = out.float()
        if self.name == "seq2seq":
            o = _bf(out, p.batch_first)
            loss, stats = self._per_step(o, p.y, p.mask)
            wrong = ((o.argmax(-1) != p.y) & p.mask).sum(1)
            stats.update(seq_right=(wrong == 0).sum().to(o.dtype).detach(), n_seq=o.new_tensor(float(p.size)))
            return loss, stats
        if self.name == "ctc":
            return self.score_ctc(out, p)
        if self.per_step:
            o = _bf(out, p.batch_first)  # [B, t, C]
            y = p.y[:, start:stop]
            m = p.mask[:, start:stop]
            return self._per_step(o, y, m)
        # per sequence: the output at each sequence's last valid step, scored
        # in the chunk that holds that step
        L = p.lengths if p.lengths is not None else torch.full((p.size,), p.steps)
        ends_here = (L > start) & (L <= stop)
        if out.dim() == 3:  # every-step output: pick the last valid step ourselves
            o = _bf(out, p.batch_first)
            idx = (L - 1 - start).clamp(0, o.shape[1] - 1).to(o.device)
            o = o[torch.arange(o.shape[0], device=o.device), idx]
        else:
            o = out
        keep = ends_here.to(o.device)
        if self.name == "classify":
            ce = F.cross_entropy(o, p.y.long(), reduction="none")
            correct = (o.argmax(-1) == p.y).float()
            return (ce * keep).sum(), {"correct": (correct * keep).sum().detach(), "n_acc": keep.sum().float()}
        # regress, per sequence
        y = p.y.reshape(o.shape[0], -1).to(o.dtype)
        o = o.reshape(o.shape[0], -1)
        if o.shape != y.shape:
            raise ValueError(f"the network gives {tuple(o.shape[1:])} values per sequence, the targets have {tuple(y.shape[1:])}")
        se = ((o - y) ** 2).sum(-1)
        ae = (o - y).abs().sum(-1)
        return (se * keep).sum(), {"abs": (ae * keep).sum().detach()}

    def _per_step(self, o: Tensor, y: Tensor, m: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        mf = m.to(o.dtype)
        if self.name in ("lm", "tag", "seq2seq") and not self.multi_label:
            ce = F.cross_entropy(o.reshape(-1, o.shape[-1]), y.reshape(-1).long(), reduction="none").view_as(mf)
            correct = (o.argmax(-1) == y).to(o.dtype)
            return (ce * mf).sum(), {"correct": (correct * mf).sum().detach(), "n_acc": mf.sum()}
        if self.name == "tag":  # multi-hot sets, binary cross-entropy per channel
            y = y.to(o.dtype)
            bce = F.binary_cross_entropy_with_logits(o, y, reduction="none").sum(-1)
            wrong_bits = ((o > 0) != (y > 0.5)).sum(-1).to(o.dtype)
            right = (wrong_bits == 0).to(o.dtype)
            scored = (mf.sum(1) > 0).to(o.dtype)  # sequences with at least one scored step
            pred, true, m3 = (o > 0), (y > 0.5), mf.unsqueeze(-1)
            return (bce * mf).sum(), {
                "tp": ((pred & true).to(o.dtype) * m3).sum().detach(),  # micro-F1 counts, over every tag
                "fp": ((pred & ~true).to(o.dtype) * m3).sum().detach(),
                "fn": ((~pred & true).to(o.dtype) * m3).sum().detach(),
                "correct": (right * mf).sum().detach(),
                "n_acc": mf.sum(),
                "bits_wrong": (wrong_bits * mf).sum().detach(),  # Graves et al. 2014's metric: bit errors per sequence
                "n_seq": scored.sum(),
            }
        # regress per step
        y = y.to(o.dtype)
        if y.dim() == 2:
            y = y.unsqueeze(-1)
        if o.shape[-1] != y.shape[-1]:
            raise ValueError(f"the network gives {o.shape[-1]} values per step, the targets have {y.shape[-1]}")
        if self.loss == "bce":
            err = F.binary_cross_entropy_with_logits(o, y, reduction="none").sum(-1)
        else:
            err = ((o - y) ** 2).sum(-1)
        ae = (o - y).abs().sum(-1)
        return (err * mf).sum(), {"abs": (ae * mf).sum().detach()}

    def score_ctc(self, out: Tensor, p: Prepared) -> tuple[Tensor, dict[str, Tensor]]:
        o = _bf(out.float(), p.batch_first)  # [B, T, C]
        logp = o.log_softmax(-1).transpose(0, 1)  # [T, B, C]
        L = p.lengths if p.lengths is not None else torch.full((p.size,), p.steps)
        tl = p.extras["target_lengths"].cpu()
        loss = F.ctc_loss(logp, p.y.long(), L.cpu(), tl, blank=self.blank, reduction="sum", zero_infinity=True)
        return loss, {}

    def eval_stats(self, out: Tensor, p: Prepared) -> dict[str, float]:
        """Statistics only evaluation gathers (they need decoding, too slow for
        every training step): for ctc the edit distance of the decoded labels
        to the targets (``edits``), the target labels (``n_labels``) and the
        sequences with any error (``seq_wrong``)."""
        if self.name != "ctc":
            return {}
        from rnnspec.train.ctc import decode, label_errors

        o = _bf(out.float(), p.batch_first)
        L = p.lengths if p.lengths is not None else torch.full((p.size,), p.steps)
        hyps = decode(o, L, self.blank, self.decode, self.beam)
        tl = p.extras["target_lengths"].cpu().tolist()
        y = p.y.cpu()
        refs = [y[i, : int(n)].tolist() for i, n in enumerate(tl)]
        edits, total, wrong = label_errors(hyps, refs)
        return {"edits": float(edits), "n_labels": float(total), "seq_wrong": float(wrong), "n_seq": float(len(refs))}

    # ---- summaries
    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        """Metric values from summed statistics (``loss_sum``, ``count``, ...)."""
        n = max(totals.get("count", 0.0), 1e-12)
        loss = totals.get("loss_sum", 0.0) / n
        out = {"loss": loss}
        if self.name in ("lm", "seq2seq"):
            out["perplexity"] = math.exp(min(loss, 50.0))
        if self.name == "lm":
            out["bpc"] = loss / LN2
        if "correct" in totals and totals.get("n_acc", 0) > 0:
            out["accuracy"] = totals["correct"] / totals["n_acc"]
        if "abs" in totals:
            out["mae"] = totals["abs"] / n
        if "bits_wrong" in totals and totals.get("n_seq", 0) > 0:
            out["bit_errors"] = totals["bits_wrong"] / totals["n_seq"]
        if "tp" in totals:
            tp = totals["tp"]
            out["f1"] = 2 * tp / max(2 * tp + totals.get("fp", 0.0) + totals.get("fn", 0.0), 1e-12)
        if "seq_right" in totals and totals.get("n_seq", 0) > 0:
            out["exact"] = totals["seq_right"] / totals["n_seq"]
        if "edits" in totals and totals.get("n_labels", 0) > 0:
            out["ler"] = totals["edits"] / totals["n_labels"]  # label error rate (TIMIT's PER)
            if totals.get("n_seq", 0) > 0:
                out["seq_error"] = totals.get("seq_wrong", 0.0) / totals["n_seq"]
        return out

