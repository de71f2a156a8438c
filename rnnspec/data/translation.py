"""Numbers written out in English words <-> their digits: a small, exactly
checkable translation task for an encoder-decoder (Sutskever, Vinyals & Le
2014, "Sequence to sequence learning with neural networks": an LSTM reads
the source sentence, its final state starts a second LSTM that writes the
translation one token at a time, the previous token as its input, eq. 1
p(y_1..y_T' | x_1..x_T) = prod_t p(y_t | v, y_1..y_t-1)).

Here the "sentences" are integers.  ``direction: words_to_digits`` reads

    three hundred forty two thousand seven

and writes ``3 4 2 0 0 7``; ``digits_to_words`` is the reverse.  The words
are American English without "and", and a tens-and-units pair is two tokens
(``forty two``, written "forty-two" in prose), so the word vocabulary is
small (:data:`NUMBER_WORDS`).  Translating needs what real translation
needs, alignment (``thousand`` decides where the next digits go) and
insertion (zeros that no word names), but no reordering, which keeps it
learnable without attention.

Numbers are drawn by first choosing a digit count uniformly, then a number
with that many digits uniformly in ``[low, high]``, so small numbers are not
swamped by big ones.  ``hold_out`` (a digit string) names numbers whose
decimal form ends with it: they are left out (``held_out: exclude``, for
training) or are the only ones drawn (``held_out: only``, for testing
generalization to word combinations never seen at the end of a number).

``x``: int64 source ids (:func:`source_vocab`); ``y``: int64 target ids in
:func:`target_names` (``<pad>`` 0, ``<unk>`` 1, ``<eos>`` 2, ``<bos>`` 3),
ending with ``<eos>``; ``extras``: ``number``, ``words``, ``digits``.
"""
from __future__ import annotations

from typing import Any

import torch

from .batch import Example, make_rng
from .errors import DataError
from .text import Vocab

ONES: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)
TENS: tuple[str, ...] = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES: tuple[str, ...] = ("hundred", "thousand", "million")
NUMBER_WORDS: tuple[str, ...] = ONES + TENS + SCALES
"""Every word a number below one billion is written with."""
DIGITS: tuple[str, ...] = tuple("0123456789")
SPECIALS: tuple[str, ...] = ("<pad>", "<unk>", "<eos>", "<bos>")
EOS_ID, BOS_ID = 2, 3
MAX_NUMBER = 999_999_999
DIRECTIONS = ("words_to_digits", "digits_to_words")


def _below_thousand(k: int) -> list[str]:
    words: list[str] = []
    h, r = divmod(k, 100)
    if h:
        words += [ONES[h], "hundred"]
    if r >= 20:
        words.append(TENS[r // 10 - 2])
        if r % 10:
            words.append(ONES[r % 10])
    elif r:
        words.append(ONES[r])
    return words


def number_words(n: int) -> list[str]:
    """The English words of ``0 <= n <= 999_999_999``, one token per word."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NUMBER:
        raise DataError(f"only whole numbers 0..{MAX_NUMBER} can be written in words, got {n!r}")
    if n == 0:
        return ["zero"]
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    words: list[str] = []
    if millions:
        words += _below_thousand(millions) + ["million"]
    if thousands:
        words += _below_thousand(thousands) + ["thousand"]
    return words + _below_thousand(units)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise DataError(f"parameter 'direction' must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction


def source_vocab(direction: str = "words_to_digits") -> Vocab:
    """The source vocabulary: words (a word-level vocabulary, so ``rnnspec
    predict`` reads lines like "forty two") or digits (character level)."""
    if _check_direction(direction) == "words_to_digits":
        return Vocab(Vocab.specials_for("word") + NUMBER_WORDS, level="word")
    return Vocab(Vocab.specials_for("char") + DIGITS, level="char")


def target_names(direction: str = "words_to_digits", **_: Any) -> list[str]:
    """Target token names by id (a run keeps them so predictions print as text)."""
    return list(SPECIALS + (DIGITS if _check_direction(direction) == "words_to_digits" else NUMBER_WORDS))


def _check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise DataError(f"parameter '{name}' must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _draw(rng: Any, low: int, high: int) -> int:
    """A digit count uniformly among those in range, then a number of that length."""
    counts = range(len(str(low)), len(str(high)) + 1)
    d = counts[int(rng.integers(len(counts)))]
    lo, hi = max(low, 10 ** (d - 1) if d > 1 else 0), min(high, 10**d - 1)
    return int(rng.integers(lo, hi + 1))


def make_translation(
    n: int,
    *,
    seed: int,
    low: int = 0,
    high: int = 999_999,
    direction: str = "words_to_digits",
    hold_out: str = "",
    held_out: str = "exclude",
) -> list[Example]:
    """``n`` numbers as (source, target) pairs (see the module doc)."""
    n = _check_int("n", n, 0, 10**9)
    low, high = _check_int("low", low, 0, MAX_NUMBER), _check_int("high", high, 0, MAX_NUMBER)
    if low > high:
        raise DataError(f"parameter 'low' ({low}) must not exceed 'high' ({high})")
    _check_direction(direction)
    if not isinstance(hold_out, str) or (hold_out and not hold_out.isdigit()):
        raise DataError(f"parameter 'hold_out' must be a string of digits, a number ending such as \"37\" "
                        f"(quoted, so that \"07\" keeps its zero), got {hold_out!r}")
    if held_out not in ("exclude", "only"):
        raise DataError(f"parameter 'held_out' must be 'exclude' or 'only', got {held_out!r}")
    if held_out == "only" and not hold_out:
        raise DataError("held_out: only needs hold_out (the number ending to draw)")
    src = source_vocab(direction)
    tgt_index = {t: i for i, t in enumerate(target_names(direction))}
    only = held_out == "only"
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        for _ in range(10_000):  # rejection: a held-out ending is at most 1 in 10 numbers of a digit count
            k = _draw(rng, low, high)
            if not hold_out or str(k).endswith(hold_out) == only:
                break
        else:
            raise DataError(f"no number in [{low}, {high}] {'ends' if only else 'avoids ending'} with {hold_out!r}")
        words, digits = number_words(k), list(str(k))
        source, target = (words, digits) if direction == "words_to_digits" else (digits, words)
        y = [tgt_index[t] for t in target] + [EOS_ID]
        out.append(Example(src.encode_tokens(source), torch.tensor(y, dtype=torch.int64),
                           {"number": k, "words": " ".join(words), "digits": str(k)}, per_step=False))
    return out
