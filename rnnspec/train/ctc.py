"""CTC decoding and the label error rate.

Connectionist temporal classification (Graves, Fernández, Gomez &
Schmidhuber, ICML 2006) gives a network with ``C`` outputs per frame, one
of them the *blank*, a distribution over label sequences: a frame-level path
``pi`` maps to labels by ``B(pi)``, merging repeated outputs and then
dropping blanks (eq. 2 there), and ``p(l | x)`` sums ``p(pi | x)`` over the
paths with ``B(pi) = l`` (eq. 3).  Training maximises that sum
(``torch.nn.functional.ctc_loss``); here is what turns outputs back into
labels, and how they are scored:

* :func:`greedy_decode` -- best-path decoding (Graves et al. 2006, eq. 4):
  ``B`` of the most likely output at every frame.  Cheap; it finds the most
  probable labelling when one path dominates, as it does for a confident
  network (CTC outputs are spiky: mostly blank, one frame per label).
* :func:`prefix_beam_search` -- CTC prefix search keeping the ``beam`` most
  probable label prefixes, each with the probability of its paths ending
  in a blank and in a non-blank (Graves 2012, *Supervised sequence
  labelling*, Alg. 7.1; Hannun et al. 2014, without a language model).
  It sums over paths, so it can find a labelling whose probability is
  spread over many paths that best-path decoding misses.
* :func:`edit_distance` -- Levenshtein distance (substitutions, insertions,
  deletions); the *label error rate* is the total edit distance to the
  references divided by the total reference length (Graves et al. 2006,
  eq. 1: the TIMIT "phoneme error rate", PER).

The blank is an explicit index (default :data:`BLANK` = 0, torch's default;
Graves uses the last output).  Labels are the other indices.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import Tensor

__all__ = ["BLANK", "check_blank", "collapse", "greedy_decode", "prefix_beam_search", "beam_decode",
           "edit_distance", "label_errors", "decode"]

BLANK = 0
"""Default index of the CTC blank."""

NEG_INF = -math.inf


def check_blank(blank: int, num_classes: int) -> int:
    """``blank`` as an index into ``num_classes`` outputs (``ValueError`` otherwise)."""
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < num_classes:
        raise ValueError(f"the CTC blank must be an output index 0..{num_classes - 1}, got {blank!r}")
    return blank


def collapse(path: Iterable[int], blank: int = BLANK) -> list[int]:
    """``B(path)``: repeated outputs merged, then blanks removed."""
    out: list[int] = []
    prev = None
    for k in path:
        if k != prev and k != blank:
            out.append(int(k))
        prev = k
    return out


def greedy_decode(logits: Tensor, lengths: Tensor | Sequence[int] | None = None, blank: int = BLANK) -> list[list[int]]:
    """Best-path labels of each row of batch-first scores ``[B, T, C]`` (logits,
    probabilities or log-probabilities: only the argmax matters), each cut to
    its length."""
    if logits.dim() != 3:
        raise ValueError(f"expected batch-first scores [B, T, C], got shape {tuple(logits.shape)}")
    check_blank(blank, int(logits.shape[-1]))
    best = logits.argmax(-1).cpu()
    return [collapse(row[:n].tolist(), blank) for row, n in zip(best, _lengths(best, lengths))]


def _lengths(scores: Tensor, lengths: Tensor | Sequence[int] | None) -> list[int]:
    """Each row's length (the full ``T`` when ``lengths`` is None)."""
    if lengths is None:
        return [int(scores.shape[1])] * int(scores.shape[0])
    return [int(n) for n in (lengths.tolist() if isinstance(lengths, Tensor) else lengths)]


def _lse(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = a if a > b else b
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam_search(log_probs: Tensor, beam: int = 8, blank: int = BLANK, prune: float = -12.0) -> list[int]:
    """The most probable labelling found by CTC prefix beam search over one
    sequence's per-frame log-probabilities ``[T, C]``.

    Each prefix ``l`` carries ``p_b`` (paths for ``l`` ending in a blank)
    and ``p_nb`` (ending in the last label of ``l``).  At frame ``t``, for
    output ``k`` with probability ``y``: a blank keeps ``l`` (``p_b += (p_b +
    p_nb) y``); repeating ``l``'s last label keeps ``l`` (``p_nb += p_nb y``)
    and extends it only from ``p_b`` (a blank must separate doubled
    labels); any other label extends ``l`` from both.  The ``beam`` best
    prefixes by ``p_b + p_nb`` survive each frame.  Outputs with
    ``log y < prune`` at a frame are not tried as extensions (they cannot
    change the result at that precision)."""
    if log_probs.dim() != 2:
        raise ValueError(f"expected log-probabilities [T, C], got shape {tuple(log_probs.shape)}")
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    C = int(log_probs.shape[1])
    check_blank(blank, C)
    lp = log_probs.detach().float().cpu().tolist()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for frame in lp:
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], pb: float, pnb: float) -> None:
            cur = nxt.get(prefix)
            if cur is None:
                nxt[prefix] = [pb, pnb]
            else:
                cur[0] = _lse(cur[0], pb)
                cur[1] = _lse(cur[1], pnb)

        candidates = [k for k in range(C) if k != blank and frame[k] >= prune]
        yb = frame[blank]
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            add(prefix, total + yb, NEG_INF)  # a blank
            last = prefix[-1] if prefix else None
            for k in candidates:
                y = frame[k]
                if k == last:
                    add(prefix, NEG_INF, pnb + y)  # the repeat merges into the last label
                    add(prefix + (k,), NEG_INF, pb + y)  # a new label after a blank
                else:
                    add(prefix + (k,), NEG_INF, total + y)
        ranked = sorted(nxt.items(), key=lambda kv: _lse(kv[1][0], kv[1][1]), reverse=True)[:beam]
        beams = {p: (v[0], v[1]) for p, v in ranked}
    best = max(beams.items(), key=lambda kv: _lse(kv[1][0], kv[1][1]))
    return list(best[0])


def beam_decode(logits: Tensor, lengths: Tensor | Sequence[int] | None = None, blank: int = BLANK,
                beam: int = 8) -> list[list[int]]:
    """:func:`prefix_beam_search` on each row of batch-first logits ``[B, T, C]``."""
    if logits.dim() != 3:
        raise ValueError(f"expected batch-first scores [B, T, C], got shape {tuple(logits.shape)}")
    logp = logits.detach().float().log_softmax(-1).cpu()
    return [prefix_beam_search(row[:n], beam, blank) for row, n in zip(logp, _lengths(logp, lengths))]


def decode(logits: Tensor, lengths: Tensor | Sequence[int] | None = None, blank: int = BLANK,
           method: str = "greedy", beam: int = 8) -> list[list[int]]:
    """Labels of batch-first logits ``[B, T, C]`` by ``method`` (greedy or beam)."""
    if method == "greedy":
        return greedy_decode(logits, lengths, blank)
    if method == "beam":
        return beam_decode(logits, lengths, blank, beam)
    raise ValueError(f"unknown CTC decoding {method!r} (greedy or beam)")


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and
    deletions that turn ``a`` into ``b`` (one row of the DP table at a time)."""
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def label_errors(hypotheses: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> tuple[int, int, int]:
    """``(edits, reference labels, wrong sequences)`` summed over pairs; the
    label error rate is ``edits / reference labels``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = total = wrong = 0
    for h, r in zip(hypotheses, references):
        d = edit_distance(h, r)
        edits += d
        total += len(r)
        wrong += d > 0
    return edits, total, wrong
