"""Using a trained run: ``eval``, ``predict`` and ``sample``.

A run directory (or one checkpoint file) holds everything needed: the
resolved spec, the weights, the vocabulary and the class names.  ``eval``
rebuilds the data splits exactly as training made them (same seed), so
``--split test`` scores data the run never trained on.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from rnnspec.data.batch import Example, collate
from rnnspec.data.errors import DataError
from rnnspec.data.text import Vocab
from rnnspec.errors import SpecError
from rnnspec.spec.model import Spec
from rnnspec.train.checkpoint import CheckpointError, atomic_write_text, load_checkpoint
from rnnspec.train.ctc import decode as ctc_decode
from rnnspec.train.models import build_model


class Loaded:
    def __init__(self, ckpt: dict[str, Any], spec: Spec, path: Path) -> None:
        self.ckpt, self.spec, self.path = ckpt, spec, path
        self.objective: str = ckpt.get("objective", "lm")
        self.vocab = Vocab.from_json(ckpt["vocab"]) if ckpt.get("vocab") else None
        self.classes: Optional[list[str]] = ckpt.get("classes")
        self.net = build_model(spec, self.objective)
        self.net.load_state_dict(ckpt["model"])
        self.net.eval()


def checkpoint_path(run: str | Path, which: str = "auto") -> Path:
    """``run`` is a checkpoint file or a run directory (``which``: best, last, or
    auto = best when there is one)."""
    p = Path(run)
    if p.is_dir():
        ck = p / "checkpoints"
        if not ck.is_dir():
            raise CheckpointError(f"{p}: not a run directory (no checkpoints/ inside)")
        if which == "best" or (which == "auto" and (ck / "best.pt").is_file()):
            return ck / "best.pt"
        return ck / "last.pt"
    return p


def load_run(run: str | Path, which: str = "auto") -> Loaded:
    from rnnspec.spec.loader import loads

    path = checkpoint_path(run, which)
    ckpt = load_checkpoint(path)
    if "spec" not in ckpt:
        raise CheckpointError(f"{path}: holds no spec (not written by rnnspec train)")
    spec = loads(ckpt["spec"], "yaml", filename=f"{path}[spec]")
    return Loaded(ckpt, spec, path)


def evaluate_run(run: str | Path, split: str = "validation", which: str = "auto", batch: Optional[int] = None) -> dict[str, Any]:
    """Metrics of a trained run on one split of its data."""
    from rnnspec.train.loop import evaluate
    from rnnspec.train.tasks import load_data

    r = load_run(run, which)
    data = load_data(r.spec, vocab=r.vocab, classes=r.classes)
    t, m = r.spec.train, r.spec.model
    assert t is not None and m is not None
    if data.split(split) is None:
        other = "validation" if split == "test" else "train"
        raise SpecError(f"this run's data has no {split} split (see data.split and data.test); try --split {other}",
                        r.spec._where.value(("train", "data")) if r.spec._where else None)
    res = evaluate(r.net, data.objective, data, split, batch=batch or t.batch, batch_first=bool(m.batch_first),
                   device=torch.device("cpu"))
    size = int(data.split(split).shape[0]) if data.kind == "stream" else len(data.split(split))
    return {"checkpoint": str(r.path), "step": r.ckpt.get("step"), "split": split, "size": size, **(res or {})}


# ---------------------------------------------------------------- predict

def _read_inputs(r: Loaded, path: Path) -> list[Example]:
    """Input sequences for prediction, read like the run's training data."""
    t, m = r.spec.train, r.spec.model
    assert t is not None and m is not None
    suffix = path.suffix.lower()
    tokens_in = (m.input.tokens is not None) if r.objective != "seq2seq" else (t.seq2seq.source.tokens is not None)  # type: ignore[union-attr]
    if suffix in (".txt", ".text", ""):
        from rnnspec.data.text import read_text

        lines = [ln for ln in read_text(path).splitlines() if ln.strip()]
        if not lines:
            raise DataError(f"{path}: no non-empty lines")
        out = []
        for k, ln in enumerate(lines):
            if r.vocab is not None:
                ids = r.vocab.encode(ln)
            else:
                try:
                    ids = torch.tensor([int(v) for v in ln.split()], dtype=torch.int64)
                except ValueError:
                    raise DataError(f"{path}:{k + 1}: this run has no vocabulary: write token ids separated by spaces") from None
                if not tokens_in:
                    ids = ids.float().unsqueeze(-1)
            if ids.numel() == 0:
                raise DataError(f"{path}:{k + 1}: no tokens")
            out.append(Example(ids))
        return out
    if suffix in (".csv", ".tsv"):
        from rnnspec.data.tabular import load_tabular

        d = t.data
        opts: dict[str, Any] = {}
        if d.features is not None:
            opts["features"] = d.features
        else:  # the training features: every column but the label, id and time columns the spec names
            from rnnspec.data.text import read_text

            head = next(csv.reader(io.StringIO(read_text(path).split("\n", 1)[0]),
                                   delimiter="\t" if suffix == ".tsv" else ","), [])
            skip = {d.label, d.sequence_id, d.time, *(d.labels or [])}
            opts["features"] = [h.strip() for h in head if h.strip() not in skip]
        if d.sequence_id is not None:
            opts["sequence_id"] = d.sequence_id
        if d.time is not None:
            opts["time"] = d.time
        exs = load_tabular(path, **opts)
        return [Example(e.x, extras=dict(e.extras)) for e in exs]
    if suffix == ".npy":
        from rnnspec.data.tabular import load_npy

        return load_npy(path)
    if suffix == ".npz":
        from rnnspec.data.tabular import load_npz

        k = t.data.keys
        return load_npz(path, x=k.x if k else "x", y=None, lengths=k.lengths if k else "lengths")
    raise DataError(f"{path}: unsupported input type {suffix!r}; expected .txt, .csv, .tsv, .npy or .npz")


@torch.no_grad()
def predict(run: str | Path, inputs: str | Path, output: str | Path, which: str = "auto", batch: int = 64) -> int:
    """Predictions for every sequence of ``inputs``, written to ``output``
    (.jsonl/.json: one object per sequence; .csv; .npy when they stack)."""
    r = load_run(run, which)
    m = r.spec.model
    assert m is not None
    exs = _read_inputs(r, Path(inputs))
    obj = r.objective
    net = r.net
    bf = bool(m.batch_first)
    preds: list[dict[str, Any]] = []
    for start in range(0, len(exs), batch):
        part = exs[start : start + batch]
        b = collate(part, batch_first=True)
        x = b.x if bf else b.x.transpose(0, 1)
        lengths = b.lengths
        if obj == "seq2seq":
            outs = net.greedy(x, lengths)  # type: ignore[operator]
            preds += [_seq2seq_row(r, o) for o in outs]
            continue
        y, _ = net(x, None, lengths)
        y = y.float()
        if y.dim() == 3 and not bf:
            y = y.transpose(0, 1)  # [B, T, C]
        for i in range(len(part)):
            n = int(lengths[i])
            yi = y[i]
            if obj == "classify":
                z = yi[n - 1] if yi.dim() == 2 else yi
                k = int(z.argmax())
                row: dict[str, Any] = {"label": k}
                if r.classes:
                    row["class"] = r.classes[k]
                row["probs"] = [round(float(v), 6) for v in torch.softmax(z, -1)]
                preds.append(row)
            elif obj == "tag":
                steps = yi[:n]
                if r.ckpt.get("loss") == "bce":  # several tags a step: those scored above 0.5
                    labels: list[Any] = [[j for j in range(steps.shape[-1]) if steps[s, j] > 0] for s in range(n)]
                    row = {"labels": labels}
                    if r.classes:
                        row["tags"] = [[_name(r, j) for j in step] for step in labels]
                else:
                    labels = steps.argmax(-1).tolist()
                    row = {"labels": labels}
                    if r.classes:
                        row["tags"] = [_name(r, j) for j in labels]
                preds.append(row)
            elif obj == "regress":
                v = yi[:n] if yi.dim() == 2 and m.output is not None and m.output.every_step and _per_step(r) else (
                    yi[n - 1] if yi.dim() == 2 else yi)
                preds.append({"value": v.tolist()})
            elif obj == "ctc":
                preds.append(_ctc_row(r, yi[:n]))
            else:  # lm: score the sequence and give the most likely next token
                steps = yi[:n]
                tgt = b.x[i, 1:n]
                nll = torch.nn.functional.cross_entropy(steps[: n - 1], tgt.long(), reduction="mean") if n > 1 else None
                nxt = int(steps[n - 1].argmax())
                row = {"next": r.vocab.token(nxt) if r.vocab is not None else nxt}
                if nll is not None:
                    row["perplexity"] = round(float(torch.exp(nll)), 4)
                preds.append(row)
    for i, row in enumerate(preds):
        row["index"] = i
    _write(Path(output), preds)
    return len(preds)


def _name(r: Loaded, k: int) -> str:
    assert r.classes is not None
    return r.classes[k] if k < len(r.classes) else str(k)


def _ctc_row(r: Loaded, scores: "torch.Tensor") -> dict[str, Any]:
    """One CTC prediction: the labels decoded as the run's spec says (blank,
    greedy or beam), and as a string when the labels have names."""
    c = r.spec.train.ctc if r.spec.train is not None else None
    labels = ctc_decode(scores.unsqueeze(0), [int(scores.shape[0])], c.blank if c else 0,
                        c.decode if c else "greedy", c.beam if c else 8)[0]
    row: dict[str, Any] = {"labels": labels}
    if r.classes:
        names = [r.classes[k] if k < len(r.classes) else str(k) for k in labels]
        row["text"] = ("" if all(len(v) == 1 for v in r.classes if v) else " ").join(names)
    return row


def _seq2seq_row(r: Loaded, ids: list[int]) -> dict[str, Any]:
    """One decoded sequence, and as words when the run's tokens have names (e.g. a caption)."""
    row: dict[str, Any] = {"output": ids}
    if r.classes:
        # single-character tokens (digits) read as one string, words with spaces between
        sep = "" if all(len(v) == 1 for v in r.classes if not v.startswith("<")) else " "
        row["text"] = sep.join(r.classes[k] if k < len(r.classes) else str(k) for k in ids)
    return row


def _per_step(r: Loaded) -> bool:
    return bool(r.ckpt.get("per_step", True))


def _write(path: Path, preds: list[dict[str, Any]]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        key = next(k for k in ("label", "value", "labels", "output", "next") if k in preds[0])
        try:
            arr = np.asarray([p[key] for p in preds])
            if arr.dtype == object:
                raise ValueError
        except ValueError:
            raise DataError(f"{path}: the predictions differ in shape and do not stack into one array; write .jsonl") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.save(f, arr)
        return
    if suffix == ".csv":
        cols = ["index"] + [k for k in preds[0] if k != "index"]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for p in preds:
            w.writerow([json.dumps(p[c]) if isinstance(p.get(c), (list, dict)) else p.get(c) for c in cols])
        atomic_write_text(path, buf.getvalue())
        return
    atomic_write_text(path, "".join(json.dumps({"index": p["index"], **{k: v for k, v in p.items() if k != "index"}}) + "\n"
                                    for p in preds))
