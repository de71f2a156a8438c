"""The Triton kernels a standalone module (``rnnspec compile -o``) carries.

For each cell whose single-program kernels (one program per batch tile,
kernels/codegen.py) are what the dispatcher picks on the GPUs in
:data:`TARGETS` -- decided here, without a GPU, by
:func:`rnnspec.kernels.aot.plan_for_target` -- the module gets the kernel
source (the text ``codegen.generate`` writes, equations on top), the plan
literals the launcher needs, and a ``kernel_streams`` method; the launcher
(:mod:`rnnspec.codegen.kernel_runtime` and the autograd function of
:mod:`rnnspec.kernels.launch`) is copied verbatim.  Larger cells need the
split or streamed kernels, which only the rnnspec package's Triton backend
runs: in the standalone module they run the torch loop (a comment says why).
"""
from __future__ import annotations

import inspect
from rnnspec.ir.cell import CellIR

TARGETS = ("sm_90", "sm_80")  # H100, A100: the GPUs whose fit is checked when the file is written
BATCH = 16  # one batch tile: the single-program kernel's resources do not depend on the batch


_MEMO: dict[str, tuple[list[str], str]] = {}  # ir hash -> single_targets (compiling for a target takes seconds)


def single_targets(ir: CellIR) -> tuple[list[str], str]:
    """The targets on which one program per batch tile runs ``ir``, and why
    not where none does ("" when some does)."""
    try:
        from rnnspec.kernels import aot, codegen

        import triton  # noqa: F401
    except ImportError as e:
        return [], f"triton was not importable when this file was written ({e})"
    why = codegen.explain(ir)
    if why:
        return [], "; ".join(why)
    key = codegen.ir_hash(ir)
    if key in _MEMO:
        return _MEMO[key]
    kp = codegen.plan(ir)
    targets, reasons = [], []
    for target in TARGETS:
        arch = int(target[3:])
        # the dispatcher's own first test (no compile needed when it fails)
        if 4 * kp.weight_floats > aot.SHARED_LIMIT.get(arch, 101376) or not aot.single_fits_registers(ir):
            reasons.append(f"{target}: too large for one program per batch tile")
            continue
        try:
            r = aot.plan_for_target(ir, BATCH, target)
        except Exception as e:  # no compiler at hand, or it failed: the torch loop runs this cell
            reasons.append(f"{target}: ahead-of-time compile failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
            continue
        if r["choice"] == "single":
            targets.append(target)
        else:
            reasons.append(f"{target}: the dispatcher picks {r['choice']!r} {r.get('why') or ''}".rstrip())
    result = (targets, "" if targets else "; ".join(reasons) + " (the rnnspec package's Triton backend runs "
              "the split/streamed kernels)")
    _MEMO[key] = result
    return result


def plan_literal(ir: CellIR) -> dict:
    """The launcher's view of ``codegen.plan(ir)`` as plain literals."""
    from rnnspec.kernels import codegen

    kp = codegen.plan(ir)
    leaves = {n: (lf.param, lf.offset, lf.size, lf.cols) for n, lf in kp.step.leaves.items() if lf.kind != "stream"}
    return {
        "S": kp.S, "P": kp.P, "O": kp.O, "A": kp.A, "C": kp.C, "num_warps": kp.num_warps,
        "matrices": list(kp.matrices), "vectors": list(kp.vectors),
        "leaves": leaves,
        "matrix_leaves": [n for n, _ in kp.matrix_leaves], "vector_leaves": [n for n, _ in kp.vector_leaves],
        "where": {k: tuple(v) for k, v in kp.where.items()},
        "matrix_terms": [tuple(t) for t in kp.matrix_terms], "vector_terms": [tuple(t) for t in kp.vector_terms],
    }


def _string_literal(text: str) -> str:
    """``text`` as a readable raw triple-quoted literal where possible."""
    if "'''" not in text and not text.endswith("\\") and "\r" not in text:
        return "r'''" + text + "'''"
    return repr(text)


def with_kernel(class_src: str, ir: CellIR, class_name: str, masked: set[str]) -> str:
    """``class_src`` (a cell class from ``standalone.cell_class``) with the
    cell's kernel attached where it fits one program, else a comment saying
    why it runs the torch loop."""
    from rnnspec.codegen.standalone import _Emitter, _var

    targets, why = single_targets(ir)
    if not targets:
        return f"# {class_name} runs the torch loop in this file: {why}\n{class_src}"
    from rnnspec.kernels import codegen

    kp = codegen.plan(ir)
    em = _Emitter(ir)
    em.masked = set(masked)
    x_name = ir.inputs[0][0]
    parts = []
    for src, size, col in kp.streams:
        if isinstance(src, tuple):
            param, operand = src
            parts.append(f"torch.matmul({em.expr(operand)}, {em.weight(param)}.t())")
        else:
            parts.append(_var(str(src)))
    const = f"_KERNEL_{class_name}"
    plan = plan_literal(ir)
    lines = [
        "",
        f"    # One program per batch tile holds this cell on {', '.join(targets)} (checked when the file was written).",
        f"    kernel_targets = {tuple(targets)!r}",
        f"    kernel_source = {const}",
        "    kernel_plan = {",
        *(f"        {k!r}: {v!r}," for k, v in plan.items()),
        "    }",
        "",
        "    def kernel_streams(self, x: Tensor) -> Tensor:",
        '        """``pre`` [T, B, P]: the hoisted products (one GEMM each) and raw inputs the kernels stream."""',
        f"        {_var(x_name)} = x",
    ]
    if parts:
        lines.append(f"        parts = [{', '.join(parts)}]")
        lines.append("        return torch.cat([p.to(x.dtype) for p in parts], -1).contiguous()")
    else:
        lines.append("        return x.new_zeros(x.shape[0], x.shape[1], 0)")
    kernel = f"{const} = {_string_literal(codegen.generate(ir))}\n\n\n"
    return kernel + class_src + "\n" + "\n".join(lines)


def launcher_source() -> str:
    """The launcher, copied: from kernels/launch.py the autograd function,
    the parameter-gradient GEMMs and the kernels' arguments, from kernels/codegen.py ``interpreting``,
    and the standalone dispatcher (:mod:`rnnspec.codegen.kernel_runtime`)."""
    from rnnspec.codegen import kernel_runtime
    from rnnspec.codegen.standalone import _module_body
    from rnnspec.kernels import codegen, launch

    funcs = [launch.triton_cdiv, launch.dot_precision, launch._param_grads, launch._Recurrence, launch.kernel_inputs,
             codegen.interpreting]
    head = ("# ---- Triton kernels (optional: used only when triton imports and a kernel can run)\n"
            "from torch.autograd.function import once_differentiable\n\n"
            f"BLOCK_B = {codegen.BLOCK_B}  # sequences per program (the kernels' batch tile)")
    return "\n\n\n".join([head, *(inspect.getsource(f).rstrip() for f in funcs), _module_body(kernel_runtime)])


def carries_kernel(class_src: str) -> bool:
    return "    kernel_source = _KERNEL_" in class_src


__all__ = ("TARGETS", "single_targets", "plan_literal", "with_kernel", "launcher_source", "carries_kernel")
