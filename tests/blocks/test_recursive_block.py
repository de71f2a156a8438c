"""The recursive (tree) block, rnnspec.blocks.recursive: the shift-reduce
machine computes what the tree recursion computes (Goller & Küchler 1996;
Socher et al. 2011), for a hand-computed tree and for random arithmetic
trees in a padded batch, with exact float64 gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from rnnspec.blocks.layer import MemoryLayer
from rnnspec.blocks.recursive import Recursive
from rnnspec.data import synthetic as S

VOCAB = S.ARITHMETIC_VOCAB  # ( ) + - -10 .. 10
INDEX = {tok: k for k, tok in enumerate(VOCAB)}
V = len(VOCAB)


def one_hot(tokens: list[str], dtype: torch.dtype = torch.float64) -> Tensor:
    ids = torch.tensor([INDEX[t] for t in tokens])
    return nn.functional.one_hot(ids, V).to(dtype)


def padded(trees: list[S.Tree]) -> tuple[Tensor, Tensor]:
    """[T, B, V] one-hot tokens of the trees (NaN padding) and their lengths."""
    seqs = [one_hot(S.tree_tokens(t)) for t in trees]
    T = max(len(s) for s in seqs)
    x = torch.full((T, len(seqs), V), float("nan"), dtype=torch.float64)
    for b, s in enumerate(seqs):
        x[: len(s), b] = s
    return x, torch.tensor([len(s) for s in seqs])


def roots(layer: MemoryLayer, x: Tensor, lengths: Tensor) -> Tensor:
    y, _ = layer(x, None, lengths)
    return y[lengths - 1, torch.arange(len(lengths))]


class GRUCompose(nn.Module):
    """torch.nn.GRUCell in the interface a composing cell has (as CellController)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(hidden, hidden)
        self.output_size = hidden

    def initial_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.zeros(batch, self.output_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = self.cell(x, h)
        return h, h


def reference(block: Recursive, tree: S.Tree) -> Tensor:
    """The node vector by direct recursion over the tree, written from the
    module docstring's equations with the block's weights."""
    def leaf(tok: str) -> Tensor:
        return block.leaf.weight[:, INDEX[tok]] + block.leaf.bias

    if isinstance(tree, int):
        return leaf(str(tree))
    left, op, right = tree
    l, o, r = reference(block, left), leaf(op), reference(block, right)
    if block.operator == "gate":
        assert block.gate is not None
        children = [l, torch.tanh(block.gate.weight @ o + block.gate.bias) * r]
    else:
        children = [l, o, r]
    if block.combine is not None:
        return torch.tanh(block.combine.weight @ torch.cat(children) + block.combine.bias)
    h = torch.zeros_like(l)
    for c in children:
        h = block.cell.cell(c[None], h[None])[0]  # type: ignore[union-attr]
    return h


def trees(n: int, seed: int, lengths: tuple[int, ...] = (1, 2, 3, 5, 7)) -> list[S.Tree]:
    rng = np.random.default_rng(seed)
    return [S.random_tree(int(rng.choice(lengths)), rng) for _ in range(n)]


def test_a_hand_built_tree_gives_the_hand_computed_value() -> None:
    # ( a ( b c ) ) with scalar nodes, no operator token, p = tanh(2 l - r + 0.5)
    block = Recursive(5, 1, open=0, close=1, operator="none").double()
    with torch.no_grad():
        block.leaf.weight.copy_(torch.tensor([[0.0, 0.0, 0.1, 0.2, 0.3]], dtype=torch.float64))
        block.leaf.bias.zero_()
        block.combine.weight.copy_(torch.tensor([[2.0, -1.0]], dtype=torch.float64))  # type: ignore[union-attr]
        block.combine.bias.fill_(0.5)  # type: ignore[union-attr]
    ids = torch.tensor([0, 2, 0, 3, 4, 1, 1])
    x = nn.functional.one_hot(ids, 5).double()
    state = block.initial_state(1, dtype=torch.float64)
    tops = []
    for t in range(len(ids)):
        y, state = block.step(x[t : t + 1], state)
        tops.append(y.item())
    inner = math.tanh(2 * 0.2 - 0.3 + 0.5)
    root = math.tanh(2 * 0.1 - inner + 0.5)
    # the output at every step is the top of the stack (0 while it is empty)
    assert tops == pytest.approx([0.0, 0.1, 0.1, 0.2, 0.3, inner, root], abs=1e-12)
    assert state.depth.item() == 1


@pytest.mark.parametrize("operator", ["child", "gate"])
@pytest.mark.parametrize("compose", ["tanh", "gru"])
def test_a_batch_of_different_trees_equals_the_tree_recursion(operator: str, compose: str) -> None:
    torch.manual_seed(0)
    composer = GRUCompose(6) if compose == "gru" else "tanh"
    layer = MemoryLayer("recursive", V, 6, composer, hidden=6, open=0, close=1, operator=operator).double()
    batch = trees(9, seed=1)
    x, lengths = padded(batch)
    got = roots(layer, x, lengths)
    block = layer.block
    assert isinstance(block, Recursive)
    for b, tree in enumerate(batch):
        torch.testing.assert_close(got[b], reference(block, tree), rtol=1e-12, atol=1e-12)
        alone, _ = layer(x[: int(lengths[b]), b : b + 1], None, None)
        torch.testing.assert_close(got[b], alone[-1, 0], rtol=1e-12, atol=1e-14)  # GEMMs of another batch size
    # padding leaves the state alone and the outputs zero
    y, _ = layer(x, None, lengths)
    for b in range(len(batch)):
        assert torch.all(y[int(lengths[b]) :, b] == 0)


def test_gradients_are_exact_in_float64() -> None:
    torch.manual_seed(2)
    layer = MemoryLayer("recursive", V, 3, "tanh", hidden=3, open=0, close=1, operator="gate").double()
    x, lengths = padded(trees(3, seed=3, lengths=(1, 2, 3)))
    x = torch.nan_to_num(x, nan=0.0)
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())

    def f(x: Tensor, *ps: Tensor) -> Tensor:
        return roots_of(torch.func.functional_call(layer, dict(zip(names, ps)), (x, None, lengths)))

    def roots_of(out: tuple[Tensor, object]) -> Tensor:
        return out[0][lengths - 1, torch.arange(len(lengths))]

    # every weight (the leaf embedding, the gate, the composition) through the trees
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-8)


def test_a_chunked_run_with_state_equals_the_whole_run() -> None:
    torch.manual_seed(4)
    layer = MemoryLayer("recursive", V, 5, "tanh", hidden=5, open=0, close=1).double()
    x, lengths = padded(trees(4, seed=5, lengths=(4, 5)))
    x = torch.nan_to_num(x, nan=0.0)[:13]  # 13 <= every length here (4 ints: 13 tokens)
    whole, _ = layer(x, None, None)
    first, state = layer(x[:6], None, None)
    second, _ = layer(x[6:], state, None)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=0)


def test_malformed_input_is_an_error_not_a_wrong_value() -> None:
    block = Recursive(V, 4, open=0, close=1, stack_size=4).double()
    with pytest.raises(ValueError, match="fewer than 3 entries"):
        block.step(one_hot([")"]), block.initial_state(1, dtype=torch.float64))
    state = block.initial_state(1, dtype=torch.float64)
    x = one_hot(["1", "+", "2", "-", "3"])
    with pytest.raises(ValueError, match="stack overflow"):
        for t in range(len(x)):
            _, state = block.step(x[t : t + 1], state)


def test_the_sequence_loop_equals_step_by_step() -> None:
    # what a layer runs (leaves and actions hoisted out of the loop) against
    # the step interface, over the same zero-padded batch
    torch.manual_seed(6)
    block = Recursive(V, 5, open=0, close=1, operator="gate").double()
    x, _ = padded(trees(5, seed=7))
    x = torch.nan_to_num(x, nan=0.0)
    whole, end = block.sequence(x, block.initial_state(5, dtype=torch.float64), None)
    state = block.initial_state(5, dtype=torch.float64)
    for t in range(x.shape[0]):
        y, state = block.step(x[t], state)
        torch.testing.assert_close(whole[t], y, rtol=0, atol=0)
    assert torch.equal(end.depth, state.depth) and torch.equal(end.stack, state.stack)


def test_malformed_input_in_a_layer_names_the_step_and_row() -> None:
    layer = MemoryLayer("recursive", V, 4, "tanh", hidden=4, open=0, close=1).double()
    good, bad = one_hot(["(", "1", "+", "2", ")", "-", "3"]), one_hot(["(", "1", "+", "2", ")", ")", "3"])
    x = torch.stack([good, bad], 1)
    with pytest.raises(ValueError, match="at step 5, row 1: a closing bracket with fewer than 3 entries"):
        layer(x, None, None)
    # the same bracket in padding is no error: padded steps do nothing
    y, _ = layer(x, None, torch.tensor([7, 5]))  # row 1 ends after "( 1 + 2 )"
    assert torch.all(y[5:, 1] == 0) and torch.all(y[4, 1] != 0)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="outside"):
        Recursive(5, 4, close=5)
    with pytest.raises(ValueError, match="different"):
        Recursive(5, 4, close=1, open=1)
    with pytest.raises(ValueError, match="operator"):
        Recursive(5, 4, close=1, operator="infix")
    with pytest.raises(ValueError, match="compose"):
        Recursive(5, 4, close=1, compose="relu")
