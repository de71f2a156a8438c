"""Command-line overrides of a spec: ``--train.optimizer.adam.lr=1e-3``.

An override replaces one value of the spec's data *before* validation, so a
bad override is reported like a bad spec entry, located on the command
line::

    <command line>:1:27: error: 'train.optimizer.adam.lr': expected a number, got the string 'fast'
        1 | --train.optimizer.adam.lr=fast
                                      ^

Values are YAML (``1e-3``, ``true``, ``[0.9, 0.99]``, ``{task: adding}``).
Setting one member of an exclusive group replaces the others: e.g.
``--train.optimizer.sgd.lr=0.1`` switches a spec written with ``adam`` to
SGD, ``--train.data.text=my.txt`` replaces a ``corpus`` source.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from rnnspec.errors import Pos, SpecError, did_you_mean, remember_source
from rnnspec.spec.model import DATA_SOURCES
from rnnspec.spec.source import Raw

CMDLINE = "<command line>"
TOP_LEVEL = ("name", "include", "cells", "model", "train")
# Groups of keys of which a spec gives one: setting one drops its siblings.
EXCLUSIVE: dict[tuple[str, ...], tuple[str, ...]] = {
    ("train", "optimizer"): ("sgd", "adam", "adamw", "rmsprop", "adagrad"),
    ("train", "schedule"): ("constant", "step", "cosine", "linear", "plateau"),
    ("train", "data"): DATA_SOURCES,
    ("model", "input"): ("tokens", "vector"),
    ("model", "output"): ("logits", "linear"),
}


@dataclass
class Override:
    path: tuple[Any, ...]
    text: str  # the value as written
    key_pos: Pos
    value_pos: Pos


def parse_overrides(args: Sequence[str]) -> list[Override]:
    """``["--a.b=1", "--c.d", "2"]`` -> overrides, located in one command-line text."""
    line_parts: list[str] = []
    col = 1
    pending: list[tuple[str, str, int, int]] = []  # (key, value, key col, value col)
    items = list(args)
    i = 0
    while i < len(items):
        tok = items[i]
        if not tok.startswith("--") or len(tok) <= 2:
            raise SpecError(f"unexpected argument {tok!r}; overrides look like --train.batch=16", Pos(CMDLINE))
        if "=" in tok:
            key, value = tok[2:].split("=", 1)
            text = tok
            key_col, value_col = col + 2, col + 3 + len(key)
        else:
            if i + 1 >= len(items):
                raise SpecError(f"{tok} needs a value (--key=value)", Pos(CMDLINE))
            key, value = tok[2:], items[i + 1]
            text = f"{tok} {value}"
            key_col, value_col = col + 2, col + len(tok) + 1
            i += 1
        line_parts.append(text)
        col += len(text) + 1
        pending.append((key, value, key_col, value_col))
        i += 1
    line = " ".join(line_parts)
    remember_source(CMDLINE, line)
    out = []
    for key, value, kc, vc in pending:
        parts = key.split(".")
        if parts[0] not in TOP_LEVEL or any(p == "" for p in parts):
            raise SpecError(
                f"unknown option --{key}{did_you_mean(parts[0], TOP_LEVEL)}; spec overrides start with "
                f"{', '.join('--' + k for k in TOP_LEVEL)} (e.g. --train.optimizer.adam.lr=1e-3)",
                Pos(CMDLINE, 1, kc, kc + len(key)),
            )
        path = tuple(int(p) if p.isdigit() else p for p in parts)
        out.append(Override(path, value, Pos(CMDLINE, 1, kc, kc + len(key)), Pos(CMDLINE, 1, vc, vc + max(1, len(value)))))
    return out


def _parse_value(o: Override) -> tuple[Any, dict[tuple, Pos]]:
    """The override's value and the positions of its parts (relative paths)."""
    from rnnspec.spec.yaml_source import load_yaml

    prefix = "v: "
    try:
        raw = load_yaml(prefix + o.text, "<override>")
    except SpecError as e:
        col = o.value_pos.col + max(0, (e.pos.col if e.pos else 1) - 1 - len(prefix))
        raise SpecError(f"--{'.'.join(map(str, o.path))}: {e.message}", Pos(CMDLINE, 1, col)) from None
    positions: dict[tuple, Pos] = {}
    for path, pos in raw.where.values.items():
        if path[:1] == ("v",):
            col = o.value_pos.col + max(0, pos.col - 1 - len(prefix))
            end = o.value_pos.col + max(0, pos.end_col - 1 - len(prefix)) if pos.end_col else 0
            positions[path[1:]] = Pos(CMDLINE, 1, col, end)
    return raw.data.get("v"), positions


def apply_overrides(raw: Raw, overrides: Sequence[Override]) -> None:
    """Set each override's value in ``raw`` (data and source map)."""
    for o in overrides:
        value, positions = _parse_value(o)
        node: Any = raw.data
        path = o.path
        for k, part in enumerate(path[:-1]):
            here = path[: k + 1]
            if isinstance(node, list):
                if not isinstance(part, int) or not 0 <= part < len(node):
                    raise SpecError(f"--{'.'.join(map(str, path))}: no item {part!r} in this list of {len(node)}", o.key_pos)
                if not isinstance(node[part], (dict, list)):
                    node[part] = {}
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise SpecError(f"--{'.'.join(map(str, path))}: {'.'.join(map(str, path[:k]))} is not a mapping", o.key_pos)
            _exclusive(node, path[:k], part, raw)
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
                raw.where.keys[here] = o.key_pos
                raw.where.values[here] = o.key_pos
            node = node[part]
        last = path[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or not 0 <= last < len(node):
                raise SpecError(f"--{'.'.join(map(str, path))}: no item {last!r} in this list of {len(node)}", o.key_pos)
        elif isinstance(node, dict):
            _exclusive(node, path[:-1], last, raw)
        else:
            raise SpecError(f"--{'.'.join(map(str, path))}: the parent is not a mapping", o.key_pos)
        _forget(raw, path)
        node[last] = value
        raw.where.keys[path] = o.key_pos
        for rel, pos in positions.items():
            raw.where.values[path + rel] = pos


def _exclusive(node: dict, parent: tuple, key: Any, raw: Raw) -> None:
    group = EXCLUSIVE.get(tuple(parent))
    if group and key in group and key not in node:
        for other in group:
            if other in node:
                del node[other]
                _forget(raw, tuple(parent) + (other,))


def _forget(raw: Raw, path: tuple) -> None:
    n = len(path)
    for table in (raw.where.values, raw.where.keys):
        for k in [k for k in table if k[:n] == path]:
            del table[k]


@contextlib.contextmanager
def _overriding(target: str, overrides: Sequence[Override]) -> Iterator[None]:
    """Apply ``overrides`` to the raw data of file ``target`` as the loader reads it."""
    import rnnspec.spec.loader as L

    orig_yaml, orig_rnn = L.load_yaml, L.load_rnn

    def wrap(fn: Any) -> Any:
        def read(text: str, filename: str) -> Raw:
            raw = fn(text, filename)
            if filename == target:
                apply_overrides(raw, overrides)
            return raw

        return read

    L.load_yaml, L.load_rnn = wrap(orig_yaml), wrap(orig_rnn)  # type: ignore[assignment]
    try:
        yield
    finally:
        L.load_yaml, L.load_rnn = orig_yaml, orig_rnn  # type: ignore[assignment]


def load_with_overrides(path: str | Path, overrides: Sequence[Override]) -> Any:
    """:func:`rnnspec.spec.loader.load` with ``overrides`` applied before validation."""
    from rnnspec.spec.loader import load

    if not overrides:
        return load(path)
    with _overriding(str(Path(path)), overrides):
        return load(path)
