"""Read a spec file (YAML or .rnn) into a validated :class:`Spec`.

raw data + source map  ->  pydantic validation (errors mapped back to
``file:line:col``)  ->  includes and the standard library resolved  ->
every cell's equations checked at the sizes the layers give them.
"""
from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ValidationError

from rnnspec.errors import Pos, SpecError, did_you_mean, remember_source
from rnnspec.ir.cell import CellIR, build_cell, parse_init_text
from rnnspec.ir.expr import Equation, equation_source
from rnnspec.spec import limits
from rnnspec.spec.dsl import load_rnn, parse_equation, parse_init, parse_shape
from rnnspec.spec.blocks_model import BlockSpec
from rnnspec.spec.model import CellDef, LayerSpec, Spec
from rnnspec.spec.source import Raw, SourceMap, TextMap
from rnnspec.spec.yaml_source import check_text, load_yaml

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".rnn": "rnn"}


def load(path: str | Path, *, check: bool = True) -> Spec:
    """Load and validate a spec file; raises :class:`SpecError` on bad input."""
    return _load(Path(path), check=check, stack=())


def loads(text: str, fmt: str = "yaml", filename: str = "<string>", *, check: bool = True) -> Spec:
    """Load a spec from text (``fmt`` is ``yaml`` or ``rnn``)."""
    if fmt not in ("yaml", "rnn"):
        raise SpecError(f"unknown spec format {fmt!r}; expected yaml or rnn", Pos(filename))
    return _from_text(text, fmt, filename, base_dir=Path.cwd(), check=check, stack=())


def _load(path: Path, *, check: bool, stack: tuple[Path, ...]) -> Spec:
    name = str(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SpecError(f"unknown spec file type {path.suffix!r}; expected .yaml, .yml or .rnn", Pos(name))
    try:
        if path.is_dir():
            raise SpecError("is a directory, not a spec file", Pos(name))
        size = path.stat().st_size
        if size > limits.MAX_FILE_BYTES:
            raise SpecError(f"file is {size} bytes; a spec may be at most {limits.MAX_FILE_BYTES} bytes", Pos(name))
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("no such file", Pos(name)) from None
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror}", Pos(name)) from None
    text = check_text(data, name)
    return _from_text(text, fmt, name, base_dir=path.resolve().parent, check=check, stack=stack + (path.resolve(),))


def _from_text(text: str, fmt: str, filename: str, *, base_dir: Path, check: bool, stack: tuple[Path, ...]) -> Spec:
    text = check_text(text, filename)
    remember_source(filename, text)
    raw = load_rnn(text, filename) if fmt == "rnn" else load_yaml(text, filename)
    spec = validate(raw)
    spec._file = filename
    library = dict(standard_library())
    for i, inc in enumerate(spec.include):
        pos = raw.where.value(("include", i))
        target = (base_dir / inc).resolve()
        if target in stack:
            raise SpecError(f"include cycle: {inc!r} includes itself", pos)
        if len(stack) >= limits.MAX_INCLUDE_DEPTH:
            raise SpecError(f"includes nested deeper than {limits.MAX_INCLUDE_DEPTH}", pos)
        try:
            other = _load(target, check=check, stack=stack)
        except SpecError as e:
            raise SpecError(f"in file included here: {e.message}", pos, also=[SpecError(e.message, e.pos, also=e.also)]) from None
        for cname, cdef in other.cells.items():
            if cname in spec.cells:
                continue  # the including file's own definition wins
            prior = library.get(cname)
            if prior is not None and prior is not _STDLIB.get(cname) and prior != cdef:
                raise SpecError(f"cell {cname!r} is defined differently by two included files", pos)
            library[cname] = cdef
    library.update(spec.cells)
    spec._library = library
    if check:
        check_spec(spec)
    return spec


# ---------------------------------------------------------------- validation

def validate(raw: Raw) -> Spec:
    """Raw data -> Spec, every problem reported at its source position."""
    data, parsed = _prepare_cells(raw)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        errors = [_pydantic_error(err, raw.where, data) for err in e.errors(include_url=False)]
        errors.sort(key=lambda x: (x.pos.line if x.pos else 0, x.pos.col if x.pos else 0))
        seen: set[Any] = set()
        errors = [e for e in errors if not (e.pos in seen or seen.add(e.pos))]  # one report per spot
        first, *rest = errors
        raise SpecError(first.message, first.pos, also=rest) from None
    spec._where = raw.where
    for cname, cdef in spec.cells.items():
        cdef._parsed = parsed.get(cname)
        cdef._origin = raw.where.key(("cells", cname))
        cdef._param_pos = {
            pname: raw.where.value(("cells", cname, "params", pname, "init"))
            if ("cells", cname, "params", pname, "init") in raw.where.values
            else raw.where.value(("cells", cname, "params", pname))
            for pname in cdef.params
        }
    return spec


def _prepare_cells(raw: Raw) -> tuple[dict[str, Any], dict[str, list[Equation]]]:
    """Parse equations, initializers and shapes written as strings (YAML), and
    turn parsed equations (both formats) into canonical text for the model.
    Returns the data for pydantic and the parsed equations (with positions)."""
    data = dict(raw.data)
    cells = data.get("cells")
    parsed_by_cell: dict[str, list[Equation]] = {}
    if not isinstance(cells, dict):
        return data, parsed_by_cell
    where = raw.where
    out: dict[str, Any] = {}
    for cname, cell in cells.items():
        if isinstance(cell, dict):
            cell = dict(cell)
            parsed = _equations(cell.get("equations"), ("cells", cname, "equations"), where)
            if parsed is not None:
                parsed_by_cell[cname] = parsed
                cell["equations"] = [equation_source(e) for e in parsed]
            if isinstance(cell.get("params"), dict):
                cell["params"] = {
                    pname: _param_decl(decl, ("cells", cname, "params", pname), where)
                    for pname, decl in cell["params"].items()
                }
        out[cname] = cell
    data["cells"] = out
    return data, parsed_by_cell


def _equations(eqs: Any, path: tuple, where: SourceMap) -> list[Equation] | None:
    if isinstance(eqs, str):  # one block of text, one equation per line
        base = where.value(path)
        chars = _chars(where, path)
        items: list[Equation] = []
        offset = 0
        for line in eqs.splitlines(keepends=True):
            body = line.split("#", 1)[0]
            if body.strip():
                begin = offset + len(body) - len(body.lstrip())
                text = body.strip()
                items.append(parse_equation(text, base, chars.sub(begin, begin + len(text))))
            offset += len(line)
        return items
    if not isinstance(eqs, list):
        return None
    parsed = [
        parse_equation(e, where.value(path + (i,)), _chars(where, path + (i,)))
        if isinstance(e, str)
        else e
        for i, e in enumerate(eqs)
    ]
    return parsed if all(isinstance(e, Equation) for e in parsed) else None


def _chars(where: SourceMap, path: tuple) -> TextMap:
    """Where each character of the string at ``path`` was written; a string
    with no map (none is expected from either front end) is located at its start."""
    chars = where.text(path)
    if chars is None:
        base = where.value(path)
        chars = TextMap((), (base.line, base.col))
    return chars


def _param_decl(decl: Any, path: tuple, where: SourceMap) -> Any:
    """``"orthogonal"``, ``"[hidden]: zeros"`` or ``{shape: [...], init: "..."}``."""
    if isinstance(decl, str):
        chars = where.text(path)  # a YAML string: where each character was written
        begin = len(decl) - len(decl.lstrip())
        text = decl.strip()
        out: dict[str, Any] = {}

        def part(n: int) -> TextMap | None:
            return chars.sub(begin, begin + n) if chars is not None else None

        if text.startswith("["):
            close = text.find("]")
            out["shape"] = parse_shape(text[: close + 1], where.value(path), part(close + 1))
            rest = text[close + 1 :]
            after = rest.lstrip().lstrip(":").lstrip()
            begin += close + 1 + len(rest) - len(after)
            text = after.rstrip()
        if text:
            out["init"] = parse_init(text, where.value(path), part(len(text)))
        return out
    if isinstance(decl, dict) and isinstance(decl.get("init"), str):
        decl = dict(decl)
        decl["init"] = parse_init(decl["init"], where.value(path + ("init",)), where.text(path + ("init",)))
    return decl


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "tuple_type": "a list",
}
_UNION_TAGS = {"int", "float", "str", "bool", "list[union[int,str]]", "constrained-int", "constrained-float", "cell", "block"}


def _at(data: Any, path: tuple) -> Any:
    for p in path:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _pydantic_error(err: dict[str, Any], where: SourceMap, data: Any = None) -> SpecError:
    kind = err["type"]
    # pydantic puts union members and validator tags into loc; drop them.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p in _UNION_TAGS)))
    what = _describe_loc(loc)
    got = err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        fields = _fields_at(loc[:-1], _at(data, loc[:-1]))
        return SpecError(
            f"unknown key {key!r} in {_describe_loc(loc[:-1])}{did_you_mean(str(key), fields)}; expected one of: {', '.join(fields)}",
            where.key(loc),
        )
    if kind == "missing":
        parent = loc[:-1]
        # A misspelt key may sit beside it (or among a DSL layer's cell arguments).
        given = _at(data, parent)
        siblings: dict[str, tuple] = {}
        if isinstance(given, dict):
            siblings.update({str(k): parent + (k,) for k in given})
            if isinstance(given.get("args"), dict):
                siblings.update({str(k): parent + ("args", k) for k in given["args"]})
        hint = did_you_mean(str(loc[-1]), siblings)
        if hint:
            close = hint.split("'")[1]
            return SpecError(
                f"unknown key {close!r} in {_describe_loc(parent)} (did you mean {loc[-1]!r}?); "
                f"{_describe_loc(parent)} is missing the required key {loc[-1]!r}",
                where.key(siblings[close]),
            )
        return SpecError(f"{_describe_loc(parent)} is missing the required key {loc[-1]!r}", where.key(parent))
    if loc and loc[-1] == "[key]":
        expected = err.get("ctx", {}).get("expected", "")
        return SpecError(
            f"{_describe_loc(loc[:-2])}: unknown name {_show(got)}"
            + (did_you_mean(str(got), [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",")]) if expected else "")
            + (f"; expected {expected}" if expected else ""),
            where.key(loc[:-2] + (got,)),
        )
    if kind in _TYPE_WORDS:
        return SpecError(f"{what}: expected {_TYPE_WORDS[kind]}, got {_show(got)}", where.value(loc))
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        hint = did_you_mean(str(got), options) if isinstance(got, str) else ""
        return SpecError(f"{what}: got {_show(got)}{hint}; expected {expected}", where.value(loc))
    if kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        return SpecError(f"{what}: {msg}", where.value(loc))
    return SpecError(f"{what}: {str(err['msg']).lower()}, got {_show(got)}", where.value(loc))


def _show(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return "a mapping" if isinstance(v, dict) else "a list"
    if isinstance(v, str):
        return f"the string {v!r}"
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _describe_loc(loc: tuple) -> str:
    if not loc:
        return "the spec"
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p != "[key]":
            parts.append(("." if parts else "") + str(p))
    return "'" + "".join(parts) + "'"


def _fields_at(loc: tuple, given: Any = None) -> list[str]:
    """Field names of the pydantic model found at ``loc`` (for did-you-mean);
    ``given`` (the data there) picks the member of a union of models."""
    tp: Any = Spec
    for part in loc:
        if isinstance(part, int):  # an item of a list
            args = typing.get_args(_members(tp)[0]) if _members(tp) else ()
            tp = args[0] if args else tp
            continue
        models = [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel) and part in m.model_fields]
        if not models:
            return []
        tp = models[0].model_fields[part].annotation
    models = [m for m in _members(tp) if isinstance(m, type) and issubclass(m, BaseModel)]
    if isinstance(given, dict):
        models.sort(key=lambda m: -len(set(given) & set(m.model_fields)))
    return list(models[0].model_fields) if models else []


def _members(tp: Any) -> list[Any]:
    """The alternatives a type allows: Annotated and Optional stripped, unions spread."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return [m for a in typing.get_args(tp) if a is not type(None) for m in _members(a)]
    return [tp]


# ---------------------------------------------------------------- the standard library

_STDLIB: dict[str, CellDef] = {}


def stdlib_dir() -> Path:
    from importlib import resources

    try:
        return Path(str(resources.files("rnnspec.specs").joinpath("cells")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "specs" / "cells"


@functools.lru_cache(maxsize=1)
def standard_library() -> dict[str, CellDef]:
    """Every cell under specs/cells/, by name (written in the DSL like any user cell)."""
    for f in sorted(stdlib_dir().glob("*.rnn")):
        text = f.read_text(encoding="utf-8")
        remember_source(str(f), text)
        spec = validate(load_rnn(text, str(f)))
        for name, cdef in spec.cells.items():
            if name in _STDLIB:
                raise SpecError(f"standard library cell {name!r} defined twice", cdef._origin)
            _STDLIB[name] = cdef
    return dict(_STDLIB)


# ---------------------------------------------------------------- semantic checks

CHECK_SIZES = (7, 11, 13, 17, 19, 23, 29, 31)  # distinct primes: mismatched sizes cannot agree by chance


def _size_names(cdef: CellDef) -> set[str]:
    """Named sizes a cell's states use, beyond hidden and input."""
    names = {str(s).split("*")[-1].strip() for s in cdef.state.values() if isinstance(s, str)}
    return names - {"hidden", "input"}


def cell_ir(
    name: str,
    cdef: CellDef,
    *,
    input_size: int,
    hidden: int,
    args: dict[str, Any] | None = None,
    bias: bool = True,
    origin: Pos | None = None,
) -> CellIR:
    """Instantiate a cell definition at a layer's sizes."""
    consts = dict(cdef.consts)
    consts.update(args or {})
    sizes: dict[str, int] = {"hidden": hidden, "input": input_size}
    for k, v in consts.items():
        if isinstance(v, int) and not isinstance(v, bool):
            sizes[k] = v
    # A named size is not a constant of the equations.
    for k in _size_names(cdef):
        consts.pop(k, None)
    equations = cdef._parsed
    if equations is None:
        equations = [parse_equation(e, Pos(f"<cell {name}>", 0, 0)) for e in cdef.equations]
        cdef._parsed = equations
    where = cdef._origin or Pos(f"<cell {name}>")
    positions = cdef._param_pos or {}
    params = {p: (d.shape, d.init, positions.get(p, where)) for p, d in cdef.params.items()}
    if len(cdef.inputs) != 1:
        raise SpecError(f"cell {name!r} takes {len(cdef.inputs)} inputs; a layer feeds exactly one", origin or cdef._origin)
    return build_cell(
        name,
        cdef.inputs,
        cdef.state,
        equations,
        consts=consts,
        params=params,
        output=cdef.output,
        input_sizes={cdef.inputs[0]: input_size},
        sizes=sizes,
        drop_bias=not bias,
        origin=cdef._origin or origin,
    )


def check_layer_args(spec: Spec, layer: LayerSpec, path: tuple) -> None:
    where: SourceMap = spec._where
    library = spec._library or {}
    if layer.cell not in library:
        raise SpecError(
            f"unknown cell {layer.cell!r}{did_you_mean(layer.cell, library)}; known cells: {', '.join(sorted(library))}",
            where.value(path + ("cell",)),
        )
    cdef = library[layer.cell]
    sizes = _size_names(cdef)
    allowed = set(cdef.consts) | sizes
    for key in layer.args:
        if key not in allowed:
            raise SpecError(
                f"cell {layer.cell!r} has no argument {key!r}{did_you_mean(key, allowed | set(LayerSpec.model_fields))}; "
                f"its arguments: {', '.join(sorted(allowed)) or 'none'}",
                where.key(path + ("args", key)),
            )
    for s in sorted(sizes):
        if s not in layer.args and s not in cdef.consts:
            raise SpecError(f"cell {layer.cell!r} needs the size {s!r}: add {s}=... to the layer", where.value(path + ("cell",)))


def check_block(spec: Spec, block: BlockSpec, path: tuple, input_size: int) -> Optional[CellIR]:
    """A memory block's controller: lstm, feedforward, or a cell in scope
    (returned as its IR at the controller's sizes); a recursive block's
    composing cell."""
    if block.block == "recursive":
        from rnnspec.spec.recursive_check import check_recursive

        return check_recursive(spec, block, path, input_size)
    if block.block == "compressor":
        return compressor_irs(spec, block, path, input_size)[0]
    if block.block == "hopfield" or block.controller in ("lstm", "feedforward"):
        return None
    library = spec._library or {}
    if block.controller not in library:
        choices = ["lstm", "feedforward", *library]
        raise SpecError(
            f"unknown controller {block.controller!r}{did_you_mean(block.controller, choices)}; "
            "expected lstm, feedforward or a cell name",
            spec._where.value(path + ("controller",)),
        )
    # the controller also reads the memory: the read heads, or the stack's top (pda)
    ctrl_in = input_size + (block.stack_width if block.block == "pda" else block.read_heads * block.width)
    return cell_ir(block.controller, library[block.controller], input_size=ctrl_in, hidden=block.hidden,
                   origin=spec._where.value(path + ("controller",)))


def compressor_irs(spec: Spec, block: BlockSpec, path: tuple, input_size: int) -> tuple[CellIR, CellIR]:
    """A history compressor's automatizer and chunker: cells in scope, as IRs
    at their sizes (the chunker reads the input plus its time-gap feature)."""
    library = spec._library or {}
    irs = []
    for key, size, hidden in (("automatizer", input_size, block.hidden),
                              ("chunker", input_size + 1, block.chunker_hidden or block.hidden)):
        name = getattr(block, key)
        at = spec._where.value(path + (key,))  # (or the layer's, for a default)
        if name not in library:
            raise SpecError(f"unknown {key} cell {name!r}{did_you_mean(name, list(library))}; expected a cell name "
                            f"(library or custom), e.g. lstm, gru, elman", at)
        irs.append(cell_ir(name, library[name], input_size=size, hidden=hidden, origin=at))
    return irs[0], irs[1]


def layer_irs(spec: Spec) -> list[Optional[CellIR]]:
    """The cell IR of every layer at the sizes the network feeds it (a memory
    block's entry is its controller cell's IR, or None)."""
    assert spec.model is not None
    where: SourceMap = spec._where
    out: list[Optional[CellIR]] = []
    size = spec.model.input.size
    for i, layer in enumerate(spec.model.layers):
        path = ("model", "layers", i)
        if isinstance(layer, BlockSpec):
            out.append(check_block(spec, layer, path, size))
            size = layer.output_size
            continue
        check_layer_args(spec, layer, path)
        cdef = spec.cell(layer.cell)
        try:
            ir = cell_ir(layer.cell, cdef, input_size=size, hidden=layer.hidden, args=layer.args, bias=layer.bias,
                         origin=where.value(path))
        except SpecError as e:
            if layer.cell in spec.cells:
                raise
            # A library cell failed at these sizes: point at the layer that chose them.
            raise SpecError(f"layer {i} ({layer.cell}): {e.message}", where.value(path + ("cell",)), also=[e]) from None
        if layer.initial_init is not None:
            check_initial_init(layer, where, path)
        if layer.heads > 1:
            for sname, ssize in ir.states:
                if ssize % layer.heads:
                    raise SpecError(f"heads={layer.heads} does not divide state {sname!r} of size {ssize}",
                                    where.value(path + ("heads",)))
        out.append(ir)
        size = ir.output_size * (2 if layer.bidirectional and layer.merge == "concat" else 1)
    return out


def check_initial_init(layer: LayerSpec, where: SourceMap, path: tuple) -> None:
    """``initial_init`` is an initializer (as a param's) of a learned initial state."""
    at = where.value(path + ("initial_init",))
    if layer.initial_state != "learned":
        raise SpecError("initial_init applies to a learned initial state (add initial_state: learned)", at)
    parse_init_text(str(layer.initial_init), at)


def check_spec(spec: Spec) -> None:
    """Semantic checks beyond the schema: cells exist, arguments fit, and every
    cell's equations type-check at the sizes it is used with (cells no layer
    uses are checked at distinct prime sizes)."""
    used: set[str] = set()
    if spec.model is not None:
        used = {layer.cell for layer in spec.model.layers if isinstance(layer, LayerSpec)}
        layer_irs(spec)
    for cname, cdef in spec.cells.items():
        if cname in used:
            continue
        primes = iter(CHECK_SIZES[2:])
        args = {n: next(primes) for n in sorted(_size_names(cdef)) if n not in cdef.consts}
        cell_ir(cname, cdef, input_size=CHECK_SIZES[0], hidden=CHECK_SIZES[1], args=args)
