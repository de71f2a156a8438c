"""The .rnn front end, and the equation parser every front end shares.

One Lark grammar (``grammar/rnnspec.lark``) reads whole ``.rnn`` files and,
through its other entry points, the equations, initializers and shapes that
YAML specs carry as strings, so both formats speak the same language and
report errors the same way.
"""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from rnnspec.errors import Pos, SpecError, remember_source
from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var
from rnnspec.spec import limits
from rnnspec.spec.source import Raw, SourceMap, TextMap

_TOKEN_WORDS = {
    "NAME": "a name",
    "STRING": 'a "string"',
    "SIGNED_NUMBER": "a number",
    "NUMBER": "a number",
    "INT": "an integer",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "SEMICOLON": "';'",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "AT": "'@'",
    "__ANON_0": "'->'",
    "$END": "end of input",
}


def _grammar_text() -> str:
    try:
        return resources.files("rnnspec.grammar").joinpath("rnnspec.lark").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # running from a source tree without install
        return (Path(__file__).resolve().parents[2] / "grammar" / "rnnspec.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
        start=["start", "equation_only", "init_only", "shape_only"],
    )


def _describe_expected(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(t, repr(t.strip('"').lower()) if t.isupper() else repr(t)) for t in expected})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return " or ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " or " + words[-1]


class _Offset:
    """Maps positions inside an embedded string to the enclosing file.

    With a :class:`TextMap` (YAML strings: quoted, folded, block scalars) a
    (line, col) in ``text`` becomes a character offset, and the map says where
    that character was written.  Without one, ``text`` sits in the file as is
    from ``base`` on (a .rnn file, or one line of it)."""

    def __init__(self, base: Pos, chars: TextMap | None = None, text: str = "") -> None:
        self.base, self.chars = base, chars
        # Lark counts lines by "\n" only; offsets of each line's first character
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"] if chars is not None else []

    def __call__(self, line: int, col: int) -> Pos:
        b = self.base
        if b.line <= 0:
            return Pos(b.file, 0, 0)
        if self.chars is not None:
            start = self.starts[min(max(line, 1), len(self.starts)) - 1]
            src_line, src_col = self.chars.locate(start + col - 1)
            return Pos(b.file, src_line, src_col)
        if line <= 1:
            return Pos(b.file, b.line, b.col + col - 1)
        return Pos(b.file, b.line + line - 1, col)

    def span(self, line: int, col: int, end_line: int, end_col: int) -> Pos:
        """Position of text from (line, col) up to (end_line, end_col), exclusive;
        the end is kept where both ends land on one line of the file."""
        p = self(line, col)
        if end_line == line or self.chars is not None:
            q = self(end_line, end_col)
            if q.line == p.line and q.col > p.col:
                return Pos(p.file, p.line, p.col, q.col)
        if p.line <= 0:
            return p
        return Pos(p.file, p.line, p.col, p.col + 1)


def _parse(text: str, start: str, at: _Offset, what: str) -> Tree:
    try:
        tree = parser().parse(text, start=start)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, at, what) from None
    except RecursionError:
        raise SpecError(f"{what} nested too deeply", at(1, 1)) from None
    _check_depth(tree, at, what)
    return tree


def _check_depth(tree: Tree, at: _Offset, what: str) -> None:
    """Refuse trees deeper than any spec needs, before anything recurses over
    them (Lark parses iteratively; the builders and the IR recurse)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.MAX_EXPR_DEPTH:
            meta = node.meta
            line, col = (meta.line, meta.column) if not getattr(meta, "empty", True) else (1, 1)
            raise SpecError(f"{what} nested deeper than {limits.MAX_EXPR_DEPTH} levels; a spec never needs this", at(line, col))
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))


def _syntax_error(e: UnexpectedInput, text: str, at: _Offset, what: str) -> SpecError:
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            line, col = _end_of(text)
            return SpecError(f"{what} ends too early; expected {_describe_expected(e.expected)}", at(line, col))
        return SpecError(
            f"unexpected {tok.value!r} in {what}; expected {_describe_expected(e.expected)}",
            at.span(tok.line, tok.column, tok.line, tok.column + max(1, len(str(tok.value)))),
        )
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else "?"
        hint = "; a prime (') only follows a state name, as in h'" if ch == "'" else ""
        return SpecError(f"unexpected character {ch!r} in {what}{hint}", at(e.line, e.column))
    if isinstance(e, UnexpectedEOF):
        line, col = _end_of(text)
        return SpecError(f"{what} ends too early; expected {_describe_expected(set(e.expected))}", at(line, col))
    return SpecError(f"cannot parse {what}: {e}", at(getattr(e, "line", 1), getattr(e, "column", 1)))


def _end_of(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character."""
    body = text.rstrip()
    line = body.count("\n") + 1
    return line, len(body.rsplit("\n", 1)[-1]) + 1


# ---------------------------------------------------------------- expressions

class _Builder:
    """Turns parse trees into plain data / AST nodes with absolute positions."""

    def __init__(self, at: _Offset) -> None:
        self.at = at

    def pos(self, item: Tree | Token) -> Pos:
        if isinstance(item, Token):
            line, col = item.line or 1, item.column or 1
            return self.at.span(line, col, line, col + max(1, len(item.value)))
        meta = item.meta
        if getattr(meta, "empty", True):
            return self.at(1, 1)
        return self.at.span(meta.line, meta.column, meta.end_line, meta.end_column)

    def expr(self, t: Tree | Token) -> Expr:
        if isinstance(t, Token):  # parenthesised single token never reaches here; defensive
            return Var(str(t), self.pos(t))
        kind = t.data
        p = self.pos(t)
        if kind == "number":
            return Num(float(t.children[0]), p)
        if kind == "var":
            return Var(str(t.children[0]), p)
        if kind == "neg":
            return Neg(self.expr(t.children[0]), p)
        if kind in ("add", "sub", "mul", "div", "matmul"):
            op = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@"}[kind]
            return BinOp(op, self.expr(t.children[0]), self.expr(t.children[1]), p)
        if kind == "call":
            name = t.children[0]
            return Call(str(name), tuple(self.expr(a) for a in t.children[1:]), self.pos(name))
        raise SpecError(f"unexpected expression node {kind}", p)

    def equation(self, t: Tree) -> Equation:
        *targets, rhs = t.children
        names = tuple(str(tt.children[0]) for tt in targets)
        return Equation(names, self.expr(rhs), self.pos(t), tuple(self.pos(tt.children[0]) for tt in targets))

    def init(self, t: Tree) -> str:
        name, *args = t.children
        if not args and "(" not in _slice(t):
            return str(name)
        return f"{name}(" + ", ".join(_num_text(a) for a in args) + ")"

    def dim(self, t: Tree) -> int | str:
        if t.data == "dim_int":
            return int(t.children[0])
        if t.data == "dim_name":
            return str(t.children[0])
        return f"{int(t.children[0])}*{t.children[1]}"

    def shape(self, t: Tree) -> list[int | str]:
        return [self.dim(d) for d in t.children]


def _slice(t: Tree) -> str:
    return ""  # init() without parentheses and with empty ones print the same way


def _num_text(t: Tree | Token) -> str:
    tok = t.children[0] if isinstance(t, Tree) else t
    v = float(tok)
    return str(int(v)) if v.is_integer() else repr(v)


def parse_equation(text: str, base: Pos, chars: TextMap | None = None) -> Equation:
    """One equation; ``chars`` says where each character of ``text`` was
    written (a YAML string), else ``text`` starts at ``base`` in the file."""
    at = _Offset(base, chars, text)
    tree = _parse(text, "equation_only", at, "equation")
    return _Builder(at).equation(tree.children[0])


def parse_init(text: str, base: Pos, chars: TextMap | None = None) -> str:
    """An initializer such as ``uniform(-0.1, 0.1)``; ``chars`` as for
    :func:`parse_equation`."""
    at = _Offset(base, chars, text)
    tree = _parse(text, "init_only", at, "initializer")
    return _Builder(at).init(tree.children[0])


def parse_shape(text: str, base: Pos, chars: TextMap | None = None) -> list[int | str]:
    """A shape such as ``[hidden, 4]``; ``chars`` as for :func:`parse_equation`."""
    at = _Offset(base, chars, text)
    tree = _parse(text, "shape_only", at, "shape")
    return _Builder(at).shape(tree.children[0])


# ---------------------------------------------------------------- whole files

def load_rnn(text: str, filename: str) -> Raw:
    """Parse a .rnn file into the same raw data a YAML spec gives."""
    remember_source(filename, text)
    at = _Offset(Pos(filename, 1, 1))
    tree = _parse(text, "start", at, "spec")
    if not tree.children:
        raise SpecError("empty spec: expected a network, cells or an import", Pos(filename, 1, 1))
    return _FileBuilder(at, filename).build(tree)


class _FileBuilder(_Builder):
    def __init__(self, at: _Offset, filename: str) -> None:
        super().__init__(at)
        self.where = SourceMap(filename)
        self.data: dict[str, Any] = {}

    def put(self, path: tuple, value: Any, pos: Pos, key_pos: Pos | None = None) -> Any:
        self.where.values[path] = pos
        if key_pos is not None:
            self.where.keys[path] = key_pos
        return value

    def build(self, tree: Tree) -> Raw:
        self.where.values[()] = Pos(self.where.file, 1, 1)
        for item in tree.children:
            getattr(self, "_" + item.data)(item)
        return Raw(self.data, self.where)

    def _import_stmt(self, t: Tree) -> None:
        inc = self.data.setdefault("include", [])
        tok = t.children[0]
        inc.append(self.put(("include", len(inc)), _unquote(tok), self.pos(tok)))

    def _cell_def(self, t: Tree) -> None:
        name_tok, *rest = t.children
        name = str(name_tok)
        cells = self.data.setdefault("cells", {})
        base = ("cells", name)
        if name in cells:
            raise SpecError(f"cell {name!r} is defined twice", self.pos(name_tok))
        self.put(base, None, self.pos(name_tok), self.pos(name_tok))
        cell: dict[str, Any] = {"inputs": [], "state": {}}
        consts: dict[str, Any] = {}
        params: dict[str, Any] = {}
        equations: list[Equation] = []
        for child in rest:
            kind = child.data
            if kind == "sig_input":
                tok = child.children[0]
                cell["inputs"].append(self.put(base + ("inputs", len(cell["inputs"])), str(tok), self.pos(tok)))
            elif kind == "sig_state":
                tok, dim = child.children
                self.put(base + ("state", str(tok)), None, self.pos(dim), self.pos(tok))
                cell["state"][str(tok)] = self.dim(dim)
            elif kind == "sig_const":
                tok, value = child.children
                v = value.children[0]
                self.put(base + ("consts", str(tok)), None, self.pos(value), self.pos(tok))
                consts[str(tok)] = _num_or_name(v)
            elif kind == "output_decl":
                tok = child.children[0]
                cell["output"] = self.put(base + ("output",), str(tok), self.pos(tok))
            elif kind == "param_decl":
                tok, *spec = child.children
                decl: dict[str, Any] = {}
                for s in spec:
                    if s.data == "shape":
                        decl["shape"] = self.shape(s)
                        self.put(base + ("params", str(tok), "shape"), None, self.pos(s))
                    else:
                        decl["init"] = self.init(s)
                        self.put(base + ("params", str(tok), "init"), None, self.pos(s))
                if str(tok) in params:
                    raise SpecError(f"parameter {str(tok)!r} is declared twice", self.pos(tok))
                self.put(base + ("params", str(tok)), None, self.pos(tok), self.pos(tok))
                params[str(tok)] = decl
            elif kind == "equation":
                eq = self.equation(child)
                self.put(base + ("equations", len(equations)), None, eq.pos)
                equations.append(eq)
        if consts:
            cell["consts"] = consts
        if params:
            cell["params"] = params
        cell["equations"] = equations
        cells[name] = cell

    def _network_def(self, t: Tree) -> None:
        name_tok, *stmts = t.children
        if "model" in self.data:
            raise SpecError("a spec file holds one network; this is the second", self.pos(name_tok))
        name = _unquote(name_tok) if name_tok.type == "STRING" else str(name_tok)
        self.data["name"] = self.put(("name",), name, self.pos(name_tok), self.pos(name_tok))
        model: dict[str, Any] = {}
        self.put(("model",), None, self.pos(t), self.pos(t))
        self.data["model"] = model
        layers: list[Any] = []
        for s in stmts:
            kind = s.data
            if kind == "net_input":
                if "input" in model:
                    raise SpecError("the network already has an input", self.pos(s))
                model["input"] = self.call_value(s.children[0], ("model", "input"))
            elif kind == "net_layer":
                layers.append(self.layer(s, ("model", "layers", len(layers))))
            elif kind == "net_block":
                path = ("model", "layers", len(layers))
                call = self.call_value(s.children[0], path)
                (block, fields), = call.items()
                if not isinstance(fields, dict):
                    raise SpecError("block arguments are named, as in ntm(hidden=100, slots=32)", self.pos(s))
                self.put(path + ("block",), block, self.pos(s.children[0].children[0]))
                layers.append({"block": block, **fields})
                # the fields were located under (path, block, key): move them up one level
                for key in fields:
                    if path + (block, key) in self.where.keys:
                        self.where.keys[path + (key,)] = self.where.keys[path + (block, key)]
                    if path + (block, key) in self.where.values:
                        self.where.values[path + (key,)] = self.where.values[path + (block, key)]
            elif kind == "net_output":
                if "output" in model:
                    raise SpecError("the network already has an output", self.pos(s))
                path = ("model", "output")
                out = self.call_value(s.children[0], path)
                for flag in s.children[1:]:
                    out["every_step"] = self.put(path + ("every_step",), flag.data == "flag_every_step", self.pos(flag), self.pos(flag))
                model["output"] = out
            elif kind == "net_option":
                key_tok, value = s.children
                path = ("model", str(key_tok))
                model[str(key_tok)] = self.value(value, path)
                self.where.keys[path] = self.pos(key_tok)
        if layers:
            self.put(("model", "layers"), None, self.pos(t), self.pos(t))
            model["layers"] = layers

    _LAYER_FIELDS = {"hidden", "heads", "bias", "depth", "dropout", "merge", "bidirectional", "initial_state",
                     "initial_init"}

    def layer(self, s: Tree, path: tuple) -> dict[str, Any]:
        call, *flags = s.children
        name_tok, *args = call.children
        layer: dict[str, Any] = {"cell": self.put(path + ("cell",), str(name_tok), self.pos(name_tok))}
        self.put(path, None, self.pos(s), self.pos(s))
        extra: dict[str, Any] = {}
        for a in args:
            if a.data == "pos_arg":
                raise SpecError("layer arguments are named, as in lstm(hidden=128)", self.pos(a))
            key_tok, value = a.children
            key = str(key_tok)
            target, kpath = (layer, path + (key,)) if key in self._LAYER_FIELDS else (extra, path + ("args", key))
            if key in target:
                raise SpecError(f"argument {key!r} is given twice", self.pos(key_tok))
            target[key] = self.value(value, kpath)
            self.where.keys[kpath] = self.pos(key_tok)
        if extra:
            layer["args"] = extra
        for f in flags:
            fp = self.pos(f)
            if f.data == "flag_bidirectional":
                layer["bidirectional"] = self.put(path + ("bidirectional",), True, fp, fp)
                if f.children:
                    layer["merge"] = self.put(path + ("merge",), str(f.children[0]), self.pos(f.children[0]), fp)
            elif f.data == "flag_depth":
                layer["depth"] = self.put(path + ("depth",), int(f.children[0]), self.pos(f.children[0]), fp)
            elif f.data == "flag_dropout":
                layer["dropout"] = self.put(path + ("dropout",), _number(f.children[0]), self.pos(f.children[0]), fp)
        return layer

    def _memory_def(self, t: Tree) -> None:
        if "memory" in self.data:
            raise SpecError("a spec holds one memory", self.pos(t))
        self.where.keys[("memory",)] = self.pos(t)
        self.data["memory"] = self.call_value(t.children[0], ("memory",))

    def _name_def(self, t: Tree) -> None:
        tok = t.children[0]
        name = _unquote(tok) if tok.type == "STRING" else str(tok)
        if "name" in self.data and self.data["name"] != name:
            raise SpecError(f"the spec is already named {self.data['name']!r}", self.pos(tok))
        self.data["name"] = self.put(("name",), name, self.pos(tok), self.pos(tok))

    def _train_def(self, t: Tree) -> None:
        path = ("train",)
        self.put(path, None, self.pos(t), self.pos(t))
        self.data["train"] = self.entries(t.children, path)

    def entries(self, items: list[Tree], path: tuple) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for e in items:
            key_tok, value = e.children
            key = str(key_tok)
            if key in out:
                raise SpecError(f"duplicate key {key!r}", self.pos(key_tok))
            self.where.keys[path + (key,)] = self.pos(key_tok)
            out[key] = self.value(value, path + (key,))
        return out

    def value(self, v: Tree, path: tuple) -> Any:
        kind = v.data
        p = self.pos(v)
        if kind == "v_number":
            return self.put(path, _number(v.children[0].children[0]), p)
        if kind == "v_string":
            return self.put(path, _unquote(v.children[0]), p)
        if kind == "v_name":
            word = str(v.children[0])
            return self.put(path, {"true": True, "false": False, "null": None}.get(word, word), p)
        if kind == "v_list":
            self.put(path, None, p)
            return [self.value(c, path + (i,)) for i, c in enumerate(v.children)]
        if kind == "v_dict":
            self.put(path, None, p)
            return self.entries(v.children, path)
        if kind == "call_value":
            return self.call_value(v, path)
        raise SpecError(f"unexpected value {kind}", p)

    def call_value(self, v: Tree, path: tuple) -> dict[str, Any]:
        """``name(p, k=v)`` is ``{name: p, k: v}``; ``name(k=v)`` is ``{name: {k: v}}``."""
        name_tok, *args = v.children
        name = str(name_tok)
        self.put(path, None, self.pos(v))
        positional = [a for a in args if a.data == "pos_arg"]
        named = [a for a in args if a.data == "kw_arg"]
        if len(positional) > 1:
            raise SpecError(f"{name}(...) takes one value and named arguments", self.pos(positional[1]))
        out: dict[str, Any] = {}
        self.where.keys[path + (name,)] = self.pos(name_tok)
        if positional:
            out[name] = self.value(positional[0].children[0], path + (name,))
            inner, inner_path = out, path
        else:
            out[name] = {}
            self.put(path + (name,), None, self.pos(name_tok))
            inner, inner_path = out[name], path + (name,)
        for a in named:
            key_tok, value = a.children
            if str(key_tok) in inner:
                raise SpecError(f"argument {str(key_tok)!r} is given twice", self.pos(key_tok))
            self.where.keys[inner_path + (str(key_tok),)] = self.pos(key_tok)
            inner[str(key_tok)] = self.value(value, inner_path + (str(key_tok),))
        return out


def _unquote(tok: Token) -> str:
    import json

    return json.loads(str(tok))


def _number(tok: Token) -> int | float:
    text = str(tok)
    if text.lstrip("+-").isdigit():
        return int(text)
    return float(text)


def _num_or_name(tok: Tree | Token) -> Any:
    if isinstance(tok, Tree):
        return _number(tok.children[0])
    return str(tok)
