"""``rnnspec bench``: speed of a compiled cell against the references.

For one cell (a standard-library name, or a spec file) at one size, each
*implementation* is timed forward (inference, no autograd) and
forward+backward (a training step without the optimizer):

``rnnspec[<backend>]``
    our compiled module with that backend: ``torch`` is the reference
    backend, an eager PyTorch loop over time of the same cell (hoisted input
    GEMM, then one small step per time step); ``triton`` the generated
    forward and BPTT kernels (CUDA only: on the CPU the Triton interpreter is
    a test tool, not something to time).
``torch.nn.LSTM`` / ``GRU`` / ``RNN``
    where the cell has one (lstm, gru, elman): cuDNN on a GPU, oneDNN / ATen
    on the CPU, same weights (``rnnspec.interop.to_torch``).
``torch.compile(step)``
    the eager loop with its per-step function compiled by ``torch.compile``
    (compiling the whole unrolled loop takes minutes); skipped with a note
    when compilation fails here.

Each row gives tokens per second (batch x steps / time), milliseconds per
time step, and memory: on CUDA the allocator's peak during forward+backward
above what was allocated before; on the CPU the bytes autograd saves for the
backward (what a sequence costs in activation memory).
"""
from __future__ import annotations

import gc
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import torch
from torch import Tensor, nn

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
TORCH_EQUIVALENT = {"lstm": "torch.nn.LSTM", "gru": "torch.nn.GRU", "elman": "torch.nn.RNN"}
DEFAULT_ARGS = {"jordan": {"out": None}, "mtrnn": {}}  # jordan's `out` defaults to hidden

ROW_KEYS = (
    "impl", "cell", "device", "dtype", "batch", "hidden", "steps", "status",
    "fwd_tokens_per_s", "fwd_ms_per_step", "train_tokens_per_s", "train_ms_per_step",
    "peak_mem_mb", "mem_kind", "note",
)


# ---------------------------------------------------------------- building

def build_network(cell_or_spec: str, hidden: int, input_size: int, backend: str = "torch",
                  args: Optional[dict[str, Any]] = None):  # noqa: ANN201 - rnnspec.compiler.Network
    """A one-layer network of a library cell (or the network of a spec file)."""
    from rnnspec.compiler import build
    from rnnspec.spec.loader import load, standard_library

    path = Path(cell_or_spec)
    if path.suffix in (".yaml", ".yml", ".rnn") and path.exists():
        return build(load(path), backend=backend)
    from rnnspec.spec.model import InputSpec, LayerSpec, ModelSpec, Spec
    from rnnspec.spec.source import SourceMap

    library = standard_library()
    if cell_or_spec not in library:
        from rnnspec.errors import SpecError, did_you_mean

        raise SpecError(f"unknown cell {cell_or_spec!r}{did_you_mean(cell_or_spec, library)}; "
                        f"known: {', '.join(sorted(library))} (or give a spec file)")
    cell_args = dict(args or {})
    if cell_or_spec == "jordan":
        cell_args.setdefault("out", hidden)
    layer = LayerSpec(cell=cell_or_spec, hidden=hidden, args=cell_args)
    spec = Spec(name=f"bench-{cell_or_spec}", model=ModelSpec(input=InputSpec(vector=input_size), layers=[layer]))
    spec._library = library
    spec._where = SourceMap("<bench>")
    return build(spec, backend=backend)


def _input_for(net, steps: int, batch: int, dtype: torch.dtype, device: torch.device) -> Tensor:  # noqa: ANN001
    if net.embedding is not None or net.one_hot is not None:
        vocab = net.embedding.num_embeddings if net.embedding is not None else net.one_hot
        return torch.randint(0, vocab, (steps, batch), device=device)
    size = _cells(net)[0].ir.inputs[0][1]
    return torch.randn(steps, batch, size, device=device, dtype=dtype)


def _cells(net) -> list:  # noqa: ANN001
    from rnnspec.backends.torch_backend import Cell

    return [m for m in net.modules() if isinstance(m, Cell)]


def _set_backend(net, backend: str) -> None:  # noqa: ANN001
    for m in net.modules():
        if m is not net and isinstance(getattr(m, "backend", None), str):
            m.backend = backend
    net.backend = backend


def _compile_steps(net) -> None:  # noqa: ANN001
    """Wrap every cell's step function in torch.compile (in place)."""
    for cell in _cells(net):
        cell._step = torch.compile(cell._step, dynamic=False)


# ---------------------------------------------------------------- timing

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], repeats: int, device: torch.device, warmup: int = 2) -> float:
    """Best (least) seconds of ``fn`` over ``repeats`` runs, after ``warmup``
    runs (which absorb compilation, allocator growth and first-touch page
    faults): the least is what the code costs, the rest is other load."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def _settle(fn: Callable[[], Any], device: torch.device, most: int = 8) -> None:
    """Run ``fn`` until it stops getting faster (at most ``most`` times): a fresh
    process pays for first-touch page faults and allocator growth for a
    while (seconds, on a small VM), which is not what any row should measure."""
    prev = math.inf
    for _ in range(most):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        t = time.perf_counter() - t0
        if t > 0.8 * prev:
            return
        prev = t


def _saved_bytes(fn: Callable[[], Tensor]) -> int:
    """Bytes autograd saves for the backward while ``fn`` runs (distinct storages)."""
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        except Exception:  # pragma: no cover - exotic tensors
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def _measure(model: nn.Module, run: Callable[[nn.Module, Tensor], Tensor], x: Tensor, repeats: int,
             device: torch.device, warmup: int = 1) -> dict[str, Any]:
    tokens = x.shape[0] * x.shape[1]
    steps = x.shape[0]

    def fwd() -> None:
        with torch.no_grad():
            run(model, x)

    def train() -> None:
        model.zero_grad(set_to_none=True)
        y = run(model, x)
        y.float().sum().backward()

    t_fwd = _timed(fwd, repeats, device, warmup)
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        t_train = _timed(train, repeats, device, warmup)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        kind = "cuda peak"
    else:
        t_train = _timed(train, repeats, device, warmup)
        peak = _saved_bytes(lambda: run(model, x)) / 2**20
        kind = "saved for backward"
    return {
        "fwd_tokens_per_s": tokens / t_fwd,
        "fwd_ms_per_step": 1e3 * t_fwd / steps,
        "train_tokens_per_s": tokens / t_train,
        "train_ms_per_step": 1e3 * t_train / steps,
        "peak_mem_mb": peak,
        "mem_kind": kind,
    }


def _row(impl: str, cell: str, device: torch.device, dtype: torch.dtype, batch: int, hidden: int, steps: int,
         **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {k: None for k in ROW_KEYS}
    row.update(impl=impl, cell=cell, device=str(device), dtype=str(dtype).replace("torch.", ""), batch=batch,
               hidden=hidden, steps=steps, status="ok", note="")
    row.update(values)
    return row


def _net_runner(net, x: Tensor) -> Tensor:  # noqa: ANN001
    return net(x)[0]


def _torch_runner(rnn, x: Tensor) -> Tensor:  # noqa: ANN001
    return rnn(x)[0]


def default_backends(device: torch.device) -> list[str]:
    return ["torch", "triton"] if device.type == "cuda" else ["torch"]


def run_bench(
    cell_or_spec: str = "lstm",
    batch: int = 32,
    hidden: int = 256,
    steps: int = 100,
    dtype: str | torch.dtype = "float32",
    backends: Optional[Sequence[str]] = None,
    device: str | torch.device | None = None,
    *,
    repeats: int = 3,
    compile: bool = True,
    reference: bool = True,
    input_size: Optional[int] = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time every implementation of ``cell_or_spec`` at one size; one dict per
    implementation with the keys in :data:`ROW_KEYS` (``status`` is ``ok``,
    ``skipped`` or ``failed``, ``note`` says why)."""
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dt = DTYPES[dtype] if isinstance(dtype, str) else dtype
    backends = list(backends) if backends else default_backends(dev)
    name = Path(cell_or_spec).stem if Path(cell_or_spec).suffix else cell_or_spec
    torch.manual_seed(seed)
    base = build_network(cell_or_spec, hidden, input_size or hidden).to(device=dev, dtype=dt)
    base.train()

    def fresh(backend: str):  # noqa: ANN202 - a new network with base's weights (cells do not deepcopy)
        net = build_network(cell_or_spec, hidden, input_size or hidden, backend=backend).to(device=dev, dtype=dt)
        net.load_state_dict(base.state_dict())
        _set_backend(net, backend)
        return net.train()

    x = _input_for(base, steps, batch, dt, dev)
    rows: list[dict[str, Any]] = []

    def warm() -> None:
        base.zero_grad(set_to_none=True)
        base(x)[0].float().sum().backward()

    _settle(warm, dev)
    common = dict(cell=name, device=dev, dtype=dt, batch=batch, hidden=hidden, steps=steps)

    for backend in backends:
        impl = f"rnnspec[{backend}]" + (" (eager loop)" if backend == "torch" else "")
        if backend == "triton" and dev.type != "cuda":
            rows.append(_row(impl, status="skipped", note="the Triton kernels need a CUDA GPU (the CPU interpreter "
                                                         "is for tests)", **common))
            continue
        net = fresh(backend)
        note = ""
        if backend == "triton":
            from rnnspec.kernels.launch import choose

            cell = _cells(net)[0]
            probe = torch.zeros(1, batch, cell.ir.inputs[0][1], device=dev, dtype=dt)
            mode, programs, reasons = choose(cell, probe)
            note = ("falls back to the torch backend: " + "; ".join(reasons) if reasons else
                    "one program per batch tile" if mode == "single" else f"{programs} programs per batch tile"
                    + (", weights streamed from L2" if mode == "stream" else ""))
        rows.append(_safe(impl, lambda: _measure(net, _net_runner, x, repeats, dev), common, note))

    if reference and name in TORCH_EQUIVALENT and not Path(cell_or_spec).suffix:
        impl = TORCH_EQUIVALENT[name]
        try:
            from rnnspec.interop import to_torch

            rnn = to_torch(base).to(device=dev, dtype=dt)
            lib = "cuDNN" if dev.type == "cuda" else "oneDNN/ATen"
            rows.append(_safe(impl, lambda: _measure(rnn, _torch_runner, x, repeats, dev), common, lib))
        except Exception as e:  # pragma: no cover - depends on torch build
            rows.append(_row(impl, status="failed", note=f"{type(e).__name__}: {e}", **common))

    if compile:
        impl = "torch.compile(step)"
        net = fresh("torch")
        try:
            _compile_steps(net)
        except Exception as e:  # pragma: no cover
            rows.append(_row(impl, status="skipped", note=f"torch.compile unavailable: {e}", **common))
        else:
            rows.append(_safe(impl, lambda: _measure(net, _net_runner, x, repeats, dev, warmup=2), common,
                              "compile time excluded (two warm-up runs)", failed_status="skipped"))
    return rows


def _safe(impl: str, fn: Callable[[], dict[str, Any]], common: dict[str, Any], note: str = "",
          failed_status: str = "failed") -> dict[str, Any]:
    try:
        values = fn()
    except Exception as e:  # a failing implementation is a row, not a crash
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return _row(impl, status=failed_status, note=f"{type(e).__name__}: {msg}"[:300], **common)
    return _row(impl, note=note, **values, **common)


# ---------------------------------------------------------------- output

def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def format_table(rows: Iterable[dict[str, Any]]) -> str:
    """A plain-text table of :func:`run_bench` rows (notes below it)."""
    rows = list(rows)
    if not rows:
        return "(no results)"
    head = ["implementation", "cell", "B", "H", "T", "dtype", "fwd tok/s", "fwd ms/step", "f+b tok/s", "f+b ms/step",
            "mem MB"]
    body = []
    notes = []
    for r in rows:
        impl = r["impl"]
        if r.get("note"):
            notes.append(f"[{len(notes) + 1}] {impl}: {r['note']}" + ("" if r["status"] == "ok" else f" ({r['status']})"))
            impl = f"{impl} [{len(notes)}]"
        body.append([
            impl, str(r["cell"]), str(r["batch"]), str(r["hidden"]), str(r["steps"]), str(r["dtype"]),
            _fmt(r.get("fwd_tokens_per_s"), ",.0f"), _fmt(r.get("fwd_ms_per_step"), ".3f"),
            _fmt(r.get("train_tokens_per_s"), ",.0f"), _fmt(r.get("train_ms_per_step"), ".3f"),
            _fmt(r.get("peak_mem_mb"), ".1f"),
        ])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 6 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    kinds = sorted({r["mem_kind"] for r in rows if r.get("mem_kind")})
    if kinds:
        out.append(f"mem: {', '.join(kinds)}; device: {rows[0]['device']}")
    out.extend(notes)
    return "\n".join(out)


