"""``rnnspec compile --explain``: how each layer is lowered and which backend
runs its recurrence (and why, when the Triton generator declines)."""
from __future__ import annotations

from pathlib import Path

from rnnspec.compiler import expand_irs
from rnnspec.ir.cell import CellIR
from rnnspec.spec.model import Spec


def _triton_reasons(ir: CellIR) -> list[str] | None:
    """Reasons the kernel generator declines ``ir`` ([] if it accepts), or None without it."""
    try:
        from rnnspec.kernels.codegen import explain as kernel_explain
    except ImportError:
        return None
    return list(kernel_explain(ir))


def _aot_lines(ir: CellIR, batch: int = 16) -> list[str]:
    """What the dispatcher would launch on an H100 (sm_90) and an A100 (sm_80),
    with the compiled kernels' shared memory, registers and spills."""
    try:
        from rnnspec.kernels.aot import plan_for_target
    except ImportError:
        return []
    out = []
    for target in ("sm_90", "sm_80"):
        try:
            r = plan_for_target(ir, batch, target)
        except Exception as e:  # a compile failure is a finding to show, not a crash
            out.append(f"{target}: ahead-of-time compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        if r["choice"] == "torch":
            out.append(f"{target}: falls back to the torch backend: {r['why']}")
            continue
        f, b = r["forward"], r["backward"]
        out.append(
            f"{target}: {r['programs']} program(s) per tile of {r['block_b']}"
            f"{', weights streamed from L2 every step' if r['choice'] == 'stream' else ''} | forward {f['shared']:,} B shared, "
            f"{f['registers']} registers, {f['spills']} B spilled | backward {b['shared']:,} B shared, "
            f"{b['registers']} registers, {b['spills']} B spilled (limit {r['shared_limit']:,} B)"
            + (f" [{r['why']}]" if r["why"].startswith("accepted") else "")
        )
    return out


def explain(spec: Spec) -> str:
    lines: list[str] = []
    if spec.model is None:
        return "no network: nothing to lower"
    for g, (layer, irs) in enumerate(zip(spec.model.layers, expand_irs(spec))):
        if getattr(layer, "block", None):
            lines.append(f"layer {g}: {layer.block} memory block, run by the torch backend (a step loop over its addressing)")
            continue
        for k, ir in enumerate(irs):
            hoisted = sorted({m.param for m in ir.matmuls if m.hoisted})
            lines.append(f"layer {g} level {k + 1}: cell {ir.name}, input {ir.inputs[0][1]}, "
                         f"states {', '.join(f'{n}[{s}]' for n, s in ir.states)}")
            lines.append(f"  hoisted input products (one GEMM over all steps): {', '.join(hoisted) or 'none'}")
            lines.append(f"  recurrent products (inside the loop): {', '.join(sorted(ir.recurrent_params)) or 'none'}")
            reasons = _triton_reasons(ir)
            if reasons is None:
                lines.append("  triton: kernel generator not available here; the torch backend runs this layer")
            elif reasons:
                lines.append("  triton: falls back to the torch backend: " + "; ".join(reasons))
            else:
                lines.append("  triton: fused forward and backward kernels (used on CUDA tensors)")
                lines += ["    " + line for line in _aot_lines(ir)]
    return "\n".join(lines)


def emit_kernels(spec: Spec, out_dir: Path) -> list[Path]:
    from rnnspec.kernels.codegen import generate_source  # type: ignore[attr-defined]

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    assert spec.model is not None
    for g, (layer, irs) in enumerate(zip(spec.model.layers, expand_irs(spec))):
        if getattr(layer, "block", None):
            continue
        for k, ir in enumerate(irs):
            path = out_dir / f"layer{g}_{k}_{ir.name}.py"
            path.write_text(generate_source(ir), encoding="utf-8")
            written.append(path)
    return written
