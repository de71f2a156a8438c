"""Launch the generated recurrence kernels: the Triton backend's
``run_direction``.

``run_direction_triton(cell, x, state, lengths)`` has the contract of
:func:`rnnspec.backends.torch_backend.run_direction`: ``x`` [T, B, I],
``state`` a list of [B, n] tensors, ``lengths`` [B] or None; it returns the
outputs [T, B, O] (zero past each length) and the final states.

The hoisted input products are computed by the torch backend's own
``Cell.precompute`` (one GEMM per operand, over all steps) *outside* the
autograd function, so autograd turns the kernel's gradient of the
pre-activations into the input-weight and input gradients with one more
GEMM.  The autograd function wraps exactly the two kernels: forward
(one launch) and backward through time (one launch).

Which kernels (:func:`choose`): one program per batch tile when the cell
fits one program's shared memory (checked by compiling for the GPU at hand,
kernels/aot.py), else the multi-program kernels with the fewest programs
per tile that fit, else the same multi-program kernels reading the weights
from global memory (L2) every step in K-chunks instead of holding them
(``stream``: any hidden size), else the torch backend.  ``RNNSPEC_SPLIT=P``
forces the multi-program kernels and ``RNNSPEC_STREAM=1`` their streamed
variant (tests use them under the interpreter);
``RNNSPEC_WGRAD=chip`` sums parameter gradients on chip instead of as GEMMs.

Inputs may be float32, bfloat16 or float16: the kernels read any of them and
compute and keep the state in float32; outputs come back in ``x``'s dtype,
final states in the initial state's dtype.  Float32 products are exact
(``ieee``) unless ``torch.backends.cuda.matmul.allow_tf32`` is set.

When the kernels cannot run a cell (``explain`` says why) or cannot run
here (CPU tensors without ``TRITON_INTERPRET=1``), this falls back to the
torch backend with a warning that says why.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnspec.backends.torch_backend import Cell, run_direction
from rnnspec.kernels.codegen import BLOCK_B  # sequences per program


def _fallback(cell: Cell, why: str) -> None:
    # Python's warning filters show it once per call site by default.
    warnings.warn(f"rnnspec: Triton backend falls back to the torch backend: {why}", RuntimeWarning, stacklevel=3)


def why_not(cell: Cell, x: Tensor) -> list[str]:
    """Reasons the kernels cannot run ``cell`` on ``x`` (empty: they can)."""
    return choose(cell, x)[2]


def choose(cell: Cell, x: Tensor) -> tuple[str, int, list[str]]:
    """Which kernels run ``cell`` on ``x``: ``("single", 1, [])`` (one program
    per batch tile holds the whole cell), ``("split", P, [])`` (P programs per
    batch tile, each holding its slice of the weights), ``("stream", P, [])``
    (P programs per tile reading the weights from L2 every step: any size),
    or ``("torch", 0, reasons)``."""
    try:
        from rnnspec.kernels import codegen
    except ImportError as e:  # triton missing
        return "torch", 0, [f"triton is not importable ({e})"]
    reasons = codegen.explain(cell.ir)
    if reasons:
        return "torch", 0, reasons
    if not x.is_cuda and not codegen.interpreting():
        return "torch", 0, ["the input is on the CPU and TRITON_INTERPRET=1 is not set "
                            "(the kernels need a CUDA GPU or the interpreter)"]
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return "torch", 0, [f"input dtype {x.dtype} (the kernels take float32, float16 or bfloat16)"]
    forced = split_programs()
    split_why = codegen.split_reasons(cell.ir)
    if forced and split_why:
        warnings.warn(f"rnnspec: RNNSPEC_SPLIT={forced} ignored: {'; '.join(split_why)}", RuntimeWarning, stacklevel=4)
        forced = 0
    stream = stream_forced()
    if stream and split_why:
        warnings.warn(f"rnnspec: RNNSPEC_STREAM=1 ignored: {'; '.join(split_why)}", RuntimeWarning, stacklevel=4)
        stream = False
    if not x.is_cuda:
        if stream:
            return "stream", forced or 1, []
        return ("split", forced, []) if forced else ("single", 1, [])

    from rnnspec.kernels import aot

    nbt = triton_cdiv(x.shape[1], BLOCK_B)
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count
    limit = shared_limit(x.device)
    kp = codegen.plan(cell.ir)
    # weights stay in their dtype on chip (KEEP_WDT): 16-bit weights take half the space
    wdtype = getattr(cell, kp.matrices[0]).dtype if kp.matrices else torch.float32
    wbytes = 2 if wdtype in (torch.bfloat16, torch.float16) else 4
    wname = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(wdtype, "fp32")
    spilling: Optional[tuple[str, int, list[str]]] = None  # fits but spills: only if nothing clean fits
    if stream:
        p = forced or aot.stream_programs(cell.ir, nbt, sms)
        if nbt * p > sms:
            return "torch", 0, [f"{nbt} batch tiles x {p} programs exceed the {sms} multiprocessors that must hold "
                                "them at once (the split kernels synchronize through a grid barrier)"]
        return "stream", p, []
    if forced:
        candidates = [forced]
    else:
        # one program per batch tile when it fits (far too big: no need to compile to know)
        r: Optional[dict] = None
        if wbytes * kp.weight_floats <= limit and aot.single_fits_registers(cell.ir):
            r = aot.device_fit(cell.ir, x.device, weight_dtype=wname)
            if r["fits"] and r["spills"] == 0:
                return "single", 1, []
            if r["fits"] and r["spills"] <= aot.SPILL_LIMIT:
                spilling = ("single", 1, [])
        if split_why and spilling:
            return spilling
        if split_why:
            what = (f"spills {r['spills']} bytes in one program per batch tile (more than {aot.SPILL_LIMIT})"
                    if r is not None and r["fits"] else "is too large for one program per batch tile")
            return "torch", 0, [f"cell {cell.ir.name!r} {what} at this size, "
                                "and the multi-program kernels cannot run it: " + "; ".join(split_why)]
        candidates = [p for p in (2, 4, 8, 16, 32, 64, 128) if nbt * p <= sms]
    for p in candidates:
        if nbt * p > sms:
            return "torch", 0, [f"{nbt} batch tiles x {p} programs exceed the {sms} multiprocessors that must hold "
                                "them at once (the split kernels synchronize through a grid barrier)"]
        if not forced and wbytes * codegen.split_plan(cell.ir, p).weight_floats > limit:
            continue  # the weight tiles alone exceed shared memory: no need to compile to know
        r = aot.device_fit(cell.ir, x.device, split=p, weight_dtype=wname)
        if r["fits"] and (forced or r["spills"] == 0):
            return "split", p, []
        if r["fits"] and spilling is None and r["spills"] <= aot.SPILL_LIMIT:
            spilling = ("split", p, [])
    if not forced:
        # the weights do not fit on chip: the streamed split reads them from L2 every step
        for p in aot.stream_candidates(cell.ir, nbt, sms):
            r = aot.device_fit(cell.ir, x.device, split=p, weight_dtype=wname, stream=True)
            if r["fits"] and r["spills"] == 0:
                return "stream", p, []
            if r["fits"] and spilling is None and r["spills"] <= aot.SPILL_LIMIT:
                spilling = ("stream", p, [])
    if not forced and spilling is not None:
        return spilling
    return "torch", 0, [f"cell {cell.ir.name!r}: neither one program per batch tile nor up to "
                        f"{candidates[-1] if candidates else 1} programs per tile ({nbt} tiles, {sms} multiprocessors) "
                        f"fit the {limit} bytes of shared memory a block has"]


def shared_limit(device: torch.device) -> int:
    """Shared memory a block may opt into on ``device`` (bytes)."""
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "shared_memory_per_block_optin", 0) or 101376)


def dot_precision(x: Tensor) -> str:
    """``ieee`` (exact float32 products) unless torch allows TF32 for float32 matmuls."""
    if x.is_cuda and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


class _Recurrence(torch.autograd.Function):
    """(pre, lens, *matrices, *vectors, s0) -> (out, final state packed [B, S])."""

    @staticmethod
    def forward(ctx, kern, prec: str, on_chip: bool, pre: Tensor, lens: Tensor, nm: int, nv: int, *tensors: Tensor):  # type: ignore[override]
        kp = kern.plan
        mats, vecs, s0 = tensors[:nm], tensors[nm : nm + nv], tensors[-1]
        T, B, _ = pre.shape
        # 16-bit weights stay 16-bit on chip on a GPU (the interpreter's 16-bit dots are not exact)
        ctx.keep_wdt = not kern.interpreted
        out = torch.empty(T, B, kp.O, dtype=pre.dtype, device=pre.device)
        hs = torch.empty(T + 1, B, kp.S, dtype=torch.float32, device=pre.device)
        grid = (triton_cdiv(B, BLOCK_B),)
        kern.forward[grid](pre, lens, s0, hs, out, *mats, *vecs, T, B, BB=BLOCK_B, PREC=prec, KEEP_WDT=ctx.keep_wdt,
                           num_warps=kp.num_warps, enable_fp_fusion=True)
        ctx.kern, ctx.prec, ctx.nm, ctx.nv, ctx.on_chip = kern, prec, nm, nv, on_chip
        ctx.s0_dtype = s0.dtype
        ctx.save_for_backward(pre, lens, hs, *mats, *vecs)
        final = hs[T].to(s0.dtype, copy=True)
        return out, final

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: Optional[Tensor], dsT: Optional[Tensor]):  # type: ignore[override]
        kern, prec, nm, nv = ctx.kern, ctx.prec, ctx.nm, ctx.nv
        kp = kern.plan
        pre, lens, hs, *params = ctx.saved_tensors
        mats, vecs = params[:nm], params[nm:]
        T, B, _ = pre.shape
        dev = pre.device
        dout = torch.zeros(T, B, kp.O, device=dev) if dout is None else dout.contiguous()
        dsT = torch.zeros(B, kp.S, device=dev) if dsT is None else dsT.contiguous()
        dpre = torch.zeros(T, B, kp.P, dtype=torch.float32, device=dev)
        ds0 = torch.empty(B, kp.S, dtype=torch.float32, device=dev)
        nprog = triton_cdiv(B, BLOCK_B)
        on_chip = ctx.on_chip
        if on_chip:
            dmat_parts = [torch.empty(nprog, lf.size, lf.cols, dtype=torch.float32, device=dev)
                          for _, lf in kp.matrix_leaves]
            dvec_parts = [torch.empty(nprog, lf.size, dtype=torch.float32, device=dev) for _, lf in kp.vector_leaves]
            dadj = ops = dpre  # unused
        else:
            dmat_parts = [dpre] * len(kp.matrix_leaves)  # unused
            dvec_parts = [dpre] * len(kp.vector_leaves)
            dadj = torch.empty(T, B, kp.A, dtype=torch.float32, device=dev) if kp.A else dpre
            ops = torch.empty(T, B, kp.C, dtype=torch.float32, device=dev) if kp.C else dpre
        kern.backward[(nprog,)](pre, lens, hs, dout, dsT, dpre, ds0, dadj, ops, *mats, *vecs, *dmat_parts, *dvec_parts,
                                T, B, BB=BLOCK_B, PREC=prec, KEEP_WDT=ctx.keep_wdt, ON_CHIP=on_chip,
                                num_warps=kp.num_warps, enable_fp_fusion=True)
        if on_chip:
            dmats = {m: torch.zeros(w.shape, dtype=torch.float32, device=dev) for m, w in zip(kp.matrices, mats)}
            dvecs = {v: torch.zeros(w.shape, dtype=torch.float32, device=dev) for v, w in zip(kp.vectors, vecs)}
            for (_, lf), part in zip(kp.matrix_leaves, dmat_parts):
                dmats[lf.param][lf.offset : lf.offset + lf.size] += part.sum(0)
            for (_, lf), part in zip(kp.vector_leaves, dvec_parts):
                dvecs[lf.param][lf.offset : lf.offset + lf.size] += part.sum(0)
        else:
            dmats, dvecs = _param_grads(kp, {"dpre": dpre, "dadj": dadj, "ops": ops, "hs": hs[:T]}, mats, vecs)
        grads_m = [dmats[m].to(w.dtype) for m, w in zip(kp.matrices, mats)]
        grads_v = [dvecs[v].to(w.dtype) for v, w in zip(kp.vectors, vecs)]
        return (None, None, None, dpre.to(pre.dtype), None, None, None, *grads_m, *grads_v, ds0.to(ctx.s0_dtype))


def _param_grads(kp, bufs: dict[str, Tensor], mats, vecs) -> tuple[dict[str, Tensor], dict[str, Tensor]]:  # noqa: ANN001
    """Recurrent-weight and elementwise-parameter gradients as GEMMs and sums
    over all steps and sequences at once, from the adjoints and operands the
    backward kernel left in ``bufs`` (laid out by ``kp.where``)."""
    dev = bufs["dpre"].device
    dmats = {m: torch.zeros(w.shape, dtype=torch.float32, device=dev) for m, w in zip(kp.matrices, mats)}
    dvecs = {v: torch.zeros(w.shape, dtype=torch.float32, device=dev) for v, w in zip(kp.vectors, vecs)}
    leaves = kp.step.leaves

    def column(var: str) -> Tensor:
        buf, col, size = kp.where[var]
        return bufs[buf][..., col : col + size].flatten(0, 1)  # [T*B, size]

    for mname, g, v in kp.matrix_terms:
        lf = leaves[mname]
        dmats[lf.param][lf.offset : lf.offset + lf.size] += column(g).t() @ column(v)
    for lname, g in kp.vector_terms:
        lf = leaves[lname]
        dvecs[lf.param][lf.offset : lf.offset + lf.size] += column(g).sum(0)
    return dmats, dvecs


class _SplitRecurrence(torch.autograd.Function):
    """The same contract as :class:`_Recurrence`, run by the multi-program
    kernels: ``P`` programs per batch tile, each owning a slice of the units."""

    @staticmethod
    def forward(ctx, kern, prec: str, stream: bool, pre: Tensor, lens: Tensor, nm: int, nv: int,  # type: ignore[override]
                *tensors: Tensor):
        sp = kern.plan
        kp = sp.kp
        mats, vecs, s0 = tensors[:nm], tensors[nm : nm + nv], tensors[-1]
        T, B, _ = pre.shape
        keep = not kern.interpreted
        out = torch.empty(T, B, kp.O, dtype=pre.dtype, device=pre.device)
        hs = torch.empty(T + 1, B, kp.S, dtype=torch.float32, device=pre.device)
        hs[0] = s0
        nbt = triton_cdiv(B, BLOCK_B)
        grid = (nbt, sp.P)
        bar = torch.zeros(nbt, dtype=torch.int32, device=pre.device)
        common = dict(BB=BLOCK_B, PREC=prec, KEEP_WDT=keep, STREAM=stream, num_warps=kp.num_warps,
                      enable_fp_fusion=True, **_stages(stream))
        if kern.interpreted:  # programs run one after another: a launch per step is the barrier
            for t in range(T):
                kern.forward[grid](pre, lens, hs, out, bar, *mats, *vecs, t, t + 1, B, BARRIER=False, **common)
        else:
            kern.forward[grid](pre, lens, hs, out, bar, *mats, *vecs, 0, T, B, BARRIER=True, **common)
        ctx.kern, ctx.prec, ctx.nm, ctx.keep, ctx.stream = kern, prec, nm, keep, stream
        ctx.s0_dtype = s0.dtype
        ctx.save_for_backward(pre, lens, hs, *mats, *vecs)
        return out, hs[T].to(s0.dtype, copy=True)

    @staticmethod
    @once_differentiable
    def backward(ctx, dout: Optional[Tensor], dsT: Optional[Tensor]):  # type: ignore[override]
        kern, prec, nm = ctx.kern, ctx.prec, ctx.nm
        sp = kern.plan
        kp = sp.kp
        pre, lens, hs, *params = ctx.saved_tensors
        mats, vecs = params[:nm], params[nm:]
        T, B, _ = pre.shape
        dev = pre.device
        dout = torch.zeros(T, B, kp.O, device=dev) if dout is None else dout.contiguous()
        dcarry = torch.zeros(B, kp.S, dtype=torch.float32, device=dev)
        if dsT is not None:
            dcarry.copy_(dsT)
        dpre = torch.zeros(T, B, kp.P, dtype=torch.float32, device=dev)
        dadj = torch.empty(T, B, kp.A, dtype=torch.float32, device=dev) if kp.A else dpre
        ops = torch.empty(T, B, kp.C, dtype=torch.float32, device=dev) if kp.C else dpre
        xbuf = torch.empty(2, B, max(sp.R, 1), dtype=torch.float32, device=dev)
        nbt = triton_cdiv(B, BLOCK_B)
        grid = (nbt, sp.P)
        bar = torch.zeros(nbt, dtype=torch.int32, device=dev)
        args = (pre, lens, hs, dout, dcarry, dpre, dadj, ops, xbuf, bar, *mats, *vecs)
        common = dict(BB=BLOCK_B, PREC=prec, KEEP_WDT=ctx.keep, STREAM=ctx.stream, num_warps=kp.num_warps,
                      enable_fp_fusion=True, **_stages(ctx.stream))
        if kern.interpreted:  # two launches per step: publish the products' adjoints, then use them
            for t in reversed(range(T)):
                kern.backward[grid](*args, t, t + 1, B, PHASE=1, **common)
                kern.backward[grid](*args, t, t + 1, B, PHASE=2, **common)
        else:
            kern.backward[grid](*args, 0, T, B, PHASE=0, **common)
        dmats, dvecs = _param_grads(kp, {"dpre": dpre, "dadj": dadj, "ops": ops, "hs": hs[:T]}, mats, vecs)
        grads_m = [dmats[m].to(w.dtype) for m, w in zip(kp.matrices, mats)]
        grads_v = [dvecs[v].to(w.dtype) for v, w in zip(kp.vectors, vecs)]
        return (None, None, None, dpre.to(pre.dtype), None, None, None, *grads_m, *grads_v, dcarry.to(ctx.s0_dtype))


def split_programs() -> int:
    """``RNNSPEC_SPLIT=P`` forces the multi-program kernels with P programs per
    batch tile (0 or unset: only where one program cannot hold the cell)."""
    text = os.environ.get("RNNSPEC_SPLIT", "0").strip() or "0"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"RNNSPEC_SPLIT={text!r}: expected a number of programs") from None
    if value < 0:
        raise ValueError(f"RNNSPEC_SPLIT={value}: expected >= 0")
    return value


def _stages(stream: bool) -> dict[str, int]:
    """Launch options matching what kernels/aot.py compiled and checked."""
    from rnnspec.kernels.aot import STREAM_STAGES

    return {"num_stages": STREAM_STAGES} if stream else {}


def stream_forced() -> bool:
    """``RNNSPEC_STREAM=1`` forces the streamed split kernels (weights read
    from global memory every step) with ``RNNSPEC_SPLIT`` programs per tile
    (default: as many as fit; 1 on the CPU)."""
    text = os.environ.get("RNNSPEC_STREAM", "0").strip().lower() or "0"
    if text not in ("0", "1", "false", "true"):
        raise ValueError(f"RNNSPEC_STREAM={text!r}: expected 0 or 1")
    return text in ("1", "true")


def wgrad_on_chip() -> bool:
    """Where parameter gradients are summed over time: ``RNNSPEC_WGRAD=chip``
    accumulates them in the backward kernel (one partial per program);
    the default, ``gemm``, has the kernel write each step's adjoints and the
    launcher form the gradients as GEMMs over all steps at once (no
    accumulators on chip, tensor-core sized products)."""
    mode = os.environ.get("RNNSPEC_WGRAD", "gemm").strip().lower()
    if mode not in ("gemm", "chip"):
        raise ValueError(f"RNNSPEC_WGRAD={mode!r}: expected gemm or chip")
    return mode == "chip"


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def streams(cell: Cell, kp, x: Tensor) -> Tensor:  # noqa: ANN001
    """``pre`` [T, B, P]: the hoisted products (torch GEMMs, differentiable)
    and the raw inputs the step reads elementwise, side by side."""
    ir = cell.ir
    in_name = ir.inputs[0][0]
    T, B = x.shape[:2]
    if not kp.streams:
        return x.new_zeros(T, B, 0)
    hoisted = cell.precompute({in_name: x}) if any(isinstance(s, tuple) for s, _, _ in kp.streams) else {}
    # a hoisted product (param, operand) or the raw input itself
    parts = [(hoisted[src] if isinstance(src, tuple) else x).to(x.dtype) for src, _, _ in kp.streams]
    return (torch.cat(parts, -1) if len(parts) > 1 else parts[0]).contiguous()


def kernel_inputs(cell: Any, kp: Any, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]
                  ) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor]:
    """The kernels' arguments besides the streams: the lengths as int32,
    the matrix and vector parameters in the plan's order, and the initial
    states side by side (``s0`` [B, S])."""
    T, B = x.shape[0], x.shape[1]
    if lengths is None:
        lens = torch.full((B,), T, dtype=torch.int32, device=x.device)
    else:
        lens = lengths.to(device=x.device, dtype=torch.int32).contiguous()
    mats = [cell.weight(m).contiguous() for m in kp.matrices]
    vecs = [getattr(cell, v).contiguous() for v in kp.vectors]
    state = list(state)
    s0 = (torch.cat(state, -1) if len(state) > 1 else state[0]).contiguous()
    return lens, mats, vecs, s0


def run_direction_triton(
    cell: Cell, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """The Triton backend's run of ``cell`` over ``x`` [T, B, I] (see the module doc)."""
    mode, programs, reasons = choose(cell, x)
    if reasons:
        _fallback(cell, "; ".join(reasons))
        return run_direction(cell, x, state, lengths)
    T, B = x.shape[0], x.shape[1]
    if T == 0 or B == 0:
        return run_direction(cell, x, state, lengths)
    from rnnspec.kernels import codegen

    kp = codegen.plan(cell.ir)
    pre = streams(cell, kp, x)
    lens, mats, vecs, s0 = kernel_inputs(cell, kp, x, state, lengths)
    if mode in ("split", "stream"):
        split = codegen.load_split(cell.ir, programs)
        out, final = _SplitRecurrence.apply(split, dot_precision(x), mode == "stream", pre, lens, len(mats), len(vecs), *mats, *vecs, s0)
    else:
        kern = codegen.load(cell.ir)
        out, final = _Recurrence.apply(kern, dot_precision(x), wgrad_on_chip(), pre, lens, len(mats), len(vecs),
                                       *mats, *vecs, s0)
    if out.dtype != x.dtype:
        out = out.to(x.dtype)
    sizes = [n for _, n in cell.ir.states]
    new_state = list(torch.split(final, sizes, -1)) if len(sizes) > 1 else [final]
    return out, new_state
