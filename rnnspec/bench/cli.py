"""``rnnspec bench``: the command-line face of :mod:`rnnspec.bench.bench`.

    rnnspec bench lstm --batch 32 --hidden 256 --steps 100
    rnnspec bench lstm gru --hidden 128,512 --dtype bfloat16 --device cuda --json out.json

Lists (comma-separated) in --batch/--hidden/--steps and several cells make a
grid; every point is one table.  The defaults finish in about a minute on a
two-core CPU.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cells", nargs="*", default=["lstm"], metavar="CELL_OR_SPEC",
                        help="standard-library cell names or spec files (default: lstm)")
    parser.add_argument("--batch", type=_ints, default=[32], help="batch size(s), e.g. 32 or 16,64 (default 32)")
    parser.add_argument("--hidden", type=_ints, default=[256], help="hidden size(s) (default 256); input size = hidden")
    parser.add_argument("--steps", type=_ints, default=[100], help="sequence length(s) (default 100)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="parameter and input dtype (default float32)")
    parser.add_argument("--backend", action="append", choices=["torch", "triton"], default=None,
                        help="rnnspec backend(s) to time; repeat for several (default: torch, plus triton on CUDA)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement, best kept (default 3)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the rows as JSON")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--no-reference", action="store_true", help="skip the torch.nn row")


def main(args: argparse.Namespace) -> int:
    import torch

    from rnnspec.bench.bench import format_table, run_bench

    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        print("rnnspec bench: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    all_rows: list[dict[str, Any]] = []
    for cell in args.cells:
        for batch in args.batch:
            for hidden in args.hidden:
                for steps in args.steps:
                    rows = run_bench(cell, batch, hidden, steps, args.dtype, args.backend, args.device,
                                     repeats=args.repeats, compile=not args.no_compile,
                                     reference=not args.no_reference)
                    print(format_table(rows))
                    print()
                    sys.stdout.flush()
                    all_rows.extend(rows)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
        path.write_text(json.dumps({"meta": meta, "rows": all_rows}, indent=2), encoding="utf-8")
        print(f"wrote {path}")
    failed = [r for r in all_rows if r["status"] == "failed"]
    return 1 if failed and len(failed) == len(all_rows) else 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnspec bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run())
