"""The ``rnnspec`` command line: check, compile, train, sample, bench, graph.

Bad input ends with a located message on stderr and exit status 2, never a
Python traceback; a failure of rnnspec itself is a bug and keeps its trace.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from rnnspec import __version__
from rnnspec.errors import SpecError

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from rnnspec.spec.dump import dump_rnn, dump_yaml
    from rnnspec.spec.loader import load

    spec = load(args.spec)
    if args.dump == "yaml":
        sys.stdout.write(dump_yaml(spec))
    elif args.dump == "rnn":
        sys.stdout.write(dump_rnn(spec))
    else:
        what = f"network {spec.name!r}" if spec.model is not None else f"{len(spec.cells)} cell(s)"
        print(f"{args.spec}: ok ({what})")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from rnnspec.codegen.standalone import write
    from rnnspec.spec.loader import load

    spec = load(args.spec)
    if args.explain:
        from rnnspec.explain import explain

        print(explain(spec))
    if args.emit_kernels:
        from rnnspec.explain import emit_kernels

        for path in emit_kernels(spec, Path(args.emit_kernels)):
            print(f"wrote {path}")
    if args.output:
        write(spec, args.output, source_name=str(args.spec))
        print(f"wrote {args.output}")
    elif not args.explain and not args.emit_kernels:
        _err("nothing to do: give -o FILE (a standalone module), --explain or --emit-kernels DIR")
        return EXIT_INVALID
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from rnnspec.spec.loader import load
    from rnnspec.train.loop import train

    if args.spec is None and args.resume is None:
        _err("give a spec file, or --resume RUN_DIR")
        return EXIT_INVALID
    if args.resume is not None:
        spec_path = Path(args.resume) / "spec.yaml"
        if not spec_path.is_file():
            _err(f"{args.resume}: not a run directory (no spec.yaml inside)")
            return EXIT_INVALID
        spec = load(spec_path)
    else:
        spec = load(args.spec)
    try:
        result = train(
            spec,
            run_dir=Path(args.run_dir) if args.run_dir else None,
            resume=Path(args.resume) if args.resume else None,
            max_steps=args.max_steps,
            seed=args.seed,
        )
    except KeyboardInterrupt:
        return 130
    print(f"done: {result.steps} steps, run directory {result.run_dir}")
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from rnnspec.compiler import build
    from rnnspec.data.text import Vocab
    from rnnspec.spec.loader import loads
    from rnnspec.train.checkpoint import CheckpointError, load_checkpoint
    from rnnspec.train.sampling import sample_ids

    run = Path(args.run)
    ckpt_path = run / "checkpoints" / "last.pt" if run.is_dir() else run
    try:
        ckpt = load_checkpoint(ckpt_path)
    except CheckpointError as e:
        _err(f"error: {e}")
        return EXIT_INVALID
    spec = loads(ckpt["spec"], "yaml", filename=f"{ckpt_path}[spec]")
    net = build(spec)
    net.load_state_dict(ckpt["model"])
    vocab = Vocab.from_json(ckpt["vocab"])
    prompt = vocab.encode(args.prompt) if args.prompt else torch.tensor([0])
    ids = sample_ids(net, prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                     generator=torch.Generator().manual_seed(args.seed))
    print(args.prompt + vocab.decode(ids))
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from rnnspec.compiler import expand_irs
    from rnnspec.ir.expr import equation_source
    from rnnspec.spec.loader import load

    spec = load(args.spec)
    if spec.model is None:
        _err(f"{args.spec}: defines cells only; nothing to draw")
        return EXIT_INVALID
    m = spec.model
    inp = f"tokens({m.input.tokens}) -> embed {m.input.embed}" if m.input.tokens else f"vector({m.input.vector})"
    print(f"{spec.name}: input {inp}")
    for layer, irs in zip(m.layers, expand_irs(spec)):
        for k, ir in enumerate(irs):
            dirs = " x2 directions (" + layer.merge + ")" if layer.bidirectional else ""
            print(f"  └ {ir.name} level {k + 1}: {ir.inputs[0][1]} -> {ir.output_size}{dirs}, heads {layer.heads}")
            for eq in ir.equations:
                print(f"      {equation_source(eq)}")
            hoisted = sorted({mm.param for mm in ir.matmuls if mm.hoisted})
            rec = sorted(ir.recurrent_params)
            print(f"      hoisted (one GEMM over all steps): {', '.join(hoisted) or '-'}; in the loop: {', '.join(rec) or '-'}")
    if m.output is not None:
        print(f"  └ output {'logits' if m.output.logits else 'linear'}({m.output.size}) {'every step' if m.output.every_step else 'last step'}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from rnnspec.bench.cli import main as bench_main
    except ImportError as e:
        _err(f"rnnspec bench is not available: {e}")
        return EXIT_FAIL
    return int(bench_main(args))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnspec",
        description="Compile recurrent-network specs (YAML or .rnn) into PyTorch modules, and train them.",
    )
    p.add_argument("--version", action="version", version=f"rnnspec {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="parse and validate a spec; errors as file:line:col")
    c.add_argument("spec")
    c.add_argument("--dump", choices=["yaml", "rnn"], help="print the resolved spec in this format")
    c.set_defaults(func=cmd_check)

    c = sub.add_parser("compile", help="write a standalone module (-o), explain kernels, emit kernel source")
    c.add_argument("spec")
    c.add_argument("-o", "--output", help="write a standalone Python module that needs only torch")
    c.add_argument("--explain", action="store_true", help="show how each cell is lowered and which backend runs it")
    c.add_argument("--emit-kernels", metavar="DIR", help="write the generated Triton kernel source into DIR")
    c.set_defaults(func=cmd_compile)

    c = sub.add_parser("train", help="train a spec's network (progress, checkpoints, metrics)")
    c.add_argument("spec", nargs="?")
    c.add_argument("--run-dir", help="where the run is written (default runs/<name>-<time>)")
    c.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped")
    c.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    c.add_argument("--seed", type=int, help="override train.seed")
    c.set_defaults(func=cmd_train)

    c = sub.add_parser("sample", help="generate text from a trained language model")
    c.add_argument("run", help="a run directory or a checkpoint file")
    c.add_argument("--prompt", default="")
    c.add_argument("--length", type=int, default=300)
    c.add_argument("--temperature", type=float, default=0.8)
    c.add_argument("--top-k", type=int)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_sample)

    c = sub.add_parser("graph", help="print the network: layers, equations, what is hoisted")
    c.add_argument("spec")
    c.set_defaults(func=cmd_graph)

    c = sub.add_parser("bench", help="speed against torch.nn.LSTM/GRU/RNN and an eager loop")
    try:
        from rnnspec.bench.cli import add_arguments

        add_arguments(c)
    except ImportError:
        c.add_argument("target", nargs="?")
    c.set_defaults(func=cmd_bench)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INVALID
    try:
        return int(args.func(args))
    except SpecError as e:
        _err(str(e))
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
