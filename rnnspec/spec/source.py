"""Raw spec data with a map from each value's path to its source position.

Both front ends (YAML and the .rnn DSL) produce a :class:`Raw`: plain Python
data (dicts, lists, scalars; equations already parsed) plus a
:class:`SourceMap`, so validation errors anywhere can be reported at the exact
``file:line:col`` the user wrote, whichever format they wrote it in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

from rnnspec.errors import Pos

Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class TextMap:
    """Where each character of one string value was written in the file.

    A YAML string is not a slice of the file: quotes, escapes, folded lines
    and stripped indentation sit between the value and its source, so an
    offset into the value says nothing about the column without this map.
    ``points[i]`` is the 1-based (line, col) of the value's i-th character.
    With no points (the value is empty, or its source could not be read back
    faithfully) every offset is reported at ``start``, the value's own start.
    """

    points: tuple[tuple[int, int], ...] = ()
    start: tuple[int, int] = (1, 1)

    def locate(self, index: int) -> tuple[int, int]:
        """(line, col) of character ``index``; just past the end continues the last line."""
        if not self.points:
            return self.start
        if index < 0:
            return self.points[0]
        if index < len(self.points):
            return self.points[index]
        line, col = self.points[-1]
        return line, col + 1 + index - len(self.points)

    def sub(self, begin: int, end: int) -> "TextMap":
        """The map of ``value[begin:end]``."""
        if not self.points:
            return self
        return TextMap(self.points[begin:end], self.locate(begin))


@dataclass
class SourceMap:
    file: str
    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)
    # YAML string values: the TextMap of each, or a function that builds it on
    # first use (most strings are never looked into; see text()).
    texts: dict[Path_, Union[TextMap, Callable[[], TextMap]]] = field(default_factory=dict)

    def value(self, path: Path_) -> Pos:
        """Position of the value at ``path``, or of its nearest located parent."""
        return self._lookup(self.values, path)

    def key(self, path: Path_) -> Pos:
        """Position of the key that names ``path`` (falls back to the value's)."""
        if path in self.keys:
            return self.keys[path]
        return self._lookup(self.values, path)

    def text(self, path: Path_) -> TextMap | None:
        """Where each character of the string at ``path`` was written, if known."""
        got = self.texts.get(tuple(path))
        if callable(got):
            got = self.texts[tuple(path)] = got()
        return got

    def _lookup(self, table: dict[Path_, Pos], path: Path_) -> Pos:
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return table.get((), Pos(self.file, 1, 1))

    def graft(self, prefix: Path_, other: "SourceMap") -> None:
        """Take ``other``'s positions, re-rooted under ``prefix``."""
        for k, v in other.values.items():
            self.values[prefix + k] = v
        for k, v in other.keys.items():
            self.keys[prefix + k] = v
        for k, t in other.texts.items():
            self.texts[prefix + k] = t


@dataclass
class Raw:
    data: dict[str, Any]
    where: SourceMap
