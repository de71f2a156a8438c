"""``rnnspec compile SPEC -o model.py``: a standalone, readable module.

The file needs only torch.  It holds (1) the runtime, copied verbatim from
:mod:`rnnspec.backends.runtime` (the same code the in-process module runs),
(2) one class per cell instance, straight-line torch code with the cell's
equations in a comment on top, and (3) ``Model``, whose ``state_dict`` keys
are the in-process module's, so weights move between the two unchanged.
Cells small enough for one Triton program per batch tile also carry their
generated kernels and a launcher (:mod:`rnnspec.codegen.standalone_kernels`),
used only when triton imports and the input is on a GPU the file was checked
for (or ``TRITON_INTERPRET=1``); otherwise the torch loop runs.
"""
from __future__ import annotations

import inspect
import keyword
import re
from typing import Iterable

from rnnspec.backends import runtime
from rnnspec.backends.torch_ops import UNARY
from rnnspec.compiler import block_fields, expand_irs, learned_init
from rnnspec.spec.blocks_model import BlockSpec
from rnnspec.errors import SpecError
from rnnspec.ir.cell import CellIR
from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var, equation_source, fmt_num
from rnnspec.ir.lower import lower
from rnnspec.spec.dump import dump_yaml
from rnnspec.spec.model import Spec

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _var(name: str) -> str:
    """A variable's Python name: ``h'`` -> ``h_next``; never a keyword."""
    base = name[:-1] + "_next" if name.endswith("'") else name
    return base + "_" if keyword.iskeyword(base) or base in ("self", "torch", "F", "state") else base


class _Emitter:
    def __init__(self, ir: CellIR) -> None:
        self.ir = ir
        self.params = {p.name for p in ir.params}
        self.masked: set[str] = set()

    def weight(self, name: str) -> str:
        return f"self.weight({name!r})" if name in self.masked else f"self.{name}"

    def expr(self, e: Expr, parent: int = 0, right: bool = False) -> str:
        if isinstance(e, Num):
            return fmt_num(e.value) if e.value >= 0 else f"({fmt_num(e.value)})"
        if isinstance(e, Var):
            return self.weight(e.name) if e.name in self.params else _var(e.name)
        if isinstance(e, Neg):
            text = f"-{self.expr(e.arg, 4)}"
            return f"({text})" if parent >= 3 else text
        if isinstance(e, BinOp):
            if e.op == "@":
                return f"torch.matmul({self.expr(e.right)}, {self.weight(e.left.name)}.t())"  # type: ignore[union-attr]
            p = _PREC[e.op]
            text = f"{self.expr(e.left, p)} {e.op} {self.expr(e.right, p, True)}"
            return f"({text})" if p < parent or (p == parent and right) else text
        if isinstance(e, Call):
            args = [self.expr(a) for a in e.args]
            if e.fn in UNARY:
                fn = UNARY[e.fn][1]
                return f"{fn}({args[0]})" if fn else args[0]
            if e.fn == "min":
                return f"_emin({args[0]}, {args[1]})"
            if e.fn == "max":
                return f"_emax({args[0]}, {args[1]})"
            if e.fn == "clamp":
                return f"_emin(_emax({args[0]}, {args[1]}), {args[2]})"
            if e.fn == "cat":
                return f"torch.cat([{', '.join(args)}], -1)"
            if e.fn == "outer":
                return f"({args[0]}.unsqueeze(-1) * {args[1]}.unsqueeze(-2)).flatten(-2)"
        raise SpecError(f"code generation does not support {e!r}", getattr(e, "pos", None))


def _emit_equations(em: "_Emitter", equations: Iterable[Equation], indent: str) -> list[str]:
    lines = []
    for eq in equations:
        expr = eq.expr
        if isinstance(expr, Call) and expr.fn == "split":
            targets = ", ".join(_var(t) for t in eq.targets)
            lines.append(f"{indent}{targets} = torch.chunk({em.expr(expr.args[0])}, {len(eq.targets)}, -1)")
        else:
            lines.append(f"{indent}{_var(eq.targets[0])} = {em.expr(expr)}")
    return lines


def cell_class(ir: CellIR, class_name: str, heads: int) -> str:
    """Source of one cell instance's module, from its lowered form (what does
    not depend on the state runs once over all steps in ``hoist``)."""
    lowered = lower(ir)
    em = _Emitter(ir)
    if heads > 1:
        em.masked = {m.param for m in ir.matmuls if not m.hoisted}
    x_name = ir.inputs[0][0]
    hidden = ir.states[0][1]
    lines = [f"class {class_name}(nn.Module):"]
    lines.append(f'    """Cell {ir.name!r}: input {ir.inputs[0][1]}, states ' + ", ".join(f"{n}[{s}]" for n, s in ir.states) + ".")
    lines.append("")
    for eq in ir.equations:
        lines.append(f"        {equation_source(eq)}")
    lines.append('    """')
    lines.append("")
    lines.append(f"    state_sizes = {[s for _, s in ir.states]!r}")
    lines.append(f"    output_size = {ir.output_size}")
    lines.append("")
    lines.append("    def __init__(self) -> None:")
    lines.append("        super().__init__()")
    for p in ir.params:
        lines.append(f"        self.{p.name} = nn.Parameter(torch.empty{p.shape!r})")
    for name in sorted(em.masked):
        rows, cols = ir.param(name).shape
        lines.append(f"        self.register_buffer('_mask_{name}', head_mask({rows}, {cols}, {heads}), persistent=False)")
    lines.append("        self.reset_parameters()")
    lines.append("")
    lines.append("    def reset_parameters(self) -> None:")
    for p in ir.params:
        lines.append(f"        init_param(self.{p.name}, {p.init.name!r}, {tuple(p.init.args)!r}, {hidden})")
    if not ir.params:
        lines.append("        pass")
    lines.append("")
    lines.append("    def weight(self, name: str) -> Tensor:")
    lines.append("        w = getattr(self, name)")
    lines.append("        mask = getattr(self, '_mask_' + name, None)")
    lines.append("        return w if mask is None else w * mask")
    lines.append("")
    lines.append("    def hoist(self, x: Tensor) -> PerStep:")
    lines.append('        """What does not depend on the state, for all steps at once."""')
    lines.append(f"        {_var(x_name)} = x")
    lines += _emit_equations(em, lowered.pre, "        ")
    lines.append("        return PerStep({" + ", ".join(f"{n!r}: {_var(n)}" for n in lowered.pre_names) + "})")
    lines.append("")
    lines.append("    def advance(self, x_t: Tensor, pre_t: dict, state: List[Tensor]) -> Tuple[List[Tensor], Tensor]:")
    lines.append(f"        {_var(x_name)} = x_t")
    for n in lowered.pre_names:
        lines.append(f"        {_var(n)} = pre_t[{n!r}]")
    names_ = [_var(n) for n, _ in ir.states]
    lines.append(f"        {', '.join(names_)}{',' if len(names_) == 1 else ''} = state")
    lines += _emit_equations(em, lowered.loop, "        ")
    new = ", ".join(_var(n + "'") for n, _ in ir.states)
    lines.append(f"        return [{new}], {_var(ir.output)}")
    return "\n".join(lines)


_HELPERS = '''
def _emin(a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return min(a, b)
    ref = a if isinstance(a, Tensor) else b
    return torch.minimum(torch.as_tensor(a, dtype=ref.dtype, device=ref.device), torch.as_tensor(b, dtype=ref.dtype, device=ref.device))


def _emax(a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return max(a, b)
    ref = a if isinstance(a, Tensor) else b
    return torch.maximum(torch.as_tensor(a, dtype=ref.dtype, device=ref.device), torch.as_tensor(b, dtype=ref.dtype, device=ref.device))
'''


def _module_body(module: object) -> str:
    """A module's source without its docstring, its __future__ import and its
    imports of rnnspec (whose names are defined earlier in the generated file)."""
    src = inspect.getsource(module)  # type: ignore[arg-type]
    body = src.split('"""', 2)[2]
    body = body.replace("from __future__ import annotations\n", "")
    body = re.sub(r"^from rnnspec[\w.]* import \([^)]*\)\n", "", body, flags=re.M)
    body = re.sub(r"^from rnnspec[\w.]* import [^\n]*\n", "", body, flags=re.M)
    return body.strip()


def _runtime_source() -> str:
    return _module_body(runtime)


def _blocks_source() -> str:
    """The memory blocks, copied like the runtime (torch-only modules)."""
    from rnnspec.blocks import addressing, clockwork, compressor, dnc, hopfield, layer, ntm, recursive, reservoir, stack

    modules = (addressing, compressor, ntm, dnc, hopfield, stack, recursive, reservoir, clockwork, layer)
    return "\n\n\n".join(_module_body(m) for m in modules)


def generate(spec: Spec, source_name: str = "<spec>") -> str:
    """The standalone module's source text for ``spec``'s network."""
    if spec.model is None:
        what = "an associative memory (use rnnspec.compile)" if spec.memory is not None else "cells only"
        raise SpecError(f"this spec has no network to write as a module: it defines {what}", None)
    model = spec.model
    levels = expand_irs(spec)
    from rnnspec.codegen.standalone_kernels import carries_kernel, launcher_source, with_kernel

    kernels_used = False
    classes: list[str] = []
    group_code: list[str] = []
    has_blocks = any(isinstance(layer, BlockSpec) for layer in model.layers)
    size = model.input.size
    for g, (layer, irs) in enumerate(zip(model.layers, levels)):
        if isinstance(layer, BlockSpec):
            controller = repr(layer.controller)
            if irs:
                cname = f"Cell{g}_controller_{irs[0].name}"
                classes.append(cell_class(irs[0], cname, 1))
                controller = f"CellController({cname}())"
            values = {k: repr(v) for k, v in block_fields(layer).items()}
            if layer.block == "compressor":  # its two cells: automatizer (irs[0]), chunker (irs[1])
                cname = f"Cell{g}_chunker_{irs[1].name}"
                classes.append(cell_class(irs[1], cname, 1))
                values.update(automatizer=controller, chunker=f"CellController({cname}())")
            fields = ", ".join(f"{k}={v}" for k, v in values.items())
            group_code.append(
                f"            MemoryLayer({layer.block!r}, {size}, {layer.output_size}, {controller}, {fields}),"
            )
            size = layer.output_size
            continue
        size = irs[-1].output_size * (2 if layer.bidirectional and layer.merge == "concat" else 1)
        rows = []
        for k, ir in enumerate(irs):
            cname = f"Cell{g}_{k}_{ir.name}"
            classes.append(cell_class(ir, cname, layer.heads))
            # the cell's Triton kernel, where one program per batch tile holds it
            masked = {m.param for m in ir.matmuls if not m.hoisted} if layer.heads > 1 else set()
            classes[-1] = with_kernel(classes[-1], ir, cname, masked)
            kernels_used = kernels_used or carries_kernel(classes[-1])
            dirs = 2 if layer.bidirectional else 1
            rows.append("[" + ", ".join(f"{cname}()" for _ in range(dirs)) + "]")
        group_class = "KernelLayerGroup" if any(carries_kernel(c) for c in classes[-len(irs):]) else "LayerGroup"
        learned = ""
        if layer.initial_state == "learned":  # same parameters (and keys) as rnnspec.compiler's group
            learned = f", learned={[n for n, _ in irs[0].states]!r}, learned_init={learned_init(layer)!r}"
        group_code.append(
            f"            {group_class}([{', '.join(rows)}], merge={layer.merge!r}, dropout={layer.dropout!r}{learned}),"
        )
    out = model.output
    header = f'''"""{spec.name or "model"}: generated by rnnspec from {source_name}. Needs only torch.

    import {{this module}} as m
    net = m.Model()                          # a torch.nn.Module
    y, state = net(x, state=None, lengths=None)

The spec it was generated from:

{_indent(dump_yaml(spec))}
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

'''
    model_code = f'''

class Model(Network):
    """The network of the spec: same state_dict keys as rnnspec.compile(spec)."""

    def __init__(self) -> None:
        groups = [
{chr(10).join(group_code)}
        ]
        super().__init__(
            Recurrent(groups, batch_first=False),
            tokens={model.input.tokens!r},
            embed={model.input.embed!r},
            output={out.size if out is not None else None!r},
            every_step={out.every_step if out is not None else True!r},
            activation={out.activation if out is not None else None!r},
            batch_first={model.batch_first!r},
        )
'''
    parts = [header + _runtime_source(), "import torch.nn.functional as F", _HELPERS.strip()]
    if kernels_used:
        parts.append(launcher_source())
    if has_blocks:
        parts.append(_blocks_source())
    parts += classes
    return "\n\n\n".join(parts) + "\n" + model_code


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())


def write(spec: Spec, path: str, source_name: str = "<spec>") -> None:
    from rnnspec.train.checkpoint import atomic_write_text

    atomic_write_text(path, generate(spec, source_name))


__all__: Iterable[str] = ("generate", "write")
