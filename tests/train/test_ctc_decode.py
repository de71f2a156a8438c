"""CTC decoding and the label error rate (rnnspec/train/ctc.py), checked against
hand-worked cases and against brute force over every frame path."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from rnnspec.data.batch import Batch
from rnnspec.train.ctc import (
    beam_decode,
    collapse,
    edit_distance,
    greedy_decode,
    label_errors,
    prefix_beam_search,
)
from rnnspec.train.losses import Objective


def _onehot_logits(path: list[int], C: int, high: float = 5.0) -> torch.Tensor:
    """Logits [T, C] whose argmax at step t is path[t]."""
    z = torch.zeros(len(path), C)
    z[torch.arange(len(path)), torch.tensor(path)] = high
    return z


# ---------------------------------------------------------------- edit distance

@pytest.mark.parametrize(
    "a, b, d",
    [
        ([], [], 0),
        ([1, 2, 3], [], 3),
        ([], [4, 4], 2),
        ([1, 2, 3], [1, 2, 3], 0),
        ([1, 2, 3], [1, 3], 1),  # a deletion
        ([1, 3], [1, 2, 3], 1),  # an insertion
        ([1, 2, 3], [1, 9, 3], 1),  # a substitution
        ([1, 2, 3, 4], [2, 1, 4, 3], 3),  # no transpositions in Levenshtein distance: 3, not 2
        (list(b"kitten"), list(b"sitting"), 3),  # the textbook pair
        (list(b"flaw"), list(b"lawn"), 2),
        ([5, 5, 5], [5], 2),
    ],
)
def test_edit_distance_values(a: list[int], b: list[int], d: int) -> None:
    assert edit_distance(a, b) == d
    assert edit_distance(b, a) == d


def test_label_errors_sum_edits_over_reference_length() -> None:
    edits, total, wrong = label_errors([[1, 2], [3], [4, 4, 4]], [[1, 2], [3, 5], [4]])
    assert (edits, total, wrong) == (0 + 1 + 2, 2 + 2 + 1, 2)
    with pytest.raises(ValueError):
        label_errors([[1]], [])


# ---------------------------------------------------------------- greedy

def test_collapse_merges_repeats_then_drops_blanks() -> None:
    assert collapse([0, 1, 1, 0, 0, 2, 2, 2, 0]) == [1, 2]
    assert collapse([1, 1, 0, 1]) == [1, 1]  # a blank separates a doubled label
    assert collapse([1, 1, 1]) == [1]  # without one, repeats merge
    assert collapse([0, 0, 0]) == []
    assert collapse([3, 1, 3, 3], blank=3) == [1]  # another blank index


def test_greedy_decode_on_hand_made_logits() -> None:
    paths = [[0, 3, 3, 0, 3, 1, 1, 0], [2, 2, 2, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
    logits = torch.stack([_onehot_logits(p, 4) for p in paths])  # [3, 8, 4]
    assert greedy_decode(logits, torch.tensor([8, 8, 8])) == [[3, 3, 1], [2], []]
    # lengths cut the padding: row 0 stops before its last '3, 1, 1'
    assert greedy_decode(logits, torch.tensor([4, 2, 1])) == [[3], [2], []]
    assert greedy_decode(logits.log_softmax(-1)) == greedy_decode(logits)  # only the argmax matters
    # with blank 3 the same argmaxes read differently: 0 is a label, 3 the blank
    assert greedy_decode(logits, None, blank=3) == [[0, 0, 1, 0], [2, 0], [0]]
    with pytest.raises(ValueError, match="blank"):
        greedy_decode(logits, None, blank=4)


# ---------------------------------------------------------------- beam search

def _brute_force(logp: torch.Tensor, blank: int) -> dict[tuple[int, ...], float]:
    """p(l | x) for every labelling l, summing over all C^T frame paths."""
    T, C = logp.shape
    probs: dict[tuple[int, ...], float] = {}
    p = logp.exp().tolist()
    for path in itertools.product(range(C), repeat=T):
        pr = math.prod(p[t][k] for t, k in enumerate(path))
        lab = tuple(collapse(path, blank))
        probs[lab] = probs.get(lab, 0.0) + pr
    return probs


def test_prefix_beam_search_finds_the_labelling_best_path_misses() -> None:
    # Every frame prefers the blank (0.6), so the best path is all blanks (the
    # empty labelling, p = 0.6^3 = 0.216); but label 1 on any of the frames
    # sums to more: p([1]) = 1 - 0.216 - p(other labellings) > 0.216.
    probs = torch.tensor([[0.6, 0.4, 0.0]] * 3).clamp_min(1e-9)
    logp = probs.log()
    assert greedy_decode(logp.unsqueeze(0)) == [[]]
    exact = _brute_force(logp, 0)
    assert max(exact, key=exact.get) == (1,)
    assert prefix_beam_search(logp, beam=8) == [1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("blank", [0, 2])
def test_prefix_beam_search_matches_brute_force(seed: int, blank: int) -> None:
    g = torch.Generator().manual_seed(seed)
    logp = (torch.randn(5, 3, generator=g) * 1.5).log_softmax(-1)
    exact = _brute_force(logp, blank)
    best = max(exact, key=exact.get)
    # a beam wide enough to hold every prefix is exact
    assert tuple(prefix_beam_search(logp, beam=64, blank=blank, prune=-math.inf)) == best


def test_beam_decode_batches_and_cuts_lengths() -> None:
    logits = torch.stack([_onehot_logits([1, 1, 0, 1, 2], 3), _onehot_logits([2, 0, 2, 2, 2], 3)])
    assert beam_decode(logits, torch.tensor([5, 2]), beam=4) == [[1, 1, 2], [2]]
    assert beam_decode(logits, None, beam=4) == greedy_decode(logits)  # confident outputs: the same


# ---------------------------------------------------------------- the objective

def test_ctc_objective_reports_label_error_rate() -> None:
    # two sequences, targets [1, 2] and [3]; outputs decode to [1, 2] and [3, 3]
    out = torch.stack([_onehot_logits([1, 0, 2, 0, 0], 4), _onehot_logits([3, 0, 3, 0, 0], 4)])
    y = torch.tensor([[1, 2], [3, 0]])
    b = Batch(x=torch.zeros(2, 5, 1), y=y, lengths=torch.tensor([5, 4]),
              extras={"target_lengths": torch.tensor([2, 1])}, batch_first=True, per_step=False)
    obj = Objective("ctc", "ctc", per_step=False, every_step_output=True, num_outputs=4)
    assert obj.metrics == ("loss", "ler")
    p = obj.prepare(b, True)
    stats = obj.eval_stats(out, p)
    assert stats == {"edits": 1.0, "n_labels": 3.0, "seq_wrong": 1.0, "n_seq": 2.0}
    res = obj.summarize({"loss_sum": 2.0, "count": 2.0, **stats})
    assert res["ler"] == pytest.approx(1 / 3) and res["seq_error"] == pytest.approx(0.5)
    assert Objective.mode("ler") == "min"
    # the blank is the objective's: with blank 3, sequence 2's '3 3' is nothing and '0' is a label
    obj3 = Objective("ctc", "ctc", per_step=False, every_step_output=True, num_outputs=4, blank=3)
    y3 = torch.tensor([[1, 2], [0, 0]])
    b3 = Batch(x=b.x, y=y3, lengths=b.lengths, extras=b.extras, batch_first=True, per_step=False)
    s3 = obj3.eval_stats(out, obj3.prepare(b3, True))
    # decoded: [1, 0, 2, 0, 0] -> [1, 0, 2, 0] vs [1, 2]: 2 edits; [3, 0, 3, 0] (length 4) -> [0, 0] vs [0]: 1
    assert (s3["edits"], s3["n_labels"]) == (3.0, 3.0)
    loss, _ = obj3.score(out, obj3.prepare(b3, True))
    assert torch.isfinite(loss)
