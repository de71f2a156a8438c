"""Clips of moving shapes with multi-label tags, for video tagging with a
recurrent net over the frames (the set-up of Donahue et al. 2015, "Long-term
recurrent convolutional networks", and Ng et al. 2015, "Beyond short
snippets": per-frame features into an LSTM, the clip's labels read after the
last frame; here the features are the raw pixels).

Each clip shows one or two different shapes (a filled ``square``, a ``disk``,
a horizontal ``bar``) on a ``size x size`` grey-scale canvas, each moving one
pixel per frame in its own direction (left, right, up or down) and never
leaving the canvas, over faint pixel noise.  Its tags (multi-hot, the order of
:data:`VIDEO_TAGS`) say which shapes appear and in which directions something
moves; one frame alone says which shapes there are, but only the change
between frames tells the directions.

``x``: ``[frames, size * size]`` float32 (the frames, flattened row by row);
``y``: ``[frames, len(VIDEO_TAGS)]`` float32, the clip's tags at every frame;
``extras["loss_mask"]``: true at the last frame only (tag the whole clip
once it has been seen); ``extras["objects"]``: ``(shape, direction, row,
col)`` per object, its top-left corner in the first frame.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .batch import Example, make_rng
from .errors import DataError

VIDEO_SHAPES = ("square", "disk", "bar")
VIDEO_DIRECTIONS = ("left", "right", "up", "down")
VIDEO_TAGS = VIDEO_SHAPES + VIDEO_DIRECTIONS
"""Tag order of the targets: the shapes, then the directions of motion."""

_STEP = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def shape_mask(shape: str) -> np.ndarray:
    """The pixels of a shape (bool, its bounding box)."""
    if shape == "square":
        return np.ones((4, 4), dtype=bool)
    if shape == "disk":
        r = np.arange(5) - 2
        return (r[:, None] ** 2 + r[None, :] ** 2) <= 5
    if shape == "bar":
        return np.ones((2, 6), dtype=bool)
    raise DataError(f"unknown shape {shape!r}; the shapes are {', '.join(VIDEO_SHAPES)}")


def draw_frame(size: int, objects: list[tuple[str, int, int]]) -> np.ndarray:
    """A ``[size, size]`` float32 frame with each ``(shape, row, col)`` drawn in white."""
    img = np.zeros((size, size), dtype=np.float32)
    for shape, r, c in objects:
        m = shape_mask(shape)
        img[r : r + m.shape[0], c : c + m.shape[1]][m] = 1.0
    return img


def _start(extent: int, size: int, frames: int, step: int, rng: np.random.Generator) -> int:
    """A start coordinate that keeps a shape of ``extent`` pixels inside the canvas for every frame."""
    travel = (frames - 1) * step
    lo, hi = max(0, -travel), size - extent - max(0, travel)
    if hi < lo:
        raise DataError(f"a shape of {extent} pixels moving {frames - 1} pixels does not fit a {size}-pixel canvas; "
                        "raise parameter 'size' or lower 'frames'")
    return int(rng.integers(lo, hi + 1))


def make_video(
    n: int,
    *,
    seed: int,
    size: int = 16,
    frames: int = 8,
    max_objects: int = 2,
    noise: float = 0.1,
) -> list[Example]:
    """``n`` clips (see the module doc): ``1..max_objects`` different shapes each."""
    for name, v, lo in (("n", n, 0), ("size", size, 8), ("frames", frames, 2), ("max_objects", max_objects, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise DataError(f"parameter '{name}' must be an integer >= {lo}, got {v!r}")
    if max_objects > len(VIDEO_SHAPES):
        raise DataError(f"parameter 'max_objects' must be <= {len(VIDEO_SHAPES)} (one of each shape), got {max_objects}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
        raise DataError(f"parameter 'noise' must be a number in [0, 1], got {noise!r}")
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        count = int(rng.integers(1, max_objects + 1))
        shapes = [VIDEO_SHAPES[k] for k in sorted(rng.choice(len(VIDEO_SHAPES), size=count, replace=False))]
        objects: list[tuple[str, str, int, int]] = []
        for shape in shapes:
            d = VIDEO_DIRECTIONS[int(rng.integers(len(VIDEO_DIRECTIONS)))]
            dr, dc = _STEP[d]
            h, w = shape_mask(shape).shape
            objects.append((shape, d, _start(h, size, frames, dr, rng), _start(w, size, frames, dc, rng)))
        clip = np.stack([
            draw_frame(size, [(s, r + f * _STEP[d][0], c + f * _STEP[d][1]) for s, d, r, c in objects])
            for f in range(frames)
        ])
        clip = np.clip(clip + noise * rng.random(clip.shape, dtype=np.float32), 0.0, 1.0)
        tags = np.zeros(len(VIDEO_TAGS), dtype=np.float32)
        for s, d, _, _ in objects:
            tags[VIDEO_TAGS.index(s)] = 1.0
            tags[VIDEO_TAGS.index(d)] = 1.0
        mask = np.zeros(frames, dtype=bool)
        mask[-1] = True
        extras: dict[str, Any] = {"loss_mask": torch.from_numpy(mask), "objects": objects}
        out.append(Example(torch.from_numpy(clip.reshape(frames, size * size).astype(np.float32)),
                           torch.from_numpy(np.tile(tags, (frames, 1))), extras, per_step=True))
    return out
