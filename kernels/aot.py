"""Ahead-of-time compilation of the generated kernels for a named GPU, on
any machine (no GPU needed): Triton compiles to PTX and, with the ``ptxas``
inside its wheel, to a cubin, whose resource usage ``cuobjdump`` reports.

``resource_report(ir, batch, target)`` answers the questions that decide
whether the single-program design fits a cell at a size: shared memory per
block, registers per thread, and spills (local memory, stack) for both the
forward and the backward kernel.

Targets: ``GPUTarget("cuda", 90, 32)`` (H100) and ``("cuda", 80, 32)`` (A100),
or the shorthands ``"sm_90"`` / ``"sm_80"``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Union

from rnnspec.ir.cell import CellIR

# Shared memory a block may use (opt-in maximum), bytes.
SHARED_LIMIT = {90: 232448, 80: 166912, 89: 101376, 86: 101376}
MAX_REGISTERS = 255
# Software-pipelining stages of the streamed split kernels' K-chunk loops:
# Triton's default (3) multi-buffers the chunk loads into registers and
# spilled them (LSTM H=512, 32 programs, sm_90: 255 registers, 40 B
# spilled; with 1 stage, 98 / 172 registers and nothing spilled).
STREAM_STAGES = 1
# The most spilled bytes (stack + local, per thread) a configuration may have
# and still be launched when nothing fits without spilling; beyond it the
# torch backend runs the layer (the compiler gave up keeping the step in
# registers: Jordan at H=256 spills 8,976 bytes with 32 registers).
SPILL_LIMIT = 1024
# The widest vector (lanes, padded) a single-program kernel is compiled for:
# it keeps every vector of the step in registers as [16, W] tiles, and
# beyond 128 lanes the compiler gave up (Jordan, whose small weights pass
# the shared-memory check at any size: 416 bytes spilled at 128, 8,976 at
# 256, 16,256 at 512 after minutes of compiling).  Square cells never get
# here: their weights exceed shared memory first.
MAX_SINGLE_WIDTH = 128


def single_fits_registers(ir: CellIR) -> bool:
    from rnnspec.kernels import codegen

    kp = codegen.plan(ir)
    return codegen.padded(max(kp.step.sizes.values(), default=1)) <= MAX_SINGLE_WIDTH


def _target(target: Any):  # noqa: ANN202
    from triton.backends.compiler import GPUTarget

    if isinstance(target, GPUTarget):
        return target
    if isinstance(target, str):
        m = re.fullmatch(r"(?:sm_?)?(\d+)", target.strip())
        if not m:
            raise ValueError(f"target {target!r}: expected sm_90, sm_80 or a GPUTarget")
        return GPUTarget("cuda", int(m.group(1)), 32)
    if isinstance(target, int):
        return GPUTarget("cuda", target, 32)
    raise TypeError(f"target: {target!r}")


def _tool(name: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def _signature(kern_fn, dtype: str, weight_dtype: str = "fp32") -> dict[str, str]:  # noqa: ANN001
    """Argument types: constexprs, sizes, and pointers (streams in ``dtype``,
    parameters ``v_*`` in ``weight_dtype``, buffers of the launcher float32)."""
    sig: dict[str, str] = {}
    for a in kern_fn.arg_names:
        if a in ("BB", "PREC", "ON_CHIP", "KEEP_WDT", "BARRIER", "PHASE", "STREAM"):
            sig[a] = "constexpr"
        elif a in ("T", "B", "T0", "T1"):
            sig[a] = "i32"
        elif a in ("len_ptr", "bar_ptr"):
            sig[a] = "*i32"
        elif a in ("pre_ptr", "out_ptr"):
            sig[a] = f"*{dtype}"
        elif a.startswith("v_") and a.endswith("_ptr"):
            sig[a] = f"*{weight_dtype}"
        else:
            sig[a] = "*fp32"
    return sig


def cuobjdump_usage(cubin: bytes) -> dict[str, dict[str, int]]:
    """``cuobjdump --dump-resource-usage`` of a cubin: per function REG,
    STACK, SHARED, LOCAL (bytes)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        text = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", path], capture_output=True, text=True,
                              check=True).stdout
    out: dict[str, dict[str, int]] = {}
    fn = None
    for line in text.splitlines():
        m = re.search(r"Function ([\w$]+):", line)
        if m:
            fn = m.group(1)
            continue
        if fn and "REG:" in line:
            out[fn] = {k: int(v) for k, v in re.findall(r"(REG|STACK|SHARED|LOCAL|TEXTURE|SURFACE|SAMPLER):(\d+)", line)}
    return out


def _interpreter_imported() -> bool:
    """Whether triton.language was imported under TRITON_INTERPRET=1: its own
    @jit helpers are then interpreter functions and cannot be compiled in
    this process."""
    from triton.language import standard
    from triton.runtime.jit import JITFunction

    return not isinstance(standard.cdiv, JITFunction)


def compile_kernels(ir: CellIR, target: Any = "sm_90", *, block_b: int = 16, precision: str = "tf32",
                    dtype: str = "fp32", weight_dtype: str = "fp32", num_warps: int | None = None,
                    on_chip: bool = False) -> dict[str, Any]:
    """Compile forward and backward kernels of ``ir`` for ``target`` in this
    process (which must not have imported triton under the interpreter);
    returns ``{"forward": CompiledKernel, "backward": CompiledKernel}``.
    ``dtype``: of the streamed inputs and outputs; ``weight_dtype``: of the
    parameters (``bf16`` keeps 16-bit weight tiles on chip)."""
    from rnnspec.kernels import codegen

    kern = codegen.load(ir, interpret=False)
    if num_warps is None:
        num_warps = kern.plan.num_warps
    return _compile_source(kern.path, target, block_b, precision, dtype, weight_dtype, num_warps, on_chip)


def _compile_source(path: Path, target: Any, block_b: int, precision: str, dtype: str, weight_dtype: str,
                    num_warps: int, on_chip: bool, split: int = 0, stream: bool = False,
                    kernels: tuple[str, ...] = ("forward", "backward")) -> dict[str, Any]:
    import importlib.util

    import triton
    from triton.compiler import ASTSource

    from rnnspec.kernels import codegen

    tgt = _target(target)
    with codegen._interpret(False):  # the compiler consults TRITON_INTERPRET too
        spec = importlib.util.spec_from_file_location(f"rnnspec_aot_{Path(path).stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = {}
        for which in kernels:
            fn = getattr(module, f"{which}_split_kernel" if split else f"{which}_kernel")
            sig = _signature(fn, dtype, weight_dtype)
            consts: dict[str, Any] = {"BB": block_b, "PREC": precision, "KEEP_WDT": True}
            if split:
                consts["BARRIER" if which == "forward" else "PHASE"] = True if which == "forward" else 0
                consts["STREAM"] = stream
            elif which == "backward":
                consts["ON_CHIP"] = on_chip
            src = ASTSource(fn=fn, signature=sig, constexprs=consts)
            out[which] = triton.compile(src, target=tgt, options={"num_warps": num_warps, "enable_fp_fusion": True,
                                                            "num_stages": STREAM_STAGES if stream else 3})
    return out


def _usage(compiled: dict[str, Any]) -> dict[str, dict[str, int]]:
    result = {}
    for which, k in compiled.items():
        u = next(iter(cuobjdump_usage(k.asm["cubin"]).values()), {})
        md = k.metadata
        entry = {
            "shared": int(getattr(md, "shared", 0)),
            "registers": int(u.get("REG", getattr(md, "n_regs", 0) or 0)),
            "stack": int(u.get("STACK", 0)),
            "local": int(u.get("LOCAL", 0)),
            "num_warps": int(getattr(md, "num_warps", 0)),
        }
        entry["spills"] = entry["stack"] + entry["local"]
        result[which] = entry
    return result


def kernel_usage(ir: CellIR, target: Any = "sm_90", *, block_b: int = 16, precision: str = "tf32",
                 dtype: str = "fp32", weight_dtype: str = "fp32", num_warps: int | None = None,
                 on_chip: bool = False, split: int = 0, stream: bool = False) -> dict[str, dict[str, int]]:
    """Resource usage of both kernels (``split`` > 0: the multi-program
    kernels for that many programs per batch tile; ``stream``: their variant
    that reads the weights from global memory every step); compiled in a child
    process when this one runs Triton's interpreter (tests on a CPU do)."""
    from rnnspec.kernels import codegen

    kp = codegen.plan(ir)
    path = codegen.split_source_path(ir, split) if split else codegen.source_path(ir)
    nw = kp.num_warps if num_warps is None else num_warps
    tgt = _target(target)
    args = dict(block_b=block_b, precision=precision, dtype=dtype, weight_dtype=weight_dtype, num_warps=nw,
                on_chip=on_chip, split=split, stream=stream)
    if not _interpreter_imported():
        return _usage(_compile_source(path, tgt, **args))  # type: ignore[arg-type]
    return _compiler().usage(path, int(tgt.arch), args)


class _Compiler:
    """Two child processes, started on first use and kept, that compile for a
    process running the interpreter (starting Python, torch and Triton for
    every kernel cost more than compiling it); the forward and the backward
    kernel compile side by side, one in each."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen | None] = [None, None]
        self.errors = tempfile.TemporaryFile(mode="w+")

    def _proc(self, i: int) -> subprocess.Popen:
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            env = dict(os.environ, TRITON_INTERPRET="0")
            proc = subprocess.Popen([sys.executable, "-m", "rnnspec.kernels.aot", "--serve"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=self.errors, text=True, env=env)
            self.procs[i] = proc
        return proc

    def usage(self, path: Path, arch: int, args: dict[str, Any]) -> dict[str, dict[str, int]]:
        procs = [self._proc(0), self._proc(1)]
        for proc, which in zip(procs, ("forward", "backward")):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps([str(path), arch, {**args, "kernels": [which]}]) + "\n")
            proc.stdin.flush()
        result: dict[str, dict[str, int]] = {}
        failures = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            while line and not line.startswith(_REPLY):  # anything else the compiler printed
                line = proc.stdout.readline()
            reply = json.loads(line[len(_REPLY):]) if line else {"error": "the compiler process exited"}
            if "error" in reply:
                failures.append(reply["error"])
            else:
                result.update(reply["usage"])
        if failures:
            self.errors.seek(0)
            detail = "\n".join(failures) + "\n" + self.errors.read()[-4000:]
            raise RuntimeError(f"ahead-of-time compile of {path.name} for sm_{arch} failed:\n{detail}")
        return result

    def close(self) -> None:
        for proc in self.procs:
            if proc is None:
                continue
            if proc.poll() is None:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        self.errors.close()


_COMPILER: _Compiler | None = None
_REPLY = "@@rnnspec-aot "


def _compiler() -> _Compiler:
    global _COMPILER
    if _COMPILER is None:
        import atexit

        _COMPILER = _Compiler()
        atexit.register(_COMPILER.close)
    return _COMPILER


_USAGE: dict[tuple[str, int, int, str], dict[str, dict[str, int]]] = {}


def resource_report(ir: CellIR, batch: int = 16, target: Union[str, Any] = "sm_90", **options: Any) -> dict[str, Any]:
    """Shared memory, registers and spills of ``ir``'s kernels on ``target``.

    ``batch``: sequences in the launch; each program takes a tile of
    ``block_b`` = 16 of them (the launcher's tile and tl.dot's minimum), so
    the figures hold for any batch.  Returns::

        {"cell", "target", "block_b", "hidden" (first state's size), "batch",
         "forward": {"shared", "registers", "stack", "local", "spills", "num_warps"},
         "backward": {...}, "shared_limit", "fits" (shared memory and registers
         within the target's limits), "spills" (bytes, both kernels)}
    """
    from rnnspec.kernels.codegen import BLOCK_B, ir_hash

    tgt = _target(target)
    block_b = options.pop("block_b", BLOCK_B)
    key = (ir_hash(ir), int(tgt.arch), block_b, json.dumps(options, sort_keys=True))
    if key not in _USAGE:  # the same kernels for every batch: compile once
        _USAGE[key] = kernel_usage(ir, tgt, block_b=block_b, **options)
    usage = _USAGE[key]
    limit = SHARED_LIMIT.get(int(tgt.arch), 101376)
    report: dict[str, Any] = {
        "cell": ir.name,
        "target": f"sm_{tgt.arch}",
        "programs": options.get("split", 0) or 1,
        "weights": "streamed" if options.get("stream") else "on chip",
        "block_b": block_b,
        "batch": batch,
        "hidden": ir.states[0][1] if ir.states else 0,
        "shared_limit": limit,
        **usage,
    }
    report["fits"] = all(usage[k]["shared"] <= limit and usage[k]["registers"] <= MAX_REGISTERS for k in usage)
    report["spills"] = sum(usage[k]["spills"] for k in usage)
    return report


_DEVICE_FIT: dict[tuple[str, int, int, str, bool], dict[str, Any]] = {}


def device_fit(ir: CellIR, device: Any, split: int = 0, weight_dtype: str = "fp32",
               stream: bool = False) -> dict[str, Any]:
    """:func:`resource_report` for the GPU at ``device`` with its own
    shared-memory limit (compiled once per cell, GPU and split; Triton caches
    the binaries on disk)."""
    import torch

    from rnnspec.kernels import codegen

    major, minor = torch.cuda.get_device_capability(device)
    arch = major * 10 + minor
    key = (codegen.ir_hash(ir), arch, split, weight_dtype, stream)
    if key not in _DEVICE_FIT:
        report = resource_report(ir, 16, arch, split=split, weight_dtype=weight_dtype, stream=stream)
        props = torch.cuda.get_device_properties(device)
        limit = int(getattr(props, "shared_memory_per_block_optin", 0) or report["shared_limit"])
        report["shared_limit"] = limit
        report["fits"] = all(report[k]["shared"] <= limit for k in ("forward", "backward"))
        _DEVICE_FIT[key] = report
    return _DEVICE_FIT[key]


# Multiprocessors of the GPUs each target stands for (H100 SXM, A100): the
# split kernels need every program of a launch resident at once.
SM_COUNT = {90: 132, 80: 108}


def stream_programs(ir: CellIR, tiles: int, sms: int) -> int:
    """Programs per batch tile for the streamed split (weights read from L2
    every step, so shared memory no longer bounds the size): as many as are
    co-resident with every tile, but at least 16 units each (tl.dot's
    minimum; fewer would only pad)."""
    from rnnspec.kernels import codegen

    hidden = max((n for _, n in ir.states), default=codegen.MIN_TILE)
    p = 1
    while p * 2 * tiles <= sms and -(-hidden // (p * 2)) >= codegen.MIN_TILE and p < 128:
        p *= 2
    return p


def stream_candidates(ir: CellIR, tiles: int, sms: int) -> list[int]:
    """Streamed splits to try, best first: :func:`stream_programs`, then
    half as many (wider slices; another register allocation)."""
    p = stream_programs(ir, tiles, sms)
    return [q for q in dict.fromkeys((p, p // 2)) if q >= 1 and tiles * q <= sms]


def plan_for_target(ir: CellIR, batch: int, target: Union[str, Any] = "sm_90",
                    weight_dtype: str = "fp32") -> dict[str, Any]:
    """What the dispatcher (kernels/launch.py) would launch for ``ir`` at
    ``batch`` on ``target``, decided without a GPU: one program per batch
    tile if that compiles within the target's shared memory, else the
    smallest split whose kernels do, within the multiprocessor count; else
    the streamed split (:func:`stream_programs`: weights read from L2 every
    step, so any hidden size); else a configuration that fits but spills
    (named in ``why``); else the torch backend.  Returns the chosen
    :func:`resource_report` plus ``{"choice": "single" | "split" | "stream"
    | "torch", "why": ...}``."""
    from rnnspec.kernels import codegen

    unsupported = codegen.explain(ir)
    if unsupported:
        return {"cell": ir.name, "target": str(target), "choice": "torch", "why": "; ".join(unsupported)}
    tgt = _target(target)
    arch = int(tgt.arch)
    limit = SHARED_LIMIT.get(arch, 101376)
    sms = SM_COUNT.get(arch, 108)
    tiles = -(-batch // codegen.BLOCK_B)
    wbytes = 2 if weight_dtype in ("bf16", "fp16") else 4
    kp = codegen.plan(ir)
    last: dict[str, Any] = {}
    spilling: dict[str, Any] = {}  # the first configuration that fits but spills: used only if nothing clean fits
    if wbytes * kp.weight_floats <= limit and single_fits_registers(ir):
        last = resource_report(ir, batch, tgt, weight_dtype=weight_dtype)
        if last["fits"] and last["spills"] == 0:
            return {**last, "choice": "single", "why": ""}
        if last["fits"] and last["spills"] <= SPILL_LIMIT:
            spilling = {**last, "choice": "single"}
    why = codegen.split_reasons(ir)
    if not why:
        for p in (2, 4, 8, 16, 32, 64, 128):
            if tiles * p > sms:
                break
            if wbytes * codegen.split_plan(ir, p).weight_floats > limit:
                continue
            last = resource_report(ir, batch, tgt, split=p, weight_dtype=weight_dtype)
            if last["fits"] and last["spills"] == 0:
                return {**last, "choice": "split", "why": ""}
            if last["fits"] and not spilling and last["spills"] <= SPILL_LIMIT:
                spilling = {**last, "choice": "split"}
        for p in stream_candidates(ir, tiles, sms):
            streamed = resource_report(ir, batch, tgt, split=p, stream=True, weight_dtype=weight_dtype)
            if streamed["fits"] and streamed["spills"] == 0:
                return {**streamed, "choice": "stream", "why": "the weights do not fit on chip: read from L2 every step"}
            if streamed["fits"] and not spilling and streamed["spills"] <= SPILL_LIMIT:
                spilling = {**streamed, "choice": "stream"}
            last = streamed
    if spilling:
        return {**spilling, "why": f"accepted: spills {spilling['spills']} bytes (no configuration fits without spilling)"}
    if why:
        if last.get("fits"):
            what = f"one program spills {last['spills']} bytes (more than {SPILL_LIMIT})"
        elif wbytes * kp.weight_floats > limit:
            what = "its weights exceed one program's shared memory"
        elif not single_fits_registers(ir):
            what = f"its vectors are wider than {MAX_SINGLE_WIDTH} lanes (one program keeps them in registers)"
        else:
            what = "too large for one program"
        return {**last, "choice": "torch", "why": what + ", and cannot split: " + "; ".join(why)}
    return {**last, "choice": "torch",
            "why": f"no split up to {sms // tiles} programs per tile fits {limit} bytes of shared memory on sm_{arch}"}


def format_report(rows: list[dict[str, Any]]) -> str:
    head = (f"{'cell':<14}{'target':<8}{'hidden':>7}{'P':>4}{'BB':>4} | {'fwd smem':>9}{'regs':>6}{'spill':>7} | "
            f"{'bwd smem':>9}{'regs':>6}{'spill':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        f, b = r["forward"], r["backward"]
        lines.append(f"{r['cell']:<14}{r['target']:<8}{r['hidden']:>7}{r.get('programs', 1):>4}{r['block_b']:>4} | "
                     f"{f['shared']:>9}{f['registers']:>6}"
                     f"{f['spills']:>7} | {b['shared']:>9}{b['registers']:>6}{b['spills']:>7}")
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    """``python -m rnnspec.kernels.aot --serve``: the child process of
    :class:`_Compiler`; reads ``[source, arch, args]`` JSON lines and
    answers each with ``{"usage": ...}`` or ``{"error": ...}``.
    ``python -m rnnspec.kernels.aot SOURCE ARCH ARGS_JSON`` compiles one."""
    if argv[:1] == ["--serve"]:
        for line in sys.stdin:
            path, arch, args = json.loads(line)
            args["kernels"] = tuple(args.get("kernels", ("forward", "backward")))
            try:
                reply: dict[str, Any] = {"usage": _usage(_compile_source(Path(path), int(arch), **args))}
            except Exception as e:  # reported to the parent, which raises with it
                reply = {"error": f"{type(e).__name__}: {e}"}
            print(_REPLY + json.dumps(reply), flush=True)
        return 0
    path, arch, args = Path(argv[0]), int(argv[1]), json.loads(argv[2])
    print(json.dumps(_usage(_compile_source(path, arch, **args))))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through kernel_usage
    raise SystemExit(_main(sys.argv[1:]))
