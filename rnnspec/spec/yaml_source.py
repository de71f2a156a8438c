"""YAML front end: safe loading that keeps the source position of every key
and value, refuses what a spec must never contain (tags, duplicate keys,
code), and ends hostile files fast (size, binary, nesting, alias bombs).
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Optional

import yaml
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.tokens import ScalarToken

from rnnspec.errors import Pos, SpecError
from rnnspec.spec import limits
from rnnspec.spec.source import Raw, SourceMap, TextMap
from rnnspec.spec.yaml_chars import scalar_points

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that bounds nesting while composing the node graph."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._filename = filename
        # Each scalar token, by the buffer offset where it ends (as its node
        # does): where the token itself starts (after any anchor or tag) and
        # the scanner's indentation level then, which a block scalar's
        # indentation indicator (|2) counts from.  Read by yaml_chars.
        self.scalar_heads: dict[int, tuple[Mark, int]] = {}

    def _note(self, token: ScalarToken, indent: int) -> ScalarToken:
        self.scalar_heads[token.end_mark.pointer] = (token.start_mark, indent)
        return token

    def scan_plain(self) -> ScalarToken:  # type: ignore[override]
        return self._note(super().scan_plain(), self.indent)

    def scan_flow_scalar(self, style: str) -> ScalarToken:  # type: ignore[override]
        return self._note(super().scan_flow_scalar(style), self.indent)

    def scan_block_scalar(self, style: str) -> ScalarToken:  # type: ignore[override]
        indent = self.indent  # before the scan: the block's parent level
        return self._note(super().scan_block_scalar(style), indent)

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self._depth += 1
        if self._depth > limits.MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecError(
                f"nesting deeper than {limits.MAX_DEPTH} levels; a spec never needs this",
                Pos(self._filename, mark.line + 1, mark.column + 1),
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# YAML 1.1 reads `3e-3` as a string; every user means a number.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _pos(filename: str, node: Node) -> Pos:
    m, e = node.start_mark, node.end_mark
    col = m.column + 1
    end = e.column + 1 if e.line == m.line else col + 1
    if isinstance(node, ScalarNode) and node.style in ("'", '"'):
        col += 1
        end -= 1
    elif isinstance(node, ScalarNode) and node.style in ("|", ">"):
        # Block scalar: content starts on the next line, at its indentation.
        lines = m.buffer.splitlines() if m.buffer else []
        line = m.line + 1
        while line < len(lines) and not lines[line].strip():
            line += 1
        if line < len(lines):
            text = lines[line]
            return Pos(filename, line + 1, len(text) - len(text.lstrip()) + 1)
    return Pos(filename, m.line + 1, col, end)


def _text_map(node: ScalarNode, head: Optional[tuple[Mark, int]], start: Pos) -> TextMap:
    """Where each character of a string scalar was written.  Where the source
    cannot be read back to the value (see yaml_chars), the map is empty and
    every offset falls back to the scalar's start: coarse, never wrong."""
    points = scalar_points(node, head)
    return TextMap(tuple(points or ()), (start.line, start.col))


def check_text(data: bytes | str, filename: str) -> str:
    """Size and binary checks shared by both front ends."""
    if len(data) > limits.MAX_FILE_BYTES:
        raise SpecError(
            f"file is {len(data)} bytes; a spec may be at most {limits.MAX_FILE_BYTES} bytes",
            Pos(filename),
        )
    if isinstance(data, bytes):
        if b"\x00" in data[:8192]:
            raise SpecError("this is a binary file, not a spec (expected YAML or .rnn text)", Pos(filename))
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError(f"not UTF-8 text (byte {e.start}); expected a YAML or .rnn spec", Pos(filename)) from None
    if "\x00" in data:
        raise SpecError("this is a binary file, not a spec (expected YAML or .rnn text)", Pos(filename))
    return data


def load_yaml(text: str, filename: str) -> Raw:
    """Parse YAML text into plain data plus a source map."""
    loader = _Loader(text, filename)
    try:
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except SpecError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = Pos(filename, mark.line + 1, mark.column + 1) if mark else Pos(filename)
        what = (e.problem or "invalid YAML").strip()
        if e.context:
            what = f"{e.context.strip()}: {what}"
        raise SpecError(f"invalid YAML: {what}", pos) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", Pos(filename)) from None
    except RecursionError:
        raise SpecError("nesting too deep", Pos(filename)) from None
    where = SourceMap(filename)
    if node is not None and _expanded_size(node, {}) > limits.MAX_NODES:
        raise SpecError(
            f"more than {limits.MAX_NODES} values after expanding aliases (an alias bomb?)", _pos(filename, node)
        )
    if node is None:
        raise SpecError("empty spec: expected a mapping with 'name' and 'model'", Pos(filename, 1, 1))
    budget = [limits.MAX_NODES]
    data = _convert(node, (), where, loader, budget)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping (key: value) at the top level", where.value(()))
    return Raw(data, where)


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Values ``node`` stands for once every alias is expanded, counted over the
    shared graph (each distinct node once), so a bomb is caught before expansion."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # cycles cannot arise from the safe composer; guard anyway
        if isinstance(node, MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            memo[key] = 1 + sum(_expanded_size(v, memo) for v in node.value)
    return memo[key]


def _convert(node: Node, path: tuple, where: SourceMap, loader: _Loader, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError(
            f"more than {limits.MAX_NODES} values after expanding aliases (an alias bomb?)", _pos(where.file, node)
        )
    where.values[path] = _pos(where.file, node)
    if node.tag not in _STANDARD_TAGS:
        raise SpecError(f"YAML tag {node.tag!r} is not allowed in a spec (specs are data, never code)", _pos(where.file, node))
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise SpecError("keys must be plain names", _pos(where.file, key_node))
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys ('<<') are not supported in specs", _pos(where.file, key_node))
            key = loader.construct_object(key_node)
            if not isinstance(key, (str, int)):
                raise SpecError(f"keys must be names, got {key!r}", _pos(where.file, key_node))
            key = str(key)
            if key in out:
                first = where.keys.get(path + (key,))
                raise SpecError(
                    f"duplicate key {key!r}" + (f" (first given at line {first.line})" if first else ""),
                    _pos(where.file, key_node),
                )
            where.keys[path + (key,)] = _pos(where.file, key_node)
            out[key] = _convert(value_node, path + (key,), where, loader, budget)
        return out
    if isinstance(node, SequenceNode):
        return [_convert(item, path + (i,), where, loader, budget) for i, item in enumerate(node.value)]
    if isinstance(node, ScalarNode):
        value = loader.construct_object(node, deep=True)
        if isinstance(value, str):  # built lazily: only equations and the like are ever looked into
            head = loader.scalar_heads.get(node.end_mark.pointer)
            where.texts[path] = partial(_text_map, node, head, where.values[path])
        return value
    raise SpecError("unsupported YAML node", _pos(where.file, node))
