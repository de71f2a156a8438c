"""Collation into padded batches, and the seeded, resumable batch iterator."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.data import Batch, BatchIterator, DataError, Example, bucket_by_length, collate


def _feat(T: int, F: int = 3, base: float = 1.0) -> torch.Tensor:
    return base + torch.arange(T * F, dtype=torch.float32).reshape(T, F)


# ---------------------------------------------------------------------------
# collate
# ---------------------------------------------------------------------------


def test_collate_pads_features_and_records_lengths() -> None:
    exs = [Example(_feat(2), torch.tensor(1)), Example(_feat(5), torch.tensor(0)), Example(_feat(3), torch.tensor(2))]
    b = collate(exs, pad_value=-1)
    assert b.x.shape == (3, 5, 3)
    assert b.lengths.dtype == torch.int64 and b.lengths.tolist() == [2, 5, 3]
    assert torch.equal(b.x[0, :2], exs[0].x) and (b.x[0, 2:] == -1).all()
    assert b.y.tolist() == [1, 0, 2] and not b.per_step
    assert len(b) == b.size == 3 and b.max_length == 5


def test_collate_time_major_layout() -> None:
    exs = [Example(_feat(2), _feat(2, 1)), Example(_feat(4), _feat(4, 1))]
    b = collate(exs, batch_first=False)
    assert b.x.shape == (4, 2, 3) and b.y.shape == (4, 2, 1)
    assert torch.equal(b.x[:4, 1], exs[1].x) and torch.equal(b.y[:2, 0], exs[0].y)
    assert b.step_mask.shape == (4, 2)
    assert b.step_mask[:, 0].tolist() == [True, True, False, False]


def test_collate_tokens_and_per_step_targets_with_ignore_index() -> None:
    exs = [Example(torch.tensor([3, 4, 5]), torch.tensor([4, 5, 6])), Example(torch.tensor([7]), torch.tensor([8]))]
    b = collate(exs, y_pad_value=-100)
    assert b.x.dtype == torch.int64 and b.x.tolist() == [[3, 4, 5], [7, 0, 0]]
    assert b.per_step and b.y.tolist() == [[4, 5, 6], [8, -100, -100]]
    loss = torch.nn.functional.cross_entropy(torch.zeros(2, 3, 10).transpose(1, 2), b.y, ignore_index=-100)
    assert torch.isfinite(loss)


def test_collate_variable_length_sequence_targets_get_target_lengths() -> None:
    exs = [
        Example(_feat(6), torch.tensor([1, 2, 3]), per_step=False),
        Example(_feat(4), torch.tensor([4]), per_step=False),
    ]
    b = collate(exs)
    assert b.y.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert b.extras["target_lengths"].tolist() == [3, 1]


def test_explicit_per_step_flag_beats_shape_inference() -> None:
    # a per-sequence vector of length 3 on a 3-step example looks per-step
    exs = [Example(_feat(3), torch.ones(3), per_step=False), Example(_feat(3), torch.zeros(3), per_step=False)]
    b = collate(exs, batch_first=False)
    assert not b.per_step and b.y.shape == (2, 3)
    inferred = collate([Example(_feat(3), torch.ones(3)), Example(_feat(3), torch.zeros(3))], batch_first=False)
    assert inferred.per_step and inferred.y.shape == (3, 2)


def test_collate_extras() -> None:
    exs = [
        Example(_feat(2), None, {"loss_mask": torch.tensor([False, True]), "tree": (1, "+", 2), "k": 3}),
        Example(_feat(3), None, {"loss_mask": torch.tensor([True, True, True]), "tree": 5, "k": 4}),
    ]
    b = collate(exs)
    assert b.y is None
    assert b.extras["loss_mask"].tolist() == [[False, True, False], [True, True, True]]
    assert b.extras["tree"] == [(1, "+", 2), 5]
    assert b.extras["k"].tolist() == [3, 4]
    assert (b.step_mask & b.extras["loss_mask"]).sum() == 4


def test_collate_errors_are_clear() -> None:
    with pytest.raises(DataError, match="empty"):
        collate([])
    with pytest.raises(DataError, match=r"example 1 has per-step shape \(4,\), example 0 has \(3,\)"):
        collate([Example(_feat(2, 3)), Example(_feat(2, 4))])
    with pytest.raises(DataError, match="example 1 has no target"):
        collate([Example(_feat(2), torch.tensor(1)), Example(_feat(2))])
    with pytest.raises(DataError, match="different extras"):
        collate([Example(_feat(2), extras={"a": 1}), Example(_feat(2))])
    with pytest.raises(DataError, match="dtype"):
        collate([Example(torch.tensor([1, 2])), Example(torch.tensor([1.0, 2.0]))])
    with pytest.raises(DataError, match="time dimension"):
        Example(torch.tensor(1.0))


def test_batch_to_moves_tensors_but_keeps_lengths_on_cpu() -> None:
    b = collate([Example(_feat(2), torch.tensor(1), {"m": torch.ones(2)}), Example(_feat(3), torch.tensor(0), {"m": torch.ones(3)})])
    moved = b.to("meta")
    assert moved.x.device.type == "meta" and moved.y.device.type == "meta"
    assert moved.extras["m"].device.type == "meta"
    assert moved.lengths.device.type == "cpu"
    assert b.x.device.type == "cpu"  # the original is untouched
    packed = torch.nn.utils.rnn.pack_padded_sequence(b.x, b.lengths, batch_first=True, enforce_sorted=False)
    assert packed.data.shape == (5, 3)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 7), min_size=1, max_size=6),
    st.integers(1, 3),
    st.booleans(),
)
def test_collate_roundtrip(lengths: list[int], features: int, batch_first: bool) -> None:
    exs = [Example(_feat(T, features, base=10 * i), _feat(T, 1, base=-10 * i)) for i, T in enumerate(lengths)]
    b = collate(exs, batch_first=batch_first, pad_value=float("nan"))
    x = b.x if batch_first else b.x.transpose(0, 1)
    y = b.y if batch_first else b.y.transpose(0, 1)
    for i, ex in enumerate(exs):
        T = int(b.lengths[i])
        assert T == ex.length
        assert torch.equal(x[i, :T], ex.x) and torch.equal(y[i, :T], ex.y)
        assert torch.isnan(x[i, T:]).all()
    mask = b.step_mask if batch_first else b.step_mask.t()
    assert mask.sum(1).tolist() == lengths


# ---------------------------------------------------------------------------
# bucketing
# ---------------------------------------------------------------------------


def test_bucketing_groups_similar_lengths() -> None:
    lengths = [(i * 37) % 100 + 1 for i in range(400)]
    batches = bucket_by_length(lengths, 10, seed=0, pool=40)
    assert sorted(i for b in batches for i in b) == list(range(400))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 5
    assert batches == bucket_by_length(lengths, 10, seed=0, pool=40)
    assert batches != bucket_by_length(lengths, 10, seed=1, pool=40)


# ---------------------------------------------------------------------------
# BatchIterator
# ---------------------------------------------------------------------------


def _dataset(n: int = 23) -> list[Example]:
    return [Example(torch.full((i % 5 + 1, 2), float(i)), torch.tensor(i)) for i in range(n)]


def _ids(batch: Batch) -> list[int]:
    return batch.y.tolist()


def test_iterator_covers_each_example_once_per_epoch_in_a_seeded_order() -> None:
    data = _dataset()
    it = BatchIterator(data, 5, seed=7)
    assert len(it) == 5
    e0 = [_ids(b) for b in it]
    e1 = [_ids(b) for b in it]
    assert sorted(sum(e0, [])) == list(range(23)) == sorted(sum(e1, []))
    assert e0 != e1
    assert it.epoch == 2 and it.batch_index == 0
    again = BatchIterator(data, 5, seed=7)
    assert [_ids(b) for b in again] == e0
    other = BatchIterator(data, 5, seed=8)
    assert [_ids(b) for b in other] != e0


def test_iterator_resumes_exactly_mid_epoch() -> None:
    data = _dataset()
    reference = BatchIterator(data, 4, seed=3, bucket=2)
    ref = [_ids(b) for _ in range(3) for b in reference]

    run = BatchIterator(data, 4, seed=3, bucket=2)
    seen: list[list[int]] = []
    for _ in range(1):
        seen += [_ids(b) for b in run]
    for k, b in enumerate(run):  # part of the second epoch
        seen.append(_ids(b))
        if k == 2:
            break
    state = json.loads(json.dumps(run.state_dict()))  # survives a checkpoint file
    assert state["epoch"] == 1 and state["batch"] == 3

    resumed = BatchIterator(data, 4, seed=3, bucket=2)
    resumed.load_state_dict(state)
    while len(seen) < len(ref):
        seen += [_ids(b) for b in resumed]
    assert seen == ref


def test_iterator_integer_position_and_seek() -> None:
    data = _dataset()
    it = BatchIterator(data, 5, seed=1)
    batches = [_ids(b) for _ in range(2) for b in it]
    other = BatchIterator(data, 5, seed=1)
    other.seek(7)
    assert other.position == 7 and (other.epoch, other.batch_index) == (1, 2)
    assert _ids(next(iter(other))) == batches[7]
    other.load_state_dict(3)
    assert _ids(next(iter(other))) == batches[3]


def test_breaking_after_the_last_batch_moves_to_the_next_epoch() -> None:
    it = BatchIterator(_dataset(10), 5, seed=0)
    for k, _ in enumerate(it):
        if k == 1:
            break  # consumed the last batch but never exhausted the generator
    assert it.state_dict()["epoch"] == 1 and it.state_dict()["batch"] == 0
    assert it.position == 2


def test_iterator_refuses_a_state_from_a_different_setup() -> None:
    it = BatchIterator(_dataset(), 5, seed=1)
    state = it.state_dict()
    with pytest.raises(DataError, match="seed=1 but this iterator has seed=2"):
        BatchIterator(_dataset(), 5, seed=2).load_state_dict(state)
    with pytest.raises(DataError, match="num_examples"):
        BatchIterator(_dataset(30), 5, seed=1).load_state_dict(state)
    with pytest.raises(DataError, match="'epoch' and 'batch'"):
        it.load_state_dict({"epoch": "x"})


def test_iterator_options_and_errors() -> None:
    data = _dataset(23)
    it = BatchIterator(data, 5, shuffle=False, drop_last=True)
    batches = [_ids(b) for b in it]
    assert batches == [list(range(i, i + 5)) for i in range(0, 20, 5)]
    with pytest.raises(DataError, match="empty"):
        BatchIterator([], 4)
    with pytest.raises(DataError, match="fewer than batch_size"):
        BatchIterator(data, 50, drop_last=True)
    with pytest.raises(DataError, match="positive integer"):
        BatchIterator(data, 0)
    tm = next(iter(BatchIterator(data, 4, batch_first=False)))
    assert tm.x.shape[1] == 4 and not tm.batch_first


def test_bucketed_iterator_pads_less() -> None:
    data = [Example(torch.zeros((i * 7) % 50 + 1, 1)) for i in range(200)]
    plain = sum(b.x.numel() for b in BatchIterator(data, 10, seed=0))
    bucketed_it = BatchIterator(data, 10, seed=0, bucket=10)
    bucketed = sum(b.x.numel() for b in bucketed_it)
    assert bucketed < 0.7 * plain
    assert len(bucketed_it) == 20


def test_padding_value_that_does_not_fit_the_dtype() -> None:
    with pytest.raises(DataError, match="padding value nan does not fit dtype torch.int64"):
        collate([Example(torch.tensor([1, 2])), Example(torch.tensor([3]))], pad_value=float("nan"))
