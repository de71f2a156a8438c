"""The number-translation task (Sutskever et al. 2014 encoder-decoder data):
the words of numbers against hand-written English, against an independent
words -> number parser, and the vocabularies against every generated token."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.data import DataError
from rnnspec.data import synthetic as S
from rnnspec.data.translation import (
    BOS_ID, EOS_ID, NUMBER_WORDS, make_translation, number_words, source_vocab, target_names,
)

HAND_WRITTEN = {
    0: "zero",
    7: "seven",
    13: "thirteen",
    40: "forty",
    101: "one hundred one",
    999: "nine hundred ninety nine",
    1000: "one thousand",
    1010: "one thousand ten",
    20_019: "twenty thousand nineteen",
    123_456: "one hundred twenty three thousand four hundred fifty six",
    700_000: "seven hundred thousand",
    5_000_300: "five million three hundred",
    999_999_999: "nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine",
}


@pytest.mark.parametrize("n", sorted(HAND_WRITTEN))
def test_number_words_of_hand_picked_numbers(n: int) -> None:
    assert " ".join(number_words(n)) == HAND_WRITTEN[n]


def _parse(words: list[str]) -> int:
    """Words -> number, written independently of the generator: small
    values add up, ``hundred`` multiplies the current group, ``thousand`` and
    ``million`` close it."""
    small = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                        "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
    small.update({w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())})
    total, group = 0, 0
    for w in words:
        if w in small:
            group += small[w]
        elif w == "hundred":
            group *= 100
        else:
            total += group * {"thousand": 1000, "million": 1_000_000}[w]
            group = 0
    return total + group


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 999_999_999))
def test_words_parse_back_to_the_number(n: int) -> None:
    words = number_words(n)
    assert _parse(words) == n
    assert set(words) <= set(NUMBER_WORDS)


def test_examples_encode_words_and_digits_in_both_directions() -> None:
    for direction in ("words_to_digits", "digits_to_words"):
        src, names = source_vocab(direction), target_names(direction)
        assert names[EOS_ID] == "<eos>" and names[BOS_ID] == "<bos>"
        for ex in make_translation(200, seed=5, high=999_999, direction=direction):
            k = ex.extras["number"]
            assert ex.extras["digits"] == str(k) and ex.extras["words"] == " ".join(number_words(k))
            assert ex.x.dtype == ex.y.dtype == torch.int64 and int(ex.y[-1]) == EOS_ID
            source = [src.token(int(i)) for i in ex.x]
            target = [names[int(i)] for i in ex.y[:-1]]
            words, digits = ex.extras["words"].split(), list(str(k))
            assert (source, target) == ((words, digits) if direction == "words_to_digits" else (digits, words))
            assert 1 not in ex.x.tolist()  # no <unk>: the vocabulary covers every source token
            assert 0 <= int(ex.y.min()) and int(ex.y.max()) < len(names)


def test_vocabularies_cover_every_token_and_read_text() -> None:
    words = source_vocab("words_to_digits")
    assert set(NUMBER_WORDS) <= set(words.tokens) and len(words) == 34
    assert words.encode("forty two thousand seven").tolist() == [words.id(w) for w in ("forty", "two", "thousand", "seven")]
    digits = source_vocab("digits_to_words")
    assert digits.encode("305").tolist() == [digits.id(c) for c in "305"] and len(digits) == 12
    assert target_names("digits_to_words")[4:] == list(NUMBER_WORDS)
    assert S.task_label_names("translation", direction="digits_to_words") == target_names("digits_to_words")
    assert S.task_vocab("translation").tokens == words.tokens and S.task_vocab("copy") is None


def test_deterministic_per_seed_and_digit_counts_balanced() -> None:
    a, b, c = (make_translation(400, seed=s) for s in (1, 1, 2))
    assert [e.extras["number"] for e in a] == [e.extras["number"] for e in b]
    assert [e.extras["number"] for e in a] != [e.extras["number"] for e in c]
    assert all(torch.equal(u.x, v.x) and torch.equal(u.y, v.y) for u, v in zip(a, b))
    counts = [sum(len(e.extras["digits"]) == d for e in a) for d in range(1, 7)]
    assert all(40 < c < 100 for c in counts), counts  # 400 / 6 = 67 each on average
    assert all(10 <= e.extras["number"] <= 20 for e in make_translation(50, seed=0, low=10, high=20))


def test_held_out_endings_are_excluded_or_alone() -> None:
    train = make_translation(500, seed=3, hold_out="37")
    test = make_translation(100, seed=3, hold_out="37", held_out="only")
    assert not any(e.extras["digits"].endswith("37") for e in train)
    assert all(e.extras["digits"].endswith("37") for e in test)
    # the training distribution restricted to the ending: every digit count that can end in 37
    assert {len(e.extras["digits"]) for e in test} == {2, 3, 4, 5, 6}
    assert len({e.extras["number"] for e in test}) > 50


def test_bad_parameters_are_named() -> None:
    with pytest.raises(DataError, match="'direction'"):
        make_translation(2, seed=0, direction="sideways")
    with pytest.raises(DataError, match="'low' \\(5\\) must not exceed 'high' \\(2\\)"):
        make_translation(2, seed=0, low=5, high=2)
    with pytest.raises(DataError, match="'high' must be an integer"):
        make_translation(2, seed=0, high=10**10)
    with pytest.raises(DataError, match="'hold_out'"):
        make_translation(2, seed=0, hold_out="3x")
    with pytest.raises(DataError, match="held_out: only needs hold_out"):
        make_translation(2, seed=0, held_out="only")
    with pytest.raises(DataError, match="no number in \\[0, 9\\] ends with '37'"):
        make_translation(2, seed=0, high=9, hold_out="37", held_out="only")
    with pytest.raises(DataError, match="whole numbers"):
        number_words(-1)
    with pytest.raises(DataError, match="did you mean 'direction'"):
        S.make_task("translation", 2, seed=0, directon="words_to_digits")
