"""The ``rnnspec`` command line: check, compile, train, eval, predict, sample, bench, graph.

Bad input ends with a located message on stderr and exit status 2, never a
Python traceback; a failure of rnnspec itself is a bug and keeps its trace.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from rnnspec import __version__
from rnnspec.errors import Pos, SpecError

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
        if spec.model is not None:
            what = f"network {spec.name!r}"
        elif spec.memory is not None:
            what = f"{'hopfield' if spec.memory.hopfield is not None else 'bam'} memory"
        else:
            what = f"{len(spec.cells)} cell(s)"
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


def _train_spec(args: argparse.Namespace) -> Any:
    """The spec to train: the file given, or the run's own (``--resume``), with
    the command line's ``--train.x=...`` overrides applied before validation."""
    from rnnspec.train.config import load_with_overrides, parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.resume is not None:
        spec_path = Path(args.resume) / "spec.yaml"
        if not spec_path.is_file():
            raise SpecError("not a run directory (no spec.yaml inside); give the folder `rnnspec train --run-dir` wrote",
                            Pos(str(args.resume)))
        if args.spec is not None:
            raise SpecError("give a spec file or --resume RUN_DIR, not both (a resumed run keeps its spec)", Pos(str(args.spec)))
        resumable = {("train", "max_steps"), ("train", "epochs"), ("train", "log_every"), ("train", "eval_every"),
                     ("train", "checkpoint_every")}
        for o in overrides:
            if tuple(o.path) not in resumable:
                raise SpecError(
                    "a resumed run keeps its spec (or it would not continue exactly); only "
                    + ", ".join("--" + ".".join(p) for p in sorted(resumable)) + " may change",
                    o.key_pos,
                )
        return load_with_overrides(spec_path, overrides)
    return load_with_overrides(args.spec, overrides)


def _train_threads(given: Optional[int]) -> Optional[int]:
    """CPU threads for training: ``--threads``, else OMP_NUM_THREADS if set, else 1.

    A recurrent step is many small matrix products, which gain little from
    intra-op threads and lose badly when the cores are busy (measured on a
    shared 2-core machine: char_lm 88 ms/step on 1 thread, 2.1 s on 2)."""
    import os

    if given is not None:
        return max(1, given)
    return None if os.environ.get("OMP_NUM_THREADS") else 1


def cmd_train(args: argparse.Namespace) -> int:
    from rnnspec.train.checkpoint import CheckpointError
    from rnnspec.train.loop import resolved_spec, train, with_train

    if args.spec is None and args.resume is None:
        _err("give a spec file, or --resume RUN_DIR")
        return EXIT_INVALID
    spec = _train_spec(args)
    if args.print_config:
        from rnnspec.spec.dump import dump_yaml

        if spec.train is not None and args.seed is not None:
            spec = with_train(spec, seed=args.seed)
        sys.stdout.write(dump_yaml(resolved_spec(spec) if spec.train is not None else spec))
        return EXIT_OK
    if args.max_steps is not None and args.max_steps < 1:
        _err("--max-steps must be at least 1")
        return EXIT_INVALID
    try:
        result = train(
            spec,
            run_dir=Path(args.run_dir) if args.run_dir else None,
            resume=Path(args.resume) if args.resume else None,
            max_steps=args.max_steps,
            seed=args.seed,
            deterministic=args.deterministic,
            threads=_train_threads(args.threads),
        )
    except KeyboardInterrupt:
        return 130
    except CheckpointError as e:
        _err(f"error: {e}")
        return EXIT_INVALID
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        extra = "" if result.stopped == "done" else f" ({result.stopped.replace('_', ' ')})"
        print(f"done: {result.steps} steps{extra}, run directory {result.run_dir}")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from rnnspec.data.errors import DataError
    from rnnspec.train.checkpoint import CheckpointError
    from rnnspec.train.inference import evaluate_run

    try:
        res = evaluate_run(args.run, split=args.split, which=args.checkpoint, batch=args.batch)
    except (CheckpointError, DataError) as e:
        _err(f"error: {e}" if isinstance(e, CheckpointError) else str(e))
        return EXIT_INVALID
    if args.json:
        print(json.dumps(res))
    else:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in res.items() if isinstance(v, float))
        print(f"{res['split']} ({res['size']:,} {'tokens' if 'bpc' in res else 'examples'}, "
              f"{Path(res['checkpoint']).name} at step {res['step']}): {metrics}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from rnnspec.data.errors import DataError
    from rnnspec.train.checkpoint import CheckpointError
    from rnnspec.train.inference import predict

    try:
        n = predict(args.run, args.input, args.output, which=args.checkpoint, batch=args.batch)
    except (CheckpointError, DataError) as e:
        _err(f"error: {e}" if isinstance(e, CheckpointError) else str(e))
        return EXIT_INVALID
    print(f"wrote {n} predictions to {args.output}")
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from rnnspec.train.checkpoint import CheckpointError
    from rnnspec.train.inference import load_run
    from rnnspec.train.sampling import sample_ids

    try:
        r = load_run(args.run, args.checkpoint)
    except CheckpointError as e:
        _err(f"error: {e}")
        return EXIT_INVALID
    if r.objective != "lm" or r.vocab is None:
        _err(f"error: {r.path}: sampling needs a language model trained on text (this run's objective is {r.objective!r})")
        return EXIT_INVALID
    if args.temperature <= 0:
        _err("error: --temperature must be > 0")
        return EXIT_INVALID
    vocab = r.vocab
    prompt = vocab.encode(args.prompt) if args.prompt else torch.tensor([vocab.id("\n") if "\n" in vocab else 0])
    if prompt.numel() == 0:
        prompt = torch.tensor([0])
    ids = sample_ids(r.net, prompt, args.length, temperature=args.temperature, top_k=args.top_k,
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
        if getattr(layer, "block", None):
            ctrl = f", controller {layer.controller}" if layer.block != "hopfield" else ""
            mem = f", memory {layer.slots}x{layer.width}, {layer.read_heads} read head(s)" if layer.block != "hopfield" else ""
            if layer.block == "compressor":  # two cells on two time scales
                ctrl = f", automatizer {layer.automatizer}, chunker {layer.chunker} ({layer.chunker_hidden or layer.hidden})"
                mem = f", steps the chunker when surprised ({layer.surprise}, threshold {layer.threshold})"
            if layer.block == "reservoir":  # fixed random weights
                ctrl, mem = "", (f", fixed: spectral radius {layer.spectral_radius}, density {layer.density}, "
                                 f"leak {layer.leak}, input scale {layer.input_scale}, bias scale {layer.bias_scale}")
            if layer.block == "clockwork":
                ctrl, mem = "", f", {len(layer.periods or [])} modules, periods {layer.periods}"
            print(f"  └ {layer.block} block: -> {layer.output_size}, hidden {layer.hidden}{ctrl}{mem}")
            continue
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

    c = sub.add_parser(
        "train",
        help="train a spec's network (progress, checkpoints, metrics)",
        description="Train a spec's network. Any --SECTION.KEY=VALUE (e.g. --train.optimizer.adam.lr=1e-3, "
        "--train.batch=16) overrides the spec before it is validated. Multi-process: "
        "torchrun --nproc-per-node N -m rnnspec train SPEC.",
    )
    c.add_argument("spec", nargs="?")
    c.add_argument("--run-dir", help="where the run is written (default runs/<name>-<time>)")
    c.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where it stopped")
    c.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (in total, for a resumed run)")
    c.add_argument("--seed", type=int, help="override train.seed")
    c.add_argument("--deterministic", action="store_true", help="use deterministic algorithms only (slower on GPU)")
    c.add_argument("--print-config", action="store_true", help="print the resolved spec (overrides applied) and exit")
    c.add_argument("--threads", type=int,
                   help="CPU threads per process (default: $OMP_NUM_THREADS if set, else 1: recurrent steps are "
                   "many small products, fastest on one thread unless the model is large)")
    c.set_defaults(func=cmd_train, overrides=[])

    c = sub.add_parser("eval", help="metrics of a trained run on its validation or test split")
    c.add_argument("run", help="a run directory or a checkpoint file")
    c.add_argument("--split", choices=["train", "validation", "test"], default="validation")
    c.add_argument("--checkpoint", choices=["auto", "best", "last"], default="auto",
                   help="which checkpoint of a run directory (auto: best if there is one)")
    c.add_argument("--batch", type=int, help="batch size (default: the run's)")
    c.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    c.set_defaults(func=cmd_eval)

    c = sub.add_parser("predict", help="predictions of a trained run for the sequences in a file")
    c.add_argument("run", help="a run directory or a checkpoint file")
    c.add_argument("input", help=".txt (one sequence per line), .csv/.tsv, .npy or .npz")
    c.add_argument("-o", "--output", required=True, help=".jsonl (default format), .csv or .npy")
    c.add_argument("--checkpoint", choices=["auto", "best", "last"], default="auto")
    c.add_argument("--batch", type=int, default=64)
    c.set_defaults(func=cmd_predict)

    c = sub.add_parser("sample", help="generate text from a trained language model")
    c.add_argument("run", help="a run directory or a checkpoint file")
    c.add_argument("--prompt", default="")
    c.add_argument("--length", type=int, default=300)
    c.add_argument("--temperature", type=float, default=0.8)
    c.add_argument("--top-k", type=int)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--checkpoint", choices=["auto", "best", "last"], default="auto")
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


_OVERRIDE_HEADS = ("name", "include", "cells", "model", "train")


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate ``--train.batch=16`` / ``--train.batch 16`` (spec overrides) from the other arguments."""
    rest: list[str] = []
    found: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        name = tok[2:].split("=", 1)[0]
        if tok.startswith("--") and "." in name and not name.startswith("."):
            found.append(tok)
            if "=" not in tok and i + 1 < len(argv):
                found.append(argv[i + 1])
                i += 1
        elif tok == "--":
            rest.extend(argv[i:])
            break
        else:
            rest.append(tok)
        i += 1
    return rest, found


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    rest, overrides = _split_overrides(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(rest)
    if overrides:
        if getattr(args, "command", None) != "train":
            parser.error(f"spec overrides ({overrides[0]}) apply to `rnnspec train` only")
        args.overrides = overrides
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
