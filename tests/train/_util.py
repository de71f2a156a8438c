"""Helpers for the training tests (not a test module)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import rnnspec
from rnnspec.train.loop import RunResult, train


def quiet(msg: str) -> None:
    pass


def write_spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text.lstrip("\n"), encoding="utf-8")
    return p


def load(tmp_path: Path, text: str, name: str = "spec.yaml") -> rnnspec.Spec:
    return rnnspec.load(write_spec(tmp_path, text, name))


def run(spec: rnnspec.Spec, run_dir: Path, **kw: Any) -> RunResult:
    kw.setdefault("log", quiet)
    kw.setdefault("threads", 1)
    return train(spec, run_dir=run_dir, **kw)


def line_of(path: Path, needle: str) -> int:
    """1-based line number of the first line containing ``needle``."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def col_of(path: Path, needle: str, line: int | None = None) -> tuple[int, int]:
    """(line, column), 1-based, of ``needle`` in a file (in ``line`` if given)."""
    lines = path.read_text().splitlines()
    for i, text in enumerate(lines, 1):
        if (line is None or i == line) and needle in text:
            return i, text.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {path}")
