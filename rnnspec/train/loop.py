"""``rnnspec train``: the training loop.

This first version trains language models (next-token prediction with
truncated BPTT and the state carried across chunks), with progress,
validation, atomic checkpoints, exact resume, metrics and a sample at the
end.  Other tasks plug in through :mod:`rnnspec.data` as they land.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from rnnspec.compiler import build
from rnnspec.data.errors import DataError
from rnnspec.data.text import ContiguousBatches, Vocab, builtin_corpus, language_model_data, read_text
from rnnspec.errors import SpecError
from rnnspec.spec.dump import dump_yaml
from rnnspec.spec.model import Spec, TrainSpec
from rnnspec.train.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from rnnspec.train.sampling import sample_ids

Log = Callable[[str], None]


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    train_loss: float
    val_loss: Optional[float]
    sample: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


def _where(spec: Spec, *path: Any) -> str:
    where = spec._where
    return str(where.value(tuple(path))) if where is not None else spec._file


def make_optimizer(params: Any, train: TrainSpec) -> torch.optim.Optimizer:
    (name, a), = train.optimizer.items()
    if name == "sgd":
        return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, nesterov=a.nesterov, weight_decay=a.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=a.lr, betas=a.betas or (0.9, 0.999), eps=a.eps or 1e-8, weight_decay=a.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=a.lr, betas=a.betas or (0.9, 0.999), eps=a.eps or 1e-8, weight_decay=a.weight_decay or 1e-2)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=a.lr, momentum=a.momentum, eps=a.eps or 1e-8, weight_decay=a.weight_decay)
    return torch.optim.Adagrad(params, lr=a.lr, eps=a.eps or 1e-10, weight_decay=a.weight_decay)


def _corpus(spec: Spec) -> str:
    data = spec.train.data  # type: ignore[union-attr]
    try:
        if data.corpus is not None:
            text = builtin_corpus(data.corpus)
        elif data.text is not None:
            base = Path(spec._file).parent if spec._file and not spec._file.startswith("<") else Path.cwd()
            path = Path(data.text) if Path(data.text).is_absolute() else base / data.text
            text = read_text(path)
        else:
            raise SpecError(
                f"task {data.task!r}: this version of `rnnspec train` trains language models (data: text or corpus)",
                spec._where.value(("train", "data", "task")),
            )
    except DataError as e:
        raise SpecError(str(e), spec._where.value(("train", "data"))) from None
    if data.limit_chars is not None:
        text = text[: data.limit_chars]
    return text


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _detach(state: Any) -> Any:
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(_detach(s) for s in state) if isinstance(state, tuple) else [_detach(s) for s in state]


def train(
    spec: Spec,
    *,
    run_dir: Optional[Path] = None,
    resume: Optional[Path] = None,
    max_steps: Optional[int] = None,
    seed: Optional[int] = None,
    log: Log = print,
    checkpoint_every: int = 200,
) -> RunResult:
    """Train ``spec``'s network on its ``train`` section; see the module doc."""
    if spec.train is None:
        raise SpecError("this spec has no 'train' section", None)
    if spec.model is None:
        raise SpecError("this spec has no network to train", None)
    t = spec.train
    if t.loss != "cross_entropy" or spec.model.input.tokens is None or spec.model.output is None:
        raise SpecError(
            "this version of `rnnspec train` trains language models: token input, an output with logits, loss cross_entropy",
            spec._where.value(("train", "loss")),
        )
    seed = t.seed if seed is None else seed
    _seed_all(seed)
    state_payload = load_checkpoint(resume / "checkpoints" / "last.pt") if resume is not None else None
    if resume is not None:
        run_dir = resume
    if run_dir is None:
        run_dir = Path("runs") / f"{spec.name or 'model'}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)

    text = _corpus(spec)
    vocab = Vocab.from_json(state_payload["vocab"]) if state_payload else None
    lm = language_model_data(
        text, level=t.data.level, seq_len=t.bptt.truncate or t.data.seq_len,
        validation=round(1.0 - t.data.split, 6), test=0.0, vocab=vocab,
    )
    tokens = spec.model.input.tokens
    if len(lm.vocab) > tokens or spec.model.output.size != tokens:
        raise SpecError(
            f"the corpus has {len(lm.vocab)} distinct {t.data.level} tokens (with padding and unknown); "
            f"set the input to tokens({len(lm.vocab)}) or more and the output logits to the same number",
            spec._where.value(("model", "input")),
        )
    seq = t.bptt.truncate or t.data.seq_len
    batches = ContiguousBatches(lm.train.ids, t.batch, seq, batch_first=spec.model.batch_first)
    val_batches = ContiguousBatches(lm.validation.ids, min(t.batch, 8), seq, batch_first=spec.model.batch_first) if lm.validation else None

    net = build(spec)
    opt = make_optimizer(net.parameters(), t)
    step, epoch, index = 0, 0, 0
    if state_payload:
        net.load_state_dict(state_payload["model"])
        opt.load_state_dict(state_payload["optimizer"])
        step, epoch, index = state_payload["step"], state_payload["epoch"], state_payload["index"]
        torch.set_rng_state(state_payload["torch_rng"])
        log(f"resumed {run_dir} at step {step} (epoch {epoch + 1}, batch {index})")
    else:
        atomic_write_text(run_dir / "spec.yaml", dump_yaml(spec))
        atomic_write_text(run_dir / "vocab.json", json.dumps(lm.vocab.to_json()))
    total = min(max_steps or t.max_steps or 10**12, t.epochs * len(batches))
    n_params = sum(p.numel() for p in net.parameters())
    log(f"training {spec.name}: {n_params:,} parameters, {len(lm.train.ids):,} training tokens, "
        f"{len(batches)} batches/epoch of {t.batch}x{seq}, {total} steps -> {run_dir}")

    loss_fn = nn.CrossEntropyLoss()
    metrics = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")
    history: list[dict[str, Any]] = []
    state: Any = state_payload.get("carry") if state_payload else None
    last_loss = float("nan")
    t0, tokens_seen, window = time.perf_counter(), 0, []

    def save() -> None:
        save_checkpoint(run_dir / "checkpoints" / "last.pt", {
            "model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "epoch": epoch,
            "index": index, "torch_rng": torch.get_rng_state(), "vocab": lm.vocab.to_json(), "spec": dump_yaml(spec),
            "carry": _detach(state),  # the TBPTT state carried into the next chunk
        })

    try:
        net.train()
        while step < total:
            if index >= len(batches):
                epoch, index, state = epoch + 1, 0, None
            b = batches[index]
            y, state = net(b.x, _detach(state))
            loss = loss_fn(y.reshape(-1, y.shape[-1]), b.y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.clip_grad_norm:
                nn.utils.clip_grad_norm_(net.parameters(), t.clip_grad_norm)
            opt.step()
            step, index = step + 1, index + 1
            tokens_seen += b.y.numel()
            window.append(loss.item())
            if step % t.log_every == 0 or step == total:
                last_loss = sum(window) / len(window)
                window.clear()
                rate = tokens_seen / max(time.perf_counter() - t0, 1e-9)
                row = {"step": step, "split": "train", "loss": last_loss, "bpc": last_loss / math.log(2), "tokens_per_s": rate}
                history.append(row)
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
                log(f"step {step:>6}/{total}  epoch {epoch + 1}  loss {last_loss:.4f}  bpc {last_loss / math.log(2):.3f}  {rate:,.0f} tok/s")
            if step % checkpoint_every == 0:
                save()
    except KeyboardInterrupt:
        save()
        log(f"interrupted: checkpoint saved at step {step}; resume with  rnnspec train --resume {run_dir}")
        metrics.close()
        raise
    save()
    val_loss = evaluate(net, val_batches, loss_fn) if val_batches is not None else None
    if val_loss is not None:
        row = {"step": step, "split": "validation", "loss": val_loss, "bpc": val_loss / math.log(2)}
        history.append(row)
        metrics.write(json.dumps(row) + "\n")
        log(f"validation loss {val_loss:.4f}  bpc {val_loss / math.log(2):.3f}")
    metrics.close()
    sample_text = ""
    if t.sample is not None:
        s = t.sample
        prompt = lm.vocab.encode(s.prompt) if s.prompt else torch.tensor([lm.vocab.id("\n") if "\n" in lm.vocab else 0])
        ids = sample_ids(net, prompt, s.length, temperature=s.temperature, top_k=s.top_k,
                         generator=torch.Generator().manual_seed(seed))
        sample_text = s.prompt + lm.vocab.decode(ids)
        log("sample:\n" + sample_text)
    return RunResult(run_dir, step, last_loss, val_loss, sample_text, history)


@torch.no_grad()
def evaluate(net: nn.Module, batches: Any, loss_fn: nn.Module) -> float:
    net.eval()
    total, count, state = 0.0, 0, None
    for b in batches:
        y, state = net(b.x, state)
        total += loss_fn(y.reshape(-1, y.shape[-1]), b.y.reshape(-1)).item() * b.y.numel()
        count += b.y.numel()
    net.train()
    return total / max(count, 1)
