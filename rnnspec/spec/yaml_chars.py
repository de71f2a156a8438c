"""Where each character of a YAML string value was written in the file.

PyYAML reports only where a scalar starts and ends; the value it builds has
been reshaped on the way: plain and folded (``>``) scalars join lines with a
space and drop indentation (YAML 1.2 §6.5 "line folding"), quoted scalars
unescape ``''`` and ``\\u0055`` (§7.3), block scalars strip their content
indentation, which an indentation indicator such as ``|2`` fixes relative to
the parent node rather than to the first line (§8.1.1.1).  To put an error
inside an equation at the character the user typed, this module re-reads the
scalar's source with the same rules as PyYAML's scanner (``scan_plain``,
``scan_flow_scalar``, ``scan_block_scalar`` in ``yaml/scanner.py``) and
records the ``(line, col)`` of every character it yields.

The re-reading is checked against the value PyYAML built: if the two differ
in any way (an exotic style or a scanner change this module does not follow),
no map is returned and callers fall back to the scalar's start position, so a
reported column is either exact or the start of the scalar, never a wrong one.
"""
from __future__ import annotations

from typing import Optional

from yaml.error import Mark
from yaml.nodes import ScalarNode
from yaml.scanner import Scanner

Point = tuple[int, int]  # 1-based (line, col) in the file

_BREAKS = "\r\n\x85\u2028\u2029"
_END = "\0"


class _Unfaithful(Exception):
    """The source does not read back the way PyYAML read it."""


class _Cursor:
    """A read position in the YAML buffer that counts lines and columns the
    way PyYAML's Reader does (``\\r\\n``, ``\\r``, ``\\n``, NEL, LS and PS end
    a line; a BOM takes no column), and collects the value's characters with
    the point each came from."""

    def __init__(self, buf: str, mark: Mark, stop: int) -> None:
        self.buf, self.i, self.stop = buf, mark.pointer, stop
        self.line, self.col = mark.line, mark.column
        self.chars: list[str] = []
        self.points: list[Point] = []

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.buf[j] if j < len(self.buf) else _END

    def here(self) -> Point:
        return self.line + 1, self.col + 1

    def forward(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i >= self.stop:
                raise _Unfaithful("read past the end of the scalar")
            ch = self.buf[self.i]
            self.i += 1
            if ch in "\n\x85\u2028\u2029" or (ch == "\r" and self.peek() != "\n"):
                self.line, self.col = self.line + 1, 0
            elif ch != "\ufeff":
                self.col += 1

    def take(self, n: int = 1) -> None:
        """Copy ``n`` source characters into the value."""
        for _ in range(n):
            self.emit(self.peek(), self.here())
            self.forward()

    def emit(self, text: str, at: Point) -> None:
        for ch in text:
            self.chars.append(ch)
            self.points.append(at)

    def line_break(self) -> Optional[tuple[str, Point]]:
        """Consume one line break; its value (NEL and CR LF read as LF) and where it was."""
        at, ch = self.here(), self.peek()
        if ch in "\r\n\x85":
            self.forward(2 if self.peek() == "\r" and self.peek(1) == "\n" else 1)
            return "\n", at
        if ch in "\u2028\u2029":
            self.forward()
            return ch, at
        return None

    def fold(self, first: tuple[str, Point], breaks: list[tuple[str, Point]]) -> None:
        """A line break followed by ``breaks``: one break reads as a space, n+1 as n newlines."""
        if first[0] != "\n":
            self.emit(*first)
        elif not breaks:
            self.emit(" ", first[1])
        for b in breaks:
            self.emit(*b)


# ---------------------------------------------------------------- plain

def _plain(cur: _Cursor, end: int) -> None:
    """Chunks of text separated by spaces or folded line breaks (scan_plain)."""
    while cur.i < end:
        n = 0
        while cur.peek(n) == " ":
            n += 1
        if cur.peek(n) not in _BREAKS:
            cur.take(max(n, 1))  # spaces inside a line, or a text character
            continue
        cur.forward(n)  # trailing spaces of a line are not part of the value
        first = cur.line_break()
        assert first is not None
        breaks: list[tuple[str, Point]] = []
        while cur.peek() in " " + _BREAKS:
            if cur.peek() == " ":
                cur.forward()
            else:
                breaks.append(cur.line_break())  # type: ignore[arg-type]
        cur.fold(first, breaks)


# ---------------------------------------------------------------- quoted

def _flow(cur: _Cursor, double: bool) -> None:
    """A single- or double-quoted scalar (scan_flow_scalar)."""
    quote = cur.peek()
    cur.forward()
    _flow_non_spaces(cur, double)
    while cur.peek() != quote:
        _flow_spaces(cur, double)
        _flow_non_spaces(cur, double)
    cur.forward()


def _flow_non_spaces(cur: _Cursor, double: bool) -> None:
    while True:
        n = 0
        while cur.peek(n) not in "'\"\\\0 \t" + _BREAKS:
            n += 1
        cur.take(n)
        ch = cur.peek()
        if not double and ch == "'" and cur.peek(1) == "'":
            cur.emit("'", cur.here())
            cur.forward(2)
        elif (double and ch == "'") or (not double and ch in '"\\'):
            cur.take()
        elif double and ch == "\\":
            at = cur.here()
            cur.forward()
            ch = cur.peek()
            if ch in Scanner.ESCAPE_REPLACEMENTS:
                cur.emit(Scanner.ESCAPE_REPLACEMENTS[ch], at)
                cur.forward()
            elif ch in Scanner.ESCAPE_CODES:
                width = Scanner.ESCAPE_CODES[ch]
                cur.forward()
                digits = cur.buf[cur.i : cur.i + width]
                try:
                    cur.emit(chr(int(digits, 16)), at)
                except ValueError:
                    raise _Unfaithful("bad escape") from None
                cur.forward(width)
            elif ch in _BREAKS:  # an escaped line break joins the lines with nothing
                cur.line_break()
                for b in _flow_breaks(cur):
                    cur.emit(*b)
            else:
                raise _Unfaithful("unknown escape")
        else:
            return


def _flow_spaces(cur: _Cursor, double: bool) -> None:
    n = 0
    while cur.peek(n) in " \t":
        n += 1
    if cur.peek(n) == _END:
        raise _Unfaithful("unterminated quoted scalar")
    if cur.peek(n) in _BREAKS:
        cur.forward(n)
        first = cur.line_break()
        assert first is not None
        cur.fold(first, _flow_breaks(cur))
    else:
        cur.take(n)


def _flow_breaks(cur: _Cursor) -> list[tuple[str, Point]]:
    breaks: list[tuple[str, Point]] = []
    while True:
        while cur.peek() in " \t":
            cur.forward()
        if cur.peek() not in _BREAKS:
            return breaks
        breaks.append(cur.line_break())  # type: ignore[arg-type]


# ---------------------------------------------------------------- block

def _block(cur: _Cursor, folded: bool, parent_indent: int) -> None:
    """A literal (|) or folded (>) block scalar (scan_block_scalar).

    ``parent_indent`` is the scanner's indentation level when it met the
    header: an indentation indicator counts from it, not from the text."""
    cur.forward()  # the | or >
    chomping: Optional[bool] = None
    increment: Optional[int] = None
    for _ in range(2):
        ch = cur.peek()
        if ch in "+-" and chomping is None:
            chomping = ch == "+"
            cur.forward()
        elif ch in "123456789" and increment is None:
            increment = int(ch)
            cur.forward()
    while cur.peek() == " ":
        cur.forward()
    if cur.peek() == "#":
        while cur.peek() not in _END + _BREAKS:
            cur.forward()
    cur.line_break()

    min_indent = max(parent_indent + 1, 1)
    if increment is None:
        breaks, max_indent = _block_indentation(cur)
        indent = max(min_indent, max_indent)
    else:
        indent = min_indent + increment - 1
        breaks = _block_breaks(cur, indent)

    last: Optional[tuple[str, Point]] = None
    while cur.col == indent and cur.peek() != _END and cur.i < cur.stop:
        for b in breaks:
            cur.emit(*b)
        leading_non_space = cur.peek() not in " \t"
        n = 0
        while cur.peek(n) not in _END + _BREAKS:
            n += 1
        cur.take(n)
        last = cur.line_break()
        breaks = _block_breaks(cur, indent)
        if not (cur.col == indent and cur.peek() != _END and cur.i < cur.stop):
            break
        if last is None:
            raise _Unfaithful("block line without a line break")
        if folded and last[0] == "\n" and leading_non_space and cur.peek() not in " \t":
            if not breaks:
                cur.emit(" ", last[1])
        else:
            cur.emit(*last)
    if chomping is not False and last is not None:
        cur.emit(*last)
    if chomping is True:
        for b in breaks:
            cur.emit(*b)


def _block_indentation(cur: _Cursor) -> tuple[list[tuple[str, Point]], int]:
    breaks: list[tuple[str, Point]] = []
    max_indent = 0
    while cur.peek() in " " + _BREAKS and cur.i < cur.stop:
        if cur.peek() != " ":
            breaks.append(cur.line_break())  # type: ignore[arg-type]
        else:
            cur.forward()
            max_indent = max(max_indent, cur.col)
    return breaks, max_indent


def _block_breaks(cur: _Cursor, indent: int) -> list[tuple[str, Point]]:
    breaks: list[tuple[str, Point]] = []
    while cur.col < indent and cur.peek() == " " and cur.i < cur.stop:
        cur.forward()
    while cur.peek() in _BREAKS and cur.i < cur.stop:
        breaks.append(cur.line_break())  # type: ignore[arg-type]
        while cur.col < indent and cur.peek() == " " and cur.i < cur.stop:
            cur.forward()
    return breaks


# ---------------------------------------------------------------- entry point

def scalar_points(node: ScalarNode, head: Optional[tuple[Mark, int]]) -> Optional[list[Point]]:
    """The (line, col) of each character of ``node.value``, or None where the
    source cannot be read back to exactly that value.

    ``head`` is where the scanner found the scalar's token (after any anchor
    or tag) and its indentation level then; the loader records both."""
    buf = node.start_mark.buffer
    if head is None or not buf or not isinstance(node.value, str):
        return None
    start, parent_indent = head
    cur = _Cursor(buf, start, node.end_mark.pointer)
    try:
        if node.style is None:
            _plain(cur, node.end_mark.pointer)
        elif node.style in ("'", '"'):
            _flow(cur, node.style == '"')
        elif node.style in ("|", ">"):
            _block(cur, node.style == ">", parent_indent)
        else:
            return None
    except Exception:  # noqa: BLE001 - any failure to re-read means "no map", never a crash
        return None
    if "".join(cur.chars) != node.value:
        return None
    return cur.points
