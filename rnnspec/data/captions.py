"""Pictures of simple scenes and their captions, for image description with
an encoder-decoder (Vinyals, Toshev, Bengio & Erhan 2015, "Show and tell";
Karpathy & Fei-Fei 2015, "Deep visual-semantic alignments": an image encoder
sets the initial state of a recurrent decoder that generates the caption one
word at a time, the previous word as its input).

Here the encoder is itself recurrent and reads the picture row by row (step
``r`` is row ``r``, its pixels' RGB values side by side), and its final state
starts the decoder (``objective: seq2seq``).

A scene holds one or two shapes (``square``, ``circle``, ``triangle``), each
``small`` (5 px) or ``big`` (8 px) and ``red``, ``green``, ``blue`` or
``yellow``, on a black ``size x size`` canvas with faint noise.  Two shapes
stand side by side or one above the other, and the caption names the left
(or upper) one first, so a scene has exactly one caption:

    a small red circle left of a big blue square
    a big yellow triangle above a small green circle
    a big green square

``x``: ``[size, size * 3]`` float32 rows; ``y``: int64 word ids of the
caption in :data:`CAPTION_WORDS` (a word vocabulary: ``<pad>`` 0, ``<unk>``
1, ``<eos>`` 2, ``<bos>`` 3), ending with ``<eos>``; ``extras["caption"]``:
the caption text.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .batch import Example, make_rng
from .errors import DataError

CAPTION_SHAPES = ("square", "circle", "triangle")
CAPTION_COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, 0.0)}
CAPTION_SIZES = {"small": 5, "big": 8}
CAPTION_WORDS: tuple[str, ...] = (
    "<pad>", "<unk>", "<eos>", "<bos>", "a", "left", "of", "above",
    *CAPTION_SIZES, *CAPTION_COLOURS, *CAPTION_SHAPES,
)
"""The caption vocabulary, by id (a word-level :class:`rnnspec.data.text.Vocab`)."""
EOS_ID, BOS_ID = 2, 3


def shape_pixels(shape: str, extent: int) -> np.ndarray:
    """A shape's pixels in its ``extent x extent`` box (bool)."""
    if shape == "square":
        return np.ones((extent, extent), dtype=bool)
    c = (extent - 1) / 2.0
    r = np.arange(extent)
    if shape == "circle":
        return (r[:, None] - c) ** 2 + (r[None, :] - c) ** 2 <= (extent / 2.0) ** 2 * 0.85
    if shape == "triangle":  # apex up: row k spans the middle k/(extent-1) of the base
        half = (r[:, None] * c / max(extent - 1, 1))
        return np.abs(r[None, :] - c) <= half + 0.5
    raise DataError(f"unknown shape {shape!r}; the shapes are {', '.join(CAPTION_SHAPES)}")


def describe(objects: list[tuple[str, str, str]], relation: str = "") -> str:
    """The caption of ``(size, colour, shape)`` objects, the first left of (or above) the second."""
    words = [" ".join(("a",) + o) for o in objects]
    if len(words) == 1:
        return words[0]
    return f"{words[0]} {'left of' if relation == 'left' else 'above'} {words[1]}"


def caption_ids(caption: str) -> list[int]:
    """Word ids of a caption, ``<eos>`` last."""
    ids = [CAPTION_WORDS.index(w) for w in caption.split()]
    return ids + [EOS_ID]


def make_captions(
    n: int,
    *,
    seed: int,
    size: int = 20,
    max_objects: int = 2,
    noise: float = 0.05,
) -> list[Example]:
    """``n`` scenes and captions (see the module doc)."""
    for name, v, lo in (("n", n, 0), ("size", size, 17), ("max_objects", max_objects, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise DataError(f"parameter '{name}' must be an integer >= {lo}, got {v!r}")
    if max_objects > 2:
        raise DataError(f"parameter 'max_objects' must be 1 or 2 (captions relate at most two shapes), got {max_objects}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 0.5:
        raise DataError(f"parameter 'noise' must be a number in [0, 0.5], got {noise!r}")
    sizes, colours = list(CAPTION_SIZES), list(CAPTION_COLOURS)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        count = int(rng.integers(1, max_objects + 1))
        objs = [(sizes[int(rng.integers(2))], colours[int(rng.integers(4))], CAPTION_SHAPES[int(rng.integers(3))])
                for _ in range(count)]
        ext = [CAPTION_SIZES[o[0]] for o in objs]
        relation = ""
        if count == 1:
            places = [(int(rng.integers(0, size - ext[0] + 1)), int(rng.integers(0, size - ext[0] + 1)))]
        else:
            relation = "left" if rng.random() < 0.5 else "above"
            # along the relation's axis: the first shape, a gap of at least one pixel, the second
            room = size - ext[0] - ext[1] - 1
            a = int(rng.integers(0, room + 1))
            b = int(rng.integers(a + ext[0] + 1, size - ext[1] + 1))
            across = [int(rng.integers(0, size - e + 1)) for e in ext]
            places = [(across[0], a), (across[1], b)] if relation == "left" else [(a, across[0]), (b, across[1])]
        img = np.zeros((size, size, 3), dtype=np.float32)
        for (sz, col, shape), e, (r, c) in zip(objs, ext, places):
            m = shape_pixels(shape, e)
            img[r : r + e, c : c + e][m] = CAPTION_COLOURS[col]
        img = np.clip(img + noise * rng.random(img.shape, dtype=np.float32), 0.0, 1.0)
        caption = describe(objs, relation)
        extras: dict[str, Any] = {"caption": caption}
        out.append(Example(torch.from_numpy(img.reshape(size, size * 3)),
                           torch.tensor(caption_ids(caption), dtype=torch.int64), extras, per_step=False))
    return out
