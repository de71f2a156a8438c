"""Each synthetic task is checked against an independent statement of what it is."""
from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.data import DataError, collate
from rnnspec.data import synthetic as S

# ---------------------------------------------------------------------------
# generic properties
# ---------------------------------------------------------------------------

_PARAMS = {"tomita": {"grammar": 4}, "mackey_glass": {"window": 20, "washout": 50.0}}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def _same_example(a, b) -> bool:
    return (
        _same(a.x, b.x)
        and _same(a.y, b.y)
        and a.extras.keys() == b.extras.keys()
        and all(_same(a.extras[k], b.extras[k]) for k in a.extras)
    )


@pytest.mark.parametrize("name", sorted(S.TASKS))
def test_every_task_is_deterministic_and_seed_dependent(name: str) -> None:
    params = _PARAMS.get(name, {})
    a = S.make_task(name, 6, seed=3, **params)
    b = S.make_task(name, 6, seed=3, **params)
    c = S.make_task(name, 6, seed=4, **params)
    assert len(a) == 6
    assert all(_same_example(u, v) for u, v in zip(a, b))
    assert not all(_same_example(u, v) for u, v in zip(a, c))
    batch = collate(a)  # every task collates into one batch
    assert batch.lengths.tolist() == [ex.length for ex in a]


@pytest.mark.parametrize("name", sorted(set(S.TASKS) - {"mackey_glass"}))
def test_growing_a_task_keeps_its_first_examples(name: str) -> None:
    params = _PARAMS.get(name, {})
    small = S.make_task(name, 3, seed=11, **params)
    big = S.make_task(name, 8, seed=11, **params)
    assert all(_same_example(u, v) for u, v in zip(small, big))


def test_make_task_reports_unknown_names_and_parameters() -> None:
    with pytest.raises(DataError, match="did you mean 'temporal_xor'"):
        S.make_task("temporal_xr", 2, seed=0)
    with pytest.raises(DataError, match="has no parameter 'max_lenn'.*did you mean 'max_len'"):
        S.make_task("copy", 2, seed=0, max_lenn=3)
    with pytest.raises(DataError, match="needs parameter"):
        S.make_task("tomita", 2, seed=0)
    with pytest.raises(DataError, match="'min_len' \\(5\\) must be <= 'max_len' \\(2\\)"):
        S.make_copy(2, seed=0, min_len=5, max_len=2)
    with pytest.raises(DataError, match="must be an integer"):
        S.make_copy(2, seed=0, bits=2.5)
    assert S.make_copy(0, seed=0) == []


# ---------------------------------------------------------------------------
# copy / repeat copy
# ---------------------------------------------------------------------------


def test_copy_target_is_the_sequence_after_the_delimiter() -> None:
    for ex in S.make_copy(20, seed=0, bits=6, min_len=2, max_len=9):
        total = ex.length
        assert total % 2 == 1
        L = (total - 1) // 2
        assert 2 <= L <= 9
        assert ex.x.shape == (total, 7) and ex.y.shape == (total, 6)
        delim = ex.x[:, 6]
        assert delim.tolist() == [0.0] * L + [1.0] + [0.0] * L
        assert set(ex.x[:L, :6].unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(ex.y[L + 1 :], ex.x[:L, :6])
        assert not ex.x[L + 1 :].any() and not ex.y[: L + 1].any()
        assert ex.extras["loss_mask"].tolist() == [False] * (L + 1) + [True] * L


def test_repeat_copy_repeats_the_sequence_and_encodes_the_count() -> None:
    lo, hi = 2, 6
    mean, std = (lo + hi) / 2, math.sqrt(((hi - lo + 1) ** 2 - 1) / 12)
    for ex in S.make_repeat_copy(20, seed=1, bits=4, min_len=1, max_len=5, min_repeats=lo, max_repeats=hi):
        R = ex.extras["repeats"]
        L = (ex.length - 2) // (R + 1)
        assert ex.length == L + 1 + L * R + 1
        seq = ex.x[:L, :4]
        assert ex.x[L, 4] == 1.0 and ex.x[:, 4].sum() == 1.0
        assert round(float(ex.x[L, 5]) * std + mean) == R
        out = ex.y[L + 1 : L + 1 + L * R, :4].reshape(R, L, 4)
        assert all(torch.equal(out[r], seq) for r in range(R))
        assert ex.y[:, 4].tolist() == [0.0] * (ex.length - 1) + [1.0]
        assert ex.extras["loss_mask"].sum() == L * R + 1


# ---------------------------------------------------------------------------
# adding problem
# ---------------------------------------------------------------------------


def test_adding_modern_variant() -> None:
    for ex in S.make_adding(30, seed=2, length=40):
        values, markers = ex.x[:, 0], ex.x[:, 1]
        assert ex.length == 40
        assert ((values >= 0) & (values <= 1)).all()
        (pos,) = torch.nonzero(markers == 1, as_tuple=True)
        assert set(markers.unique().tolist()) <= {0.0, 1.0} and len(pos) == 2
        assert pos[0] < 20 <= pos[1]
        assert ex.y.shape == (1,)
        assert ex.y.item() == pytest.approx(values[pos].sum().item(), abs=1e-6)


def test_adding_hochreiter_1997_variant() -> None:
    T = 60
    for ex in S.make_adding(40, seed=3, length=T, variant="hochreiter1997"):
        values, markers = ex.x[:, 0].double(), ex.x[:, 1]
        n = ex.length
        assert T <= n <= T + T // 10
        assert ((values >= -1) & (values <= 1)).all()
        marked = torch.nonzero(markers == 1, as_tuple=True)[0].tolist()
        assert len(marked) == 2
        assert min(marked) < 10 and max(marked) < T // 2 - 1
        # first and last step carry -1 unless marked; everything else is 0
        for t in range(n):
            if t in marked:
                continue
            assert markers[t] == (-1.0 if t in (0, n - 1) else 0.0)
        if 0 in marked:
            assert values[0] == 0
        expected = 0.5 + values[marked].sum().item() / 4.0
        assert ex.y.item() == pytest.approx(expected, abs=1e-6)
        assert 0.0 <= ex.y.item() <= 1.0


def test_adding_rejects_unknown_variant() -> None:
    with pytest.raises(DataError, match="did you mean 'modern'"):
        S.make_adding(1, seed=0, variant="moden")


# ---------------------------------------------------------------------------
# temporal XOR
# ---------------------------------------------------------------------------


def test_temporal_xor_labels_satisfy_xor_on_predictable_positions() -> None:
    unpredictable_agree = []
    for ex in S.make_temporal_xor(10, seed=4, length=90):
        x = ex.x[:, 0].long()
        y = ex.y[:, 0].long()
        mask = ex.extras["loss_mask"]
        assert torch.equal(y[:-1], x[1:])  # y is the next bit
        for t in range(1, ex.length):
            if mask[t]:
                assert y[t] == x[t] ^ x[t - 1]
            else:
                unpredictable_agree.append(int(y[t] == x[t] ^ x[t - 1]))
        assert mask.sum() == ex.length // 3 or mask.sum() == (ex.length + 1) // 3
        assert not mask[0]
    # where not masked the XOR rule holds only by chance
    assert 0.3 < np.mean(unpredictable_agree) < 0.7


# ---------------------------------------------------------------------------
# Reber grammars
# ---------------------------------------------------------------------------

_R4 = r"(XT*VP)*(S|XT*VV)"
_REBER_RE = re.compile(rf"B(TS*X{_R4}|PT*V(V|P{_R4}))E")
_EMBEDDED_RE = re.compile(rf"B(T{_REBER_RE.pattern}T|P{_REBER_RE.pattern}P)E")

# the Reber diagram, written independently as named nodes
_GRAPH = {
    "start": {"B": "n1"},
    "n1": {"T": "n2", "P": "n3"},
    "n2": {"S": "n2", "X": "n4"},
    "n3": {"T": "n3", "V": "n5"},
    "n4": {"X": "n3", "S": "n6"},
    "n5": {"P": "n4", "V": "n6"},
    "n6": {"E": "done"},
    "done": {},
}


def _legal_after_prefixes(s: str) -> list[set[str]]:
    node, out = "start", []
    for ch in s:
        node = _GRAPH[node][ch]
        out.append(set(_GRAPH[node]))
    return out


def test_reber_strings_are_in_the_grammar_and_targets_are_legal_sets() -> None:
    for ex in S.make_reber(40, seed=5):
        s = ex.extras["string"]
        assert _REBER_RE.fullmatch(s), s
        ids = [S.REBER_SYMBOLS[i] for i in ex.x.tolist()]
        assert "".join(ids) == s[:-1]
        expected = _legal_after_prefixes(s)[:-1]
        got = [{S.REBER_SYMBOLS[k] for k in torch.nonzero(row).flatten().tolist()} for row in ex.y]
        assert got == expected
        actual_next = [S.REBER_SYMBOLS[i] for i in ex.extras["next_symbol"].tolist()]
        assert "".join(actual_next) == s[1:]
        assert all(n in legal for n, legal in zip(actual_next, got))


def test_embedded_reber_has_the_long_range_dependency() -> None:
    examples = S.make_embedded_reber(40, seed=6, one_hot=True, max_len=30)
    for ex in examples:
        s = ex.extras["string"]
        assert _EMBEDDED_RE.fullmatch(s), s
        assert len(s) <= 30
        assert ex.x.shape == (len(s) - 1, 7) and torch.equal(ex.x.sum(1), torch.ones(len(s) - 1))
        # after the inner string's E, the only legal symbol is the second symbol
        penultimate = {S.REBER_SYMBOLS[k] for k in torch.nonzero(ex.y[-2]).flatten().tolist()}
        assert penultimate == {s[1]}
        assert torch.equal(ex.y[-1], torch.nn.functional.one_hot(torch.tensor(6), 7).float())
        inner = _legal_after_prefixes(s[2:-2])
        got = [{S.REBER_SYMBOLS[k] for k in torch.nonzero(row).flatten().tolist()} for row in ex.y[2:-2]]
        assert got == inner[:-1]
    assert {ex.extras["string"][1] for ex in examples} == {"T", "P"}


def test_reber_legal_next_rejects_strings_outside_the_grammar() -> None:
    with pytest.raises(DataError, match="not in the Reber grammar"):
        S.reber_legal_next("BTTE")


# ---------------------------------------------------------------------------
# Mackey-Glass
# ---------------------------------------------------------------------------


def test_mackey_glass_range_and_determinism() -> None:
    a = S.mackey_glass(1500, seed=0)
    b = S.mackey_glass(1500, seed=0)
    c = S.mackey_glass(1500, seed=1)
    assert a.shape == (1500,) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    for s in (a, c):
        assert 0.2 < s.min() and s.max() < 1.4
        assert s.std() > 0.1  # chaotic, not converged to a fixed point


def _euler_reference(t_end: float, dt: float, tau: float = 17.0) -> np.ndarray:
    """Forward Euler on a fine grid, history 1.2, sampled every time unit."""
    d = round(tau / dt)
    steps = round(t_end / dt)
    x = np.empty(d + 1 + steps)
    x[: d + 1] = 1.2
    for k in range(steps):
        i = d + k
        xd = x[i - d]
        x[i + 1] = x[i] + dt * (0.2 * xd / (1 + xd**10) - 0.1 * x[i])
    per = round(1.0 / dt)
    return x[d::per]


def test_mackey_glass_integration_matches_a_fine_euler_reference() -> None:
    rk4 = S.mackey_glass(60, seed=0, washout=0.0, history=1.2).double().numpy()
    ref = _euler_reference(59.0, 0.0005)
    assert np.max(np.abs(rk4 - ref[:60])) < 3e-4  # Euler at dt=0.1 would be off by ~7e-3
    assert rk4[0] == pytest.approx(1.2)


def test_mackey_glass_parameter_checks() -> None:
    with pytest.raises(DataError, match="multiple of 'dt'"):
        S.mackey_glass(10, seed=0, tau=17.05)
    with pytest.raises(DataError, match="unknown Mackey-Glass parameter 'betta'.*did you mean 'beta'"):
        S.make_mackey_glass(2, seed=0, betta=0.3)


def test_series_windows_are_shifted_views() -> None:
    series = torch.arange(20.0)
    wins = S.series_windows(series, 5, horizon=2, stride=3)
    assert len(wins) == (20 - 5 - 2) // 3 + 1
    for k, ex in enumerate(wins):
        s = 3 * k
        assert ex.x[:, 0].tolist() == list(range(s, s + 5))
        assert ex.y[:, 0].tolist() == list(range(s + 2, s + 7))
        assert ex.x.untyped_storage().data_ptr() == series.untyped_storage().data_ptr()
    with pytest.raises(DataError, match="too short"):
        S.series_windows(series, 19, horizon=2)
    mg = S.make_mackey_glass(4, seed=0, window=10, washout=20.0)
    assert [tuple(ex.x.shape) for ex in mg] == [(10, 1)] * 4
    assert torch.equal(mg[0].y[:-1], mg[0].x[1:]) and torch.equal(mg[1].x[0], mg[0].y[-1])


# ---------------------------------------------------------------------------
# Tomita grammars
# ---------------------------------------------------------------------------


def _runs(s: str) -> list[tuple[str, int]]:
    return [(ch, len(list(g))) for ch, g in itertools.groupby(s)]


def _tomita_reference(g: int, s: str) -> bool:
    if g == 1:
        return re.fullmatch(r"1*", s) is not None
    if g == 2:
        return re.fullmatch(r"(10)*", s) is not None
    if g == 3:
        runs = _runs(s)
        return not any(
            a == ("1", a[1]) and a[1] % 2 == 1 and b[0] == "0" and b[1] % 2 == 1 for a, b in zip(runs, runs[1:])
        )
    if g == 4:
        return "000" not in s
    if g == 5:
        return s.count("0") % 2 == 0 and s.count("1") % 2 == 0
    if g == 6:
        return (s.count("0") - s.count("1")) % 3 == 0
    if g == 7:
        return re.fullmatch(r"0*1*0*1*", s) is not None
    raise AssertionError(g)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 7), st.text(alphabet="01", max_size=14))
def test_tomita_automata_match_the_definitions(g: int, s: str) -> None:
    assert S.tomita_accepts(g, s) == _tomita_reference(g, s)


@pytest.mark.parametrize("grammar", range(1, 8))
def test_tomita_examples_are_balanced_and_correctly_labelled(grammar: int) -> None:
    examples = S.make_tomita(40, seed=7, grammar=grammar, min_len=2, max_len=12)
    labels = [int(ex.y) for ex in examples]
    assert labels.count(1) == labels.count(0) == 20
    for ex in examples:
        s = "".join(str(b) for b in ex.x.tolist())
        assert s == ex.extras["string"]
        assert 2 <= len(s) <= 12
        assert int(ex.y) == int(_tomita_reference(grammar, s))
    # several distinct positives even for the sparse grammars
    assert len({ex.extras["string"] for ex in examples if int(ex.y) == 1}) > 3


def test_tomita_errors() -> None:
    with pytest.raises(DataError, match="1..7"):
        S.make_tomita(2, seed=0, grammar=8)
    with pytest.raises(DataError, match="no accepted strings"):
        S.make_tomita(2, seed=0, grammar=2, min_len=3, max_len=3)


# ---------------------------------------------------------------------------
# parentheses and a^n b^n
# ---------------------------------------------------------------------------


def _balanced_reference(s: str) -> bool:
    while "()" in s:
        s = s.replace("()", "")
    return s == ""


def test_parentheses_classification() -> None:
    examples = S.make_parentheses(60, seed=8, min_len=2, max_len=16)
    labels = [int(ex.y) for ex in examples]
    assert labels.count(1) == labels.count(0) == 30
    for ex in examples:
        s = "".join(S.PAREN_SYMBOLS[i] for i in ex.x.tolist())
        assert len(s) % 2 == 0 and 2 <= len(s) <= 16
        assert int(ex.y) == int(_balanced_reference(s))
    negatives = [ex.extras["string"] for ex in examples if int(ex.y) == 0]
    assert any(s.count("(") == s.count(")") for s in negatives)  # not only count mismatches


def test_parentheses_next_symbol_sets() -> None:
    for ex in S.make_parentheses(20, seed=9, max_len=12, task="next_symbol", one_hot=True):
        s = ex.extras["string"]
        assert _balanced_reference(s)
        depth = 0
        for t, ch in enumerate(s):
            depth += 1 if ch == "(" else -1
            expected = {"("} | ({")"} if depth > 0 else {"<end>"})
            got = {S.PAREN_TARGETS[k] for k in torch.nonzero(ex.y[t]).flatten().tolist()}
            assert got == expected


def test_anbn_classification_and_next_symbol() -> None:
    examples = S.make_anbn(40, seed=10, min_n=1, max_n=6)
    assert [int(ex.y) for ex in examples].count(1) == 20
    for ex in examples:
        s = "".join(S.ANBN_SYMBOLS[i] for i in ex.x.tolist())
        m = re.fullmatch(r"(a*)(b*)", s)
        assert int(ex.y) == int(bool(m) and len(m.group(1)) == len(m.group(2)) > 0)
        assert len(s) % 2 == 0
    for ex in S.make_anbn(10, seed=11, max_n=5, task="next_symbol"):
        s = "".join(S.ANBN_SYMBOLS[i] for i in ex.x.tolist())
        n = (len(s) - 1) // 2
        assert s == "S" + "a" * n + "b" * n
        sets = ["".join(S.ANBN_SYMBOLS[k] for k in torch.nonzero(r).flatten().tolist()) for r in ex.y]
        assert sets == ["a"] + ["ab"] * n + ["b"] * (n - 1) + ["T"]


# ---------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------


def _count_ints(tree) -> int:
    return 1 if isinstance(tree, int) else _count_ints(tree[0]) + _count_ints(tree[2])


def test_arithmetic_values_match_python_eval() -> None:
    examples = S.make_arithmetic(50, seed=12, lengths=[1, 3, 5, 9])
    for ex in examples:
        tokens = list(ex.extras["tokens"])
        assert [S.ARITHMETIC_VOCAB[i] for i in ex.x.tolist()] == tokens
        assert S.tree_tokens(ex.extras["tree"]) == tokens
        assert eval(" ".join(tokens)) == ex.extras["value"] == ex.y.item()  # noqa: S307 - our own token strings
        assert _count_ints(ex.extras["tree"]) in (1, 3, 5, 9)
        ints = [int(t) for t in tokens if re.fullmatch(r"-?\d+", t)]
        assert all(-10 <= v <= 10 for v in ints)
        assert tokens.count("(") == tokens.count(")") == len(ints) - 1
    assert {_count_ints(ex.extras["tree"]) for ex in examples} == {1, 3, 5, 9}
    assert S.evaluate_tree(((5, "-", -3), "+", 2)) == 10
    assert S.tree_tokens((5, "-", -3)) == ["(", "5", "-", "-3", ")"]


def test_arithmetic_trees_collate_as_lists() -> None:
    batch = collate(S.make_arithmetic(4, seed=0, lengths=2))
    assert isinstance(batch.extras["tree"], list) and len(batch.extras["tree"]) == 4
    assert batch.y.shape == (4, 1)


# ---------------------------------------------------------------------------
# associative pairs, delayed recall, temporal order
# ---------------------------------------------------------------------------


def test_associative_pairs_are_noisy_copies_of_the_stored_patterns() -> None:
    keys, values = S.associative_patterns(4, 32, seed=13, value_size=10)
    assert set(keys.unique().tolist()) == {-1.0, 1.0} and values.shape == (4, 10)
    for ex in S.make_associative_pairs(12, seed=13, num_patterns=4, size=32, value_size=10, noise=0.25):
        k = ex.extras["index"]
        assert torch.equal(ex.extras["key"], keys[k]) and torch.equal(ex.y, values[k])
        assert ex.x.shape == (1, 32)
        assert int((ex.x[0] != keys[k]).sum()) == 8
    auto = S.make_associative_pairs(3, seed=1, size=16, noise=0.0)
    assert all(torch.equal(ex.x[0], ex.y) for ex in auto)


def test_delayed_recall_outputs_the_input_from_lag_steps_ago() -> None:
    for ex in S.make_delayed_recall(10, seed=14, lag=3, min_len=5, max_len=12, symbols=5):
        mask = ex.extras["loss_mask"]
        assert mask.tolist() == [t >= 3 for t in range(ex.length)]
        assert torch.equal(ex.y[3:], ex.x[:-3])
    with pytest.raises(DataError, match="must exceed 'lag'"):
        S.make_delayed_recall(1, seed=0, lag=10, min_len=5, max_len=12)


def test_temporal_order_class_is_the_order_of_x_and_y() -> None:
    syms = S.TEMPORAL_ORDER_SYMBOLS
    for ex in S.make_temporal_order(20, seed=15):
        s = [syms[i] for i in ex.x.tolist()]
        assert 100 <= len(s) <= 110 and s[0] == "B" and s[-1] == "E"
        relevant = [(t, c) for t, c in enumerate(s) if c in "XY"]
        assert len(relevant) == 2
        (t1, a), (t2, b) = relevant
        assert 10 <= t1 <= 20 and 50 <= t2 <= 60
        assert int(ex.y) == {"XX": 0, "XY": 1, "YX": 2, "YY": 3}[a + b]


def test_arithmetic_custom_integer_range_uses_its_own_vocab() -> None:
    vocab = S.arithmetic_vocab(0, 3)
    for ex in S.make_arithmetic(10, seed=1, lengths=4, min_int=0, max_int=3):
        tokens = [vocab[i] for i in ex.x.tolist()]
        assert tokens == list(ex.extras["tokens"])
        assert all(0 <= int(t) <= 3 for t in tokens if t.isdigit())


def test_tomita_single_example_needs_only_a_positive() -> None:
    (ex,) = S.make_tomita(1, seed=0, grammar=1, min_len=1, max_len=4)
    assert int(ex.y) == 1 and set(ex.extras["string"]) == {"1"}


@pytest.mark.slow
def test_all_tasks_at_scale_collate_and_stay_correct() -> None:
    for name in sorted(S.TASKS):
        examples = S.make_task(name, 2000, seed=0, **_PARAMS.get(name, {}))
        assert len(examples) == 2000
        for k in range(0, 2000, 100):
            collate(examples[k : k + 100])
    for g in range(1, 8):
        for ex in S.make_tomita(500, seed=1, grammar=g, max_len=30):
            assert int(ex.y) == int(_tomita_reference(g, ex.extras["string"]))
    series = S.mackey_glass(20000, seed=2)
    assert 0.2 < series.min() and series.max() < 1.4


# ---------------------------------------------------------------------------
# context sum, sine, Narendra plant, Jordan plans
# ---------------------------------------------------------------------------


def test_context_sum_labels_need_past_and_future() -> None:
    for ex in S.make_context_sum(20, seed=16, length=15, offset=3, classes=7):
        x, y, mask = ex.x.tolist(), ex.y.tolist(), ex.extras["loss_mask"].tolist()
        assert ex.x.shape == ex.y.shape == (15,) and ex.y.dtype == torch.int64
        assert mask == [3 <= t < 12 for t in range(15)]
        assert all(0 <= v < 7 for v in x)
        for t in range(15):
            if mask[t]:
                assert y[t] == (x[t - 3] + x[t + 3]) % 7
    hot = S.make_context_sum(2, seed=16, length=15, offset=3, classes=7, one_hot=True)
    assert hot[0].x.shape == (15, 7) and torch.equal(hot[0].x.argmax(-1), S.make_context_sum(1, seed=16, length=15, offset=3, classes=7)[0].x)
    with pytest.raises(DataError, match="must exceed 2 \\* 'offset'"):
        S.make_context_sum(1, seed=0, length=6, offset=3)


def test_sine_targets_are_the_next_value() -> None:
    for ex in S.make_sine(5, seed=17, length=30, period=12.0, amplitude=0.5):
        x, y = ex.x[:, 0].double(), ex.y[:, 0].double()
        assert torch.equal(ex.y[:-1], ex.x[1:])
        assert x.abs().max() <= 0.5 + 1e-6
        # a sampled sine obeys s[t+1] = 2 cos(w) s[t] - s[t-1]
        w = 2 * math.pi / 12.0
        assert torch.allclose(y[1:], 2 * math.cos(w) * x[1:] - x[:-1], atol=1e-5)
        assert ex.x.shape == ex.y.shape == (30, 1)
        assert ex.extras["loss_mask"].tolist() == [False] + [True] * 29
    phases = {round(float(ex.x[0, 0]), 4) for ex in S.make_sine(6, seed=17)}
    assert len(phases) == 6
    free = S.make_sine(3, seed=17, length=10, period=5.0, mode="generate", warmup=0)
    assert all(not ex.x.any() and torch.equal(ex.y, free[0].y) for ex in free)
    assert free[0].y[:, 0].tolist() == pytest.approx([math.sin(2 * math.pi * (t + 1) / 5.0) for t in range(10)], abs=1e-6)
    with pytest.raises(DataError, match="did you mean 'generate'"):
        S.make_sine(1, seed=0, mode="generat")


def _plant_reference(u: list[float]) -> list[float]:
    ys = [0.0, 0.0]  # y_{-1}, y_0
    for uk in u:
        yk, ykm = ys[-1], ys[-2]
        ys.append(yk * ykm * (yk + 2.5) / (1 + yk**2 + ykm**2) + uk)
    return ys[2:]


def test_narendra_plant_follows_the_difference_equation() -> None:
    for ex in S.make_narendra_plant(4, seed=18, length=40):
        u = ex.x[:, 0].double().tolist()
        assert all(-2.0 <= v <= 2.0 for v in u)
        assert ex.y[:, 0].tolist() == pytest.approx(_plant_reference(u), rel=1e-5, abs=1e-5)
    (sine,) = S.make_narendra_plant(1, seed=18, length=50, signal="sine")
    assert sine.x[:, 0].tolist() == pytest.approx([math.sin(2 * math.pi * k / 25) for k in range(50)], abs=1e-6)
    assert sine.y[:, 0].tolist() == pytest.approx(_plant_reference(sine.x[:, 0].double().tolist()), rel=1e-5, abs=1e-5)


def test_jordan_plans_map_each_plan_to_its_fixed_sequence() -> None:
    seqs = S.jordan_sequences(seed=19)
    assert seqs.shape == (4, 8, 6) and set(seqs.unique().tolist()) == {0.0, 1.0}
    for p in range(4):  # distinct vectors within a plan, none all zeros (the state before the first step)
        assert len({tuple(v) for v in seqs[p].tolist()}) == 8
        assert seqs[p].sum(-1).min() >= 1
    examples = S.make_jordan_plans(12, seed=19)
    for i, ex in enumerate(examples):
        assert ex.extras["plan"] == i % 4
        assert torch.equal(ex.x, torch.nn.functional.one_hot(torch.full((8,), i % 4), 4).float())
        assert torch.equal(ex.y, seqs[i % 4])
    assert not torch.equal(S.jordan_sequences(seed=20), seqs)
    with pytest.raises(DataError, match="'steps' \\(8\\) must be <= 2 \\*\\* 'bits' - 1"):
        S.make_jordan_plans(1, seed=0, steps=8, bits=3)


def test_primitive_sequences_are_made_of_shared_primitives() -> None:
    shapes = S.primitive_shapes(10, amplitude=0.5)
    assert shapes.shape == (4, 10, 2)
    assert torch.equal(shapes[:, -1], torch.zeros(4, 2))  # every primitive ends at the origin
    assert shapes.abs().max() <= 1.0 + 1e-6
    orders = S.primitive_orders(seed=21, sequences=3, primitives=3, per_sequence=4)
    assert len(set(orders)) == 3 and sorted(o[0] for o in orders) == [0, 1, 2]
    assert all(a != b for o in orders for a, b in zip(o, o[1:]))
    examples = S.make_primitive_sequences(7, seed=21, sequences=3, primitives=3, per_sequence=4, primitive_len=10, amplitude=0.5)
    for i, ex in enumerate(examples):
        k = i % 3
        assert ex.extras["sequence"] == k and ex.extras["primitives"] == orders[k]
        assert ex.x.shape == (40, 5) and ex.y.shape == (40, 2)
        assert torch.equal(ex.y, torch.cat([shapes[j] for j in orders[k]]))
        assert torch.equal(ex.x[1:, :2], ex.y[:-1]) and not ex.x[0, :2].any()  # the current point; origin first
        assert ex.x[0, 2:].tolist() == [float(c == k) for c in range(3)] and not ex.x[1:, 2:].any()
    noisy = S.make_primitive_sequences(2, seed=21, noise=0.1)
    clean = S.make_primitive_sequences(2, seed=21)
    assert torch.equal(noisy[0].y, clean[0].y) and not torch.equal(noisy[0].x, clean[0].x)
    assert torch.equal(noisy[0].x[:, 2:], clean[0].x[:, 2:])
    with pytest.raises(DataError, match="exceeds the 2 distinct orders"):
        S.primitive_orders(seed=0, sequences=4, primitives=2, per_sequence=2)
