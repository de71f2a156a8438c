"""Raw spec data with a map from each value's path to its source position.

Both front ends (YAML and the .rnn DSL) produce a :class:`Raw`: plain Python
data (dicts, lists, scalars; equations already parsed) plus a
:class:`SourceMap`, so validation errors anywhere can be reported at the exact
``file:line:col`` the user wrote, whichever format they wrote it in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnspec.errors import Pos

Path_ = tuple[Any, ...]


@dataclass
class SourceMap:
    file: str
    values: dict[Path_, Pos] = field(default_factory=dict)
    keys: dict[Path_, Pos] = field(default_factory=dict)
    # Paths of YAML block scalars (| or >): every line of those shares one indentation.
    blocks: set[Path_] = field(default_factory=set)
    # Quoted one-line YAML scalars: for each character of the value, its offset
    # in the source text (escapes like '' or \u0055 make the two differ).
    colmaps: dict[Path_, list[int]] = field(default_factory=dict)

    def value(self, path: Path_) -> Pos:
        """Position of the value at ``path``, or of its nearest located parent."""
        return self._lookup(self.values, path)

    def key(self, path: Path_) -> Pos:
        """Position of the key that names ``path`` (falls back to the value's)."""
        if path in self.keys:
            return self.keys[path]
        return self._lookup(self.values, path)

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


@dataclass
class Raw:
    data: dict[str, Any]
    where: SourceMap
