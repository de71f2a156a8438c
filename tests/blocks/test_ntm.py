"""Tests of the Neural Turing Machine (rnnspec.blocks.ntm).

Paper figure (Graves, Wayne & Danihelka 2014, §4.1, Figs. 3-4): on the copy
task with 8-bit vectors and training lengths 1-20 the NTM reaches ~0 bits of
error per sequence after ~100k training sequences and generalises to lengths
30-50 far better than an LSTM. Our slow test is the 2-CPU-minute version:
lengths 1-10, a 32 x 16 memory, Adam with batches of 16; see
``test_copy_task_learns_and_generalises`` for the figures it asserts.
"""
from __future__ import annotations

import time

import pytest
import torch
from torch import Tensor, nn

from rnnspec.blocks import NTM, NTMState, detach_state
from rnnspec.blocks.addressing import content_weighting, cosine_similarity, write_memory
from rnnspec.blocks.ntm import circular_shift, interpolate, sharpen
from rnnspec.blocks.tasks import evaluate_copy, torch_threads, train_copy


def small_ntm(controller: str = "lstm", **kwargs: int) -> NTM:
    torch.manual_seed(0)
    sizes = {"memory_slots": 12, "memory_width": 6, "read_heads": 2, "write_heads": 2, **kwargs}
    return NTM(5, 3, controller=controller, controller_hidden=16, **sizes)  # type: ignore[arg-type]


# -- addressing (NTM §3.3) ----------------------------------------------------------------


def test_content_addressing_focuses_on_the_matching_row() -> None:
    memory = torch.eye(4).unsqueeze(0)  # rows are the basis vectors
    key = torch.tensor([[[0.0, 3.0, 0.0, 0.0]]])  # cosine ignores the scale
    weights = content_weighting(memory, key, torch.tensor([[50.0]]))
    assert weights.shape == (1, 1, 4)
    assert int(weights.argmax()) == 1 and float(weights[0, 0, 1]) > 0.99
    uniform = content_weighting(memory, key, torch.tensor([[0.0]]))  # beta = 0: no preference
    assert torch.allclose(uniform, torch.full((1, 1, 4), 0.25))


def test_cosine_similarity_of_zero_vectors_is_zero_with_finite_gradient() -> None:
    memory = torch.zeros(1, 3, 4, requires_grad=True)
    key = torch.zeros(1, 1, 4, requires_grad=True)
    similarity = cosine_similarity(key, memory)
    similarity.sum().backward()
    assert torch.all(similarity == 0)
    assert torch.isfinite(memory.grad).all() and torch.isfinite(key.grad).all()  # type: ignore[union-attr]


def test_interpolation_shift_and_sharpening() -> None:
    previous = torch.tensor([[[1.0, 0.0, 0.0, 0.0, 0.0]]])
    content = torch.tensor([[[0.0, 0.0, 0.0, 0.0, 1.0]]])
    assert torch.equal(interpolate(content, previous, torch.tensor([[0.0]])), previous)  # g = 0 keeps the focus
    assert torch.equal(interpolate(content, previous, torch.tensor([[1.0]])), content)
    # Offsets -1, 0, +1: all mass on +1 moves the focus one slot forward, wrapping around.
    forward = torch.tensor([[[0.0, 0.0, 1.0]]])
    assert torch.equal(circular_shift(previous, forward), torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0]]]))
    backward = torch.tensor([[[1.0, 0.0, 0.0]]])
    assert torch.equal(circular_shift(previous, backward), torch.tensor([[[0.0, 0.0, 0.0, 0.0, 1.0]]]))
    blurred = circular_shift(previous, torch.tensor([[[0.25, 0.5, 0.25]]]))
    assert torch.allclose(blurred, torch.tensor([[[0.5, 0.25, 0.0, 0.0, 0.25]]]))
    # Sharpening undoes the blur (eq. 9); gamma = 1 leaves it (nearly) unchanged.
    assert int(sharpen(blurred, torch.tensor([[30.0]])).argmax()) == 0
    assert float(sharpen(blurred, torch.tensor([[30.0]]))[0, 0, 0]) > 0.99
    assert torch.allclose(sharpen(blurred, torch.tensor([[1.0]])), blurred, atol=1e-5)


def test_sharpen_gradient_is_finite_where_weights_are_zero() -> None:
    """The naive w**gamma has d/dgamma = w**gamma * log(w) = NaN at w = 0."""
    weights = torch.tensor([[[1.0, 0.0, 0.0]]], requires_grad=True)
    gamma = torch.tensor([[2.5]], requires_grad=True)
    sharpen(weights, gamma)[0, 0, 0].backward()
    assert torch.isfinite(gamma.grad).all() and torch.isfinite(weights.grad).all()  # type: ignore[union-attr]


def test_write_memory_erases_then_adds() -> None:
    memory = torch.ones(1, 3, 2)
    weights = torch.tensor([[[0.0, 1.0, 0.0]]])
    erase = torch.tensor([[[1.0, 0.0]]])
    add = torch.tensor([[[5.0, 7.0]]])
    expected = torch.tensor([[[1.0, 1.0], [5.0, 8.0], [1.0, 1.0]]])
    assert torch.equal(write_memory(memory, weights, erase, add), expected)


# -- the module ------------------------------------------------------------------------------


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_shapes_state_and_weightings(controller: str) -> None:
    ntm = small_ntm(controller)
    y, state = ntm(torch.randn(7, 4, 5))
    assert y.shape == (7, 4, 3)
    assert isinstance(state, NTMState)
    assert state.memory.shape == (4, 12, 6) and state.read_vectors.shape == (4, 2, 6)
    assert state.read_weights.shape == (4, 2, 12) and state.write_weights.shape == (4, 2, 12)
    for weights in (state.read_weights, state.write_weights):
        assert torch.allclose(weights.sum(-1), torch.ones(4, 2), atol=1e-5)
        assert bool((weights >= 0).all())
    assert len(state.controller) == (2 if controller == "lstm" else 0)


def test_batch_first_matches_time_major() -> None:
    ntm = small_ntm()
    x = torch.randn(6, 3, 5)
    y_time, _ = ntm(x)
    ntm.batch_first = True
    y_batch, _ = ntm(x.transpose(0, 1))
    assert torch.allclose(y_time, y_batch.transpose(0, 1), atol=1e-6)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
def test_two_chunks_with_state_equal_the_whole_sequence(controller: str) -> None:
    ntm = small_ntm(controller, shift_range=2)
    x = torch.randn(20, 3, 5)
    whole, whole_state = ntm(x)
    first, state = ntm(x[:8])
    second, state = ntm(x[8:], state)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-5)
    for a, b in zip(state[:4], whole_state[:4]):
        assert torch.allclose(a, b, atol=1e-5)
    # Truncated BPTT: detaching keeps the values and cuts the graph.
    detached = detach_state(state)
    assert isinstance(detached, NTMState) and not detached.memory.requires_grad
    assert torch.equal(detached.memory, state.memory)


def test_no_nan_over_500_steps_and_gradients_finite() -> None:
    ntm = small_ntm()
    x = 5.0 * torch.randn(500, 2, 5)  # large inputs push the gates and strengths to saturation
    y, state = ntm(x)
    loss = y.pow(2).mean() + state.memory.pow(2).mean()
    loss.backward()
    assert torch.isfinite(y).all() and torch.isfinite(state.memory).all()
    for name, parameter in ntm.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


class _GRUController(nn.Module):
    """Stands in for an rnnspec cell: any module with the Controller members plugs in."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
        return (torch.zeros(batch_size, self.output_size, device=device, dtype=dtype),)

    def forward(self, input: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        h = self.cell(input, state[0])
        return h, (h,)


def test_custom_controller_plugs_in() -> None:
    controller = _GRUController(5 + 1 * 4, 10)
    ntm = NTM(5, 2, controller=controller, memory_slots=8, memory_width=4)
    y, state = ntm(torch.randn(3, 2, 5))
    assert y.shape == (3, 2, 2) and state.controller[0].shape == (2, 10)
    with pytest.raises(ValueError):
        NTM(5, 2, controller="gru")
    with pytest.raises(TypeError):
        NTM(5, 2, controller=nn.Linear(3, 3))


# -- learning (slow) ---------------------------------------------------------------------------


@pytest.mark.slow
def test_copy_task_learns_and_generalises() -> None:
    """Copy task (NTM §4.1) at CPU scale.

    Trains on lengths 1-10 (8-bit vectors, 32 x 16 memory, LSTM controller
    with 100 units, Adam at 1e-3 dropped to 3e-4 once an evaluation shows
    <= 1 bit error per sequence), stopping once two evaluations in a row (128
    fresh sequences each) show 0 bit errors, at most 4000 steps of 16
    sequences. Asserts < 0.5 bit errors per sequence on lengths 1-10 and a
    bit error rate below 0.05 per bit at length 20 (twice the longest
    training length), which only holds if the heads learned to move through
    memory rather than to memorise positions.
    """
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    ntm = NTM(9, 8, controller="lstm", controller_hidden=100, memory_slots=32, memory_width=16)
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch_threads(1):
        report = train_copy(
            ntm,
            steps=4000,
            batch_size=16,
            lr=1e-3,
            fine_tune_lr=3e-4,
            eval_every=100,
            target_errors=0.0,
            generator=generator,
        )
        evaluation = torch.Generator().manual_seed(1234)
        errors = [evaluate_copy(ntm, length, batch_size=32, generator=evaluation)[0] for length in range(1, 11)]
        in_range = sum(errors) / len(errors)
        errors_20, rate_20 = evaluate_copy(ntm, 20, batch_size=64, generator=evaluation)
    summary = (
        f"NTM copy: {report.sequences} sequences in {report.steps} steps, "
        f"{time.perf_counter() - start:.0f} s wall / {time.process_time() - cpu_start:.0f} s CPU; "
        f"bit errors/sequence on lengths 1-10: {in_range:.3f}; length 20: {errors_20:.2f} errors/sequence, "
        f"{rate_20:.4f} per bit"
    )
    print(summary)
    assert in_range < 0.5, summary
    assert rate_20 < 0.05, summary
