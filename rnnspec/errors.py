"""Errors a user can act on: every one names ``file:line:col``, shows the line
with a caret under the spot, and says what was expected.

A :class:`SpecError` is the only exception the CLI catches and prints without a
traceback, so every path that reads user input funnels its failures here.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a source file (``line`` 0 means "no position")."""

    file: str
    line: int = 0
    col: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


# Text of every file we read, so an error raised far from the parser can still
# quote the offending line.  Keyed by the name used in Pos.file.
_SOURCES: dict[str, str] = {}


def remember_source(name: str, text: str) -> None:
    _SOURCES[name] = text


def source_line(pos: Pos) -> str | None:
    text = _SOURCES.get(pos.file)
    if text is None:
        try:
            text = Path(pos.file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= pos.line <= len(lines):
        return lines[pos.line - 1]
    return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_of(choices: Iterable[str]) -> str:
    items = sorted(set(choices))
    if not items:
        return "nothing"
    if len(items) > 12:
        items = items[:12] + ["..."]
    return ", ".join(items)


class SpecError(Exception):
    """A problem in user input, located at ``pos``.

    ``str(err)`` is the full report: location, message, the source line and a
    caret; a list of further problems may follow (``also``).
    """

    def __init__(self, message: str, pos: Pos | None = None, also: Sequence["SpecError"] = ()) -> None:
        self.message = message
        self.pos = pos
        self.also = list(also)
        super().__init__(self.render())

    def render(self) -> str:
        parts = [self._render_one()]
        for extra in self.also:
            parts.append(extra._render_one())
        return "\n".join(parts)

    def _render_one(self) -> str:
        if self.pos is None:
            return f"error: {self.message}"
        head = f"{self.pos}: error: {self.message}"
        line = source_line(self.pos) if self.pos.line > 0 else None
        if line is None:
            return head
        col = max(self.pos.col, 1)
        width = max(1, (self.pos.end_col - col) if self.pos.end_col > col else 1)
        if len(line) > 120:  # show a window around the spot, not a megabyte of line
            start = max(0, col - 60)
            line = ("..." if start else "") + line[start : start + 120] + ("..." if start + 120 < len(line) else "")
            col = col - start + (3 if start else 0)
        gutter = f"{self.pos.line:>5} | "
        caret = " " * (len(gutter) + col - 1) + "^" * min(width, max(1, len(line) - col + 1))
        return f"{head}\n{gutter}{line}\n{caret}"


def collect(errors: list[SpecError]) -> None:
    """Raise the first of ``errors`` with the rest attached, if any."""
    if errors:
        first, *rest = errors
        raise SpecError(first.message, first.pos, also=rest)
