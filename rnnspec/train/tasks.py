"""From the spec's ``train.data`` to batches: load the source, split it,
decide the objective, check the data against the network, and serve
(resumable, shardable, pre-padded) batches.

Every problem with the data or its options is a :class:`SpecError` at the
spec key that named it: a missing file at the path, an unknown column at
``features``/``label``, a label beyond the output layer at the source,
an unknown task at ``task``, a bad generator parameter at ``params.NAME``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from rnnspec.data.batch import Batch, BatchIterator, Example, collate
from rnnspec.data.errors import DataError
from rnnspec.data.splits import train_validation_test
from rnnspec.data.text import ContiguousBatches, Vocab, builtin_corpus, language_model_data, read_text
from rnnspec.errors import Pos, SpecError
from rnnspec.spec.model import DATA_SOURCES, Spec
from rnnspec.train.losses import Objective, Prepared

# Options that apply to some sources only (an option set for another source is an error at its key).
OPTION_SOURCES: dict[str, tuple[str, ...]] = {
    "params": ("task",),
    "size": ("task",),
    "level": ("text", "corpus", "folder"),
    "seq_len": ("text", "corpus"),
    "limit_chars": ("text", "corpus"),
    "features": ("csv", "folder"),
    "label": ("csv",),
    "labels": ("csv",),
    "sequence_id": ("csv",),
    "time": ("csv",),
    "targets": ("npy",),
    "keys": ("npz",),
    "classes": ("csv", "folder"),
    "target": ("csv", "npy", "npz"),
    "bucket": ("task", "csv", "npy", "npz", "folder"),
    "shuffle": ("task", "csv", "npy", "npz", "folder"),
}


def _pos(spec: Spec, *path: Any, key: bool = False) -> Optional[Pos]:
    w = spec._where
    if w is None:
        return Pos(spec._file) if spec._file else None
    return w.key(("train", "data") + path) if key else w.value(("train", "data") + path)


def _mpos(spec: Spec, *path: Any) -> Optional[Pos]:
    w = spec._where
    return w.value(path) if w is not None else None


def spec_dir(spec: Spec) -> Path:
    f = spec._file or ""
    return Path(f).resolve().parent if f and not f.startswith("<") else Path.cwd()


def resolve_path(spec: Spec, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else spec_dir(spec) / p


def locate(err: DataError, spec: Spec) -> SpecError:
    """A data-layer error as a SpecError at the data option it is about."""
    d = spec.train.data  # type: ignore[union-attr]
    msg = err.message
    src = d.source
    path: tuple = (src,)
    m = re.search(r"parameter '([A-Za-z_0-9]+)", msg)
    if src == "task" and msg.startswith("unknown synthetic task"):
        path = ("task",)
    elif src == "task" and "has no parameter" in msg:
        bad = re.search(r"has no parameter '([^']+)'", msg)
        path = ("params", bad.group(1)) if bad else ("params",)
        return SpecError(msg, _pos(spec, *path, key=True))
    elif src == "task" and m and m.group(1) in d.params:
        path = ("params", m.group(1))
    elif src == "task" and ("parameter" in msg or "variant" in msg or "grammar" in msg):
        path = ("params",)
    elif "label column" in msg or ("label" in msg and "column" in msg and src == "csv"):
        path = ("labels",) if d.labels is not None else ("label",)
    elif "feature column" in msg or ("column" in msg and "no column" in msg):
        path = ("features",)
    elif "sequence-id column" in msg:
        path = ("sequence_id",)
    elif "time column" in msg:
        path = ("time",)
    elif src == "npz" and d.keys is not None and re.search(r"no (input|target|lengths) array", msg):
        role = re.search(r"no (input|target|lengths) array", msg).group(1)  # type: ignore[union-attr]
        path = ("keys", {"input": "x", "target": "y", "lengths": "lengths"}[role])
    elif src == "npy" and d.targets is not None and str(d.targets) in msg:
        path = ("targets",)
    elif "classes" in msg and d.classes is not None and "not one of the classes" not in msg:
        path = ("classes",)
    return SpecError(msg, _pos(spec, *path))


@dataclass
class TrainData:
    """Loaded, split data and what the trainer needs to know about it."""

    kind: str  # "stream" (one long token sequence, state carried) or "examples"
    objective: Objective
    train: Any  # stream: 1-D id tensor; examples: a sequence of Example
    validation: Any = None
    test: Any = None
    vocab: Optional[Vocab] = None
    classes: Optional[list[str]] = None
    seq_len: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)  # evaluation batch sources, by (split, batch, rows)

    def split(self, name: str) -> Any:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


# ---------------------------------------------------------------- loading

def _check_options(spec: Spec) -> None:
    d = spec.train.data  # type: ignore[union-attr]
    src = d.source
    for key in d.model_fields_set:
        if key in DATA_SOURCES:
            continue
        allowed = OPTION_SOURCES.get(key)
        if allowed is not None and src not in allowed:
            raise SpecError(
                f"data option {key!r} does not apply to {src!r} data (it applies to: {', '.join(allowed)})",
                _pos(spec, key, key=True),
            )


def _num_classes(spec: Spec) -> Optional[int]:
    """Labels are class ids (checked against the output layer) when the
    network ends in logits and the objective is not regression."""
    t, m = spec.train, spec.model
    assert t is not None and m is not None
    if t.objective == "regress" or t.loss in ("mse", "bce"):
        return None
    if m.output is not None and m.output.logits is not None:
        return m.output.logits
    return None


def _load_examples(spec: Spec, vocab: Optional[Vocab]) -> tuple[list[Example], Optional[list[str]], Optional[Vocab], dict]:
    t = spec.train
    assert t is not None
    d = t.data
    src = d.source
    nc = _num_classes(spec)
    info: dict[str, Any] = {}
    if src == "task":
        from rnnspec.data.synthetic import make_task, task_label_names, task_vocab

        exs = make_task(d.task, d.size, seed=t.seed, **d.params)  # type: ignore[arg-type]
        if not exs:
            raise DataError(f"task {d.task!r} produced no examples")
        return list(exs), task_label_names(d.task, **d.params), task_vocab(d.task, **d.params), info  # type: ignore[arg-type]
    path = resolve_path(spec, getattr(d, src))
    if src == "csv":
        from rnnspec.data.tabular import load_tabular

        opts: dict[str, Any] = {}
        if d.features is not None:
            opts["features"] = d.features
        if d.label is not None or d.labels is not None:
            opts["label"] = d.label if d.label is not None else d.labels
        if d.sequence_id is not None:
            opts["sequence_id"] = d.sequence_id
        if d.time is not None:
            opts["time"] = d.time
        if d.target != "auto":
            opts["target"] = d.target
        if d.classes is not None:
            opts["classes"] = d.classes
        elif nc is not None and (d.label is not None):
            opts["num_classes"] = nc
        if path.suffix.lower() not in (".csv", ".tsv"):
            raise DataError(f"{path}: a 'csv' source must be a .csv or .tsv file")
        return load_tabular(path, **opts), d.classes, None, info
    if src == "npy":
        from rnnspec.data.tabular import load_npy

        labels = resolve_path(spec, d.targets) if d.targets is not None else None
        return load_npy(path, labels=labels, num_classes=nc if labels is not None else None, target=d.target), None, None, info
    if src == "npz":
        from rnnspec.data.tabular import load_npz

        k = d.keys
        kx, ky, kl = (k.x, k.y, k.lengths) if k is not None else ("x", "y", "lengths")
        exs = load_npz(path, x=kx, y=ky, lengths=kl, num_classes=nc if ky is not None else None, target=d.target)
        if k is not None and k.target_lengths is not None:
            exs = _cut_targets(path, k.target_lengths, exs)
        return exs, None, None, info
    if src == "folder":
        from rnnspec.data.folder import load_folder

        fd = load_folder(path, classes=d.classes, level=d.level, vocab=vocab, columns=d.features)
        if nc is not None and fd.classes is not None and len(fd.classes) > nc:
            raise DataError(f"{path}: {len(fd.classes)} class folders ({', '.join(fd.classes)}) but the output layer has {nc} logits")
        return fd.examples, fd.classes, fd.vocab, info
    raise DataError(f"unknown data source {src!r}")


def _cut_targets(path: Path, key: str, exs: list[Example]) -> list[Example]:
    """Trim padded per-sequence label rows to ``target_lengths`` (CTC, seq2seq)."""
    with np.load(path, allow_pickle=False) as z:
        if key not in z.files:
            raise DataError(f"{path}: no target-lengths array {key!r}; the archive has {', '.join(map(repr, z.files))}")
        tl = np.asarray(z[key])
    if tl.ndim != 1 or tl.shape[0] != len(exs) or not np.issubdtype(tl.dtype, np.integer):
        raise DataError(f"{path}[{key!r}] must be {len(exs)} integers (one per sequence), got shape {tl.shape}")
    out = []
    for i, (ex, n) in enumerate(zip(exs, tl.tolist())):
        if ex.y is None or ex.y.dim() != 1 or not 1 <= n <= ex.y.shape[0]:
            raise DataError(f"{path}[{key!r}][{i}] = {n} does not fit target row {i}")
        out.append(Example(ex.x, ex.y[:n].clone(), dict(ex.extras), per_step=False))
    return out


def load_data(spec: Spec, *, vocab: Optional[Vocab] = None, classes: Optional[list[str]] = None) -> TrainData:
    """Load and split ``spec.train.data``; choose and check the objective.

    ``vocab``/``classes`` come from the run being resumed or evaluated, so
    ids and labels mean what they meant in training."""
    t, m = spec.train, spec.model
    if t is None:
        raise SpecError("this spec has no 'train' section", Pos(spec._file) if spec._file else None)
    if m is None:
        raise SpecError("this spec has no network to train", Pos(spec._file) if spec._file else None)
    _check_options(spec)
    d = t.data
    val_f = max(0.0, round(1.0 - d.split - d.test, 9))
    try:
        if d.source in ("text", "corpus"):
            text = builtin_corpus(d.corpus) if d.corpus is not None else read_text(resolve_path(spec, d.text))  # type: ignore[arg-type]
            if d.limit_chars is not None:
                text = text[: d.limit_chars]
            seq = t.bptt.truncate or d.seq_len
            lm = language_model_data(text, level=d.level, seq_len=seq, validation=val_f, test=d.test, vocab=vocab)
            data = TrainData("stream", None, lm.train.ids, lm.validation.ids if lm.validation else None,  # type: ignore[arg-type]
                             lm.test.ids if lm.test else None, vocab=lm.vocab, seq_len=seq)
        else:
            exs, found_classes, fvocab, info = _load_examples(spec, vocab)
            if classes is not None and found_classes is not None and list(found_classes) != list(classes):
                raise DataError(f"the class names are now {found_classes}, but the run was trained with {classes}")
            parts = train_validation_test(exs, validation=val_f, test=d.test, seed=t.seed, shuffle=True)
            if len(parts.train) == 0:
                raise DataError(f"the training split is empty ({len(exs)} examples, split {d.split})")
            data = TrainData("examples", None, parts.train, parts.validation if len(parts.validation) else None,  # type: ignore[arg-type]
                             parts.test if len(parts.test) else None, vocab=fvocab, classes=found_classes or classes,
                             info=info)
    except DataError as e:
        raise locate(e, spec) from None
    data.objective = choose_objective(spec, data)
    check_against_model(spec, data)
    if t.anomaly is not None:
        from rnnspec.train.anomaly import attach

        attach(spec, data)  # anomaly scores from the predictor's errors (Malhotra et al. 2015)
    return data


# ---------------------------------------------------------------- objective

def _y_kind(ex: Example) -> str:
    y = ex.y
    if y is None:
        return "none"
    integer = not torch.is_floating_point(y) and y.dtype != torch.bool
    if ex.y_is_per_step():
        return "step_int" if integer else "step_float"
    if integer:
        return "seq_int" if y.numel() == 1 and y.dim() <= 1 else "seq_ints"
    return "seq_float"


def choose_objective(spec: Spec, data: TrainData) -> Objective:
    t, m = spec.train, spec.model
    assert t is not None and m is not None
    out = m.output
    logits = out is not None and out.logits is not None
    every = out.every_step if out is not None else True
    nout = out.size if out is not None else 0
    where_obj = _mpos(spec, "train", "objective") if "objective" in t.model_fields_set else _mpos(spec, "train", "data")
    if data.kind == "stream":
        if t.objective not in (None, "lm"):
            raise SpecError(f"text data trains a language model (objective lm), not {t.objective!r}",
                            _mpos(spec, "train", "objective"))
        if t.loss not in (None, "cross_entropy"):
            raise SpecError("a language model's loss is cross_entropy", _mpos(spec, "train", "loss"))
        return Objective("lm", "cross_entropy", per_step=True, every_step_output=every, num_outputs=nout)
    ex = data.train[0]
    kind = _y_kind(ex)
    name = t.objective
    if name is None:
        if t.seq2seq is not None:
            name = "seq2seq"
        elif t.loss == "ctc" or t.ctc is not None:
            name = "ctc"
        elif kind == "none":
            name = "lm" if not torch.is_floating_point(ex.x) else None
        elif kind == "step_int":
            name = "tag"
        elif kind == "step_float":
            name = "tag" if (t.loss == "bce" or (logits and t.loss != "mse")) else "regress"
        elif kind == "seq_int":
            name = "classify"
        elif kind == "seq_float":
            name = "regress"
        else:
            raise SpecError("the targets are label sequences; set objective: ctc or objective: seq2seq",
                            _mpos(spec, "train", "data"))
        if name is None:
            raise SpecError("the data have no targets (and are not tokens to model); nothing to train on",
                            _mpos(spec, "train", "data"))
    # compatibility of the objective with the targets
    ok = {
        "lm": kind == "none",
        "classify": kind == "seq_int",
        "tag": kind in ("step_int", "step_float"),
        "regress": kind in ("step_float", "seq_float"),
        "seq2seq": kind in ("seq_ints", "seq_int"),
        "ctc": kind in ("seq_ints", "seq_int"),
    }[name]
    if not ok:
        what = {"none": "no targets", "step_int": "a class per step", "step_float": "values per step",
                "seq_int": "one class per sequence", "seq_ints": "a label sequence per example",
                "seq_float": "values per sequence"}[kind]
        raise SpecError(f"objective {name!r} does not fit these data: they have {what}", where_obj)
    multi = name == "tag" and kind == "step_float"
    default_loss = {"lm": "cross_entropy", "classify": "cross_entropy", "tag": "bce" if multi else "cross_entropy",
                    "regress": "mse", "seq2seq": "cross_entropy", "ctc": "ctc"}[name]
    loss = t.loss or default_loss
    allowed_losses = {"lm": ("cross_entropy",), "classify": ("cross_entropy",),
                      "tag": ("bce",) if multi else ("cross_entropy",), "regress": ("mse", "bce"),
                      "seq2seq": ("cross_entropy",), "ctc": ("ctc",)}[name]
    if loss not in allowed_losses:
        raise SpecError(f"loss {loss!r} does not fit objective {name!r} (use {' or '.join(allowed_losses)})",
                        _mpos(spec, "train", "loss"))
    per_step = name in ("lm", "tag") or (name == "regress" and kind == "step_float")
    if t.ctc is not None and name != "ctc":
        raise SpecError(f"a 'ctc' section applies to objective ctc, not {name!r}", _mpos(spec, "train", "ctc"))
    c = t.ctc
    return Objective(name, loss, per_step=per_step, every_step_output=every, num_outputs=nout, multi_label=multi,
                     blank=c.blank if c is not None else 0, decode=c.decode if c is not None else "greedy",
                     beam=c.beam if c is not None else 8)


# ---------------------------------------------------------------- checks against the network

def _max_token(examples: Sequence[Example]) -> int:
    top = -1
    for ex in examples:
        if ex.x.numel():
            top = max(top, int(ex.x.max()))
    return top


def _iter_all(data: TrainData) -> Iterator[Example]:
    for part in (data.train, data.validation, data.test):
        if part is not None:
            yield from part


def check_against_model(spec: Spec, data: TrainData) -> None:
    t, m = spec.train, spec.model
    assert t is not None and m is not None
    obj = data.objective
    out = m.output
    inp = m.input if obj.name != "seq2seq" else t.seq2seq.source  # type: ignore[union-attr]
    in_path = ("model", "input") if obj.name != "seq2seq" else ("train", "seq2seq", "source")
    if data.kind == "stream":
        assert data.vocab is not None
        n = len(data.vocab)
        if m.input.tokens is None or m.input.tokens < n or out is None or out.logits != m.input.tokens:
            raise SpecError(
                f"the corpus has {n} distinct {data.vocab.level} tokens (with padding and unknown); "
                f"set the input to tokens({n}) or more and the output logits to the same number",
                _mpos(spec, "model", "input"),
            )
        if not out.every_step:
            raise SpecError("a language model predicts every step: add every_step: true", _mpos(spec, "model", "output"))
        return
    ex = data.train[0]
    # inputs
    if torch.is_floating_point(ex.x):
        feats = int(ex.x.shape[1]) if ex.x.dim() == 2 else 1
        if inp.vector != feats:
            raise SpecError(f"the data have {feats} feature(s) per step; set the input to {{vector: {feats}}}",
                            _mpos(spec, *in_path))
    else:
        top = max((_max_token(p) for p in (data.train, data.validation, data.test) if p is not None), default=-1)
        if data.vocab is not None:  # a named vocabulary: every id of it may come back at predict time
            top = max(top, len(data.vocab) - 1)
        if inp.tokens is None or top >= inp.tokens:
            raise SpecError(f"the data are token ids 0..{top}; set the input to {{tokens: {top + 1}}} or more",
                            _mpos(spec, *in_path))
    if obj.name == "lm":
        data.train = _shifted(data.train)
        data.validation = _shifted(data.validation) if data.validation is not None else None
        data.test = _shifted(data.test) if data.test is not None else None
    # outputs
    if out is None:
        raise SpecError(f"objective {obj.name!r} needs an output layer (output: {{logits: N}} or {{linear: N}})",
                        _mpos(spec, "model"))
    opos = _mpos(spec, "model", "output")
    if obj.per_step and not out.every_step and obj.name != "seq2seq":
        raise SpecError(f"objective {obj.name!r} predicts every step: add every_step: true to the output", opos)
    if obj.name in ("classify", "tag", "ctc", "seq2seq", "lm") and not obj.multi_label and out.logits is None:
        raise SpecError(f"objective {obj.name!r} needs class scores: use output {{logits: N}}", opos)
    if obj.name in ("ctc", "seq2seq") and not out.every_step:
        raise SpecError(f"objective {obj.name!r} needs an output every step: add every_step: true", opos)
    if obj.name in ("classify", "tag", "ctc", "seq2seq", "lm") and not obj.multi_label:
        top = -1
        for e in _iter_all(data):
            if e.y is not None and e.y.numel():
                top = max(top, int(e.y.max()))
        if top >= out.size:
            raise SpecError(f"label {top} is out of range for the output layer's {out.size} logits (labels 0..{out.size - 1})",
                            _mpos(spec, "train", "data", data_source_key(spec)))
        if obj.name == "ctc":
            blank = obj.blank
            if blank >= out.size:
                where = _mpos(spec, "train", "ctc", "blank") if t.ctc is not None else opos
                raise SpecError(f"the CTC blank {blank} is not one of the output layer's {out.size} logits (0..{out.size - 1})",
                                where)
            if any(e.y is not None and bool((e.y == blank).any()) for e in _iter_all(data)):
                others = "1..N-1" if blank == 0 else ("0..N-2" if blank == out.size - 1 else f"0..N-1 except {blank}")
                raise SpecError(f"CTC labels must be {others}: {blank} is the blank (train.ctc.blank)",
                                _mpos(spec, "train", "data", data_source_key(spec)))
    else:
        y = ex.y
        k = int(y.shape[-1]) if (y is not None and y.dim() >= (2 if ex.y_is_per_step() else 1)) else 1
        if out.size != k:
            raise SpecError(f"the targets have {k} value(s) per {'step' if obj.per_step else 'sequence'}; "
                            f"set the output size to {k}", opos)
    if t.bptt.truncate is not None and obj.name in ("seq2seq", "ctc"):
        raise SpecError(f"truncated BPTT does not apply to objective {obj.name!r} (its loss needs the whole sequence)",
                        _mpos(spec, "train", "bptt", "truncate"))
    if t.bptt.truncate is not None and any(getattr(layer, "bidirectional", False) for layer in m.layers):
        raise SpecError("truncated BPTT cannot run a bidirectional layer (it needs the whole sequence)",
                        _mpos(spec, "train", "bptt", "truncate"))
    if obj.name == "seq2seq":
        if m.input.tokens is None:
            raise SpecError("a seq2seq decoder reads the previous target token: use input {tokens: N}", _mpos(spec, "model", "input"))
        if any(getattr(layer, "bidirectional", False) for layer in m.layers):
            raise SpecError("a seq2seq decoder cannot be bidirectional", _mpos(spec, "model", "layers"))
        s2s = t.seq2seq
        assert s2s is not None
        if s2s.bos >= m.input.tokens:
            raise SpecError(f"bos {s2s.bos} is out of range for the decoder's {m.input.tokens} tokens",
                            _mpos(spec, "train", "seq2seq", "bos"))


def data_source_key(spec: Spec) -> str:
    return spec.train.data.source  # type: ignore[union-attr]


class _Shifted(Sequence[Example]):
    """Token sequences as next-token examples: x = s[:-1], y = s[1:]."""

    def __init__(self, items: Sequence[Example]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:  # type: ignore[override]
        ex = self.items[i]
        return Example(ex.x[:-1], ex.x[1:], per_step=True)


def _shifted(items: Sequence[Example]) -> Sequence[Example]:
    return _Shifted(items)


# ---------------------------------------------------------------- batches

class Packed:
    """A split's examples padded once into dataset-wide tensors, so a batch is
    a row gather and a trim (microseconds, no Python per example): the data
    side never holds up a training step.  Only what training reads is kept:
    ``x``, ``y``, ``lengths``, ``loss_mask`` and ``target_lengths``."""

    MAX_ELEMENTS = 1 << 27  # beyond this (512 MiB of float32) batches are collated one by one instead

    def __init__(self, items: Sequence[Example], pad_y: float) -> None:
        from torch.nn.utils.rnn import pad_sequence

        exs = [items[i] for i in range(len(items))]
        first = exs[0]
        self.n = len(exs)
        self.lengths = torch.tensor([ex.length for ex in exs], dtype=torch.int64)
        self.x = pad_sequence([ex.x for ex in exs], batch_first=True, padding_value=0)
        self.per_step = first.y_is_per_step()
        self.y: Optional[Tensor] = None
        self.y_lengths: Optional[Tensor] = None
        if first.y is not None:
            ys = [ex.y for ex in exs]
            if self.per_step:
                self.y = pad_sequence(ys, batch_first=True, padding_value=pad_y)  # type: ignore[arg-type]
            elif all(y.shape == ys[0].shape for y in ys):  # type: ignore[union-attr]
                self.y = torch.stack(ys)  # type: ignore[arg-type]
            else:  # label sequences of different lengths (CTC, seq2seq)
                self.y = pad_sequence(ys, batch_first=True, padding_value=0)  # type: ignore[arg-type]
                self.y_lengths = torch.tensor([int(y.shape[0]) for y in ys], dtype=torch.int64)  # type: ignore[union-attr]
        self.mask: Optional[Tensor] = None
        if isinstance(first.extras.get("loss_mask"), (Tensor, np.ndarray)):
            self.mask = pad_sequence([torch.as_tensor(ex.extras["loss_mask"]).to(torch.bool) for ex in exs],
                                     batch_first=True, padding_value=False)
        tl = first.extras.get("target_lengths")
        if tl is not None:
            self.y_lengths = torch.as_tensor([int(ex.extras["target_lengths"]) for ex in exs], dtype=torch.int64)

    @staticmethod
    def fits(items: Sequence[Example]) -> bool:
        n = len(items)
        if n == 0:
            return False
        sample = [items[i] for i in range(0, n, max(1, n // 64))]
        width = max(int(ex.x[0].numel()) if ex.x.dim() > 1 else 1 for ex in sample)
        longest = max(ex.length for ex in sample)
        return n * longest * width * 4 <= Packed.MAX_ELEMENTS

    def batch(self, idx: Sequence[int]) -> Batch:
        ii = torch.as_tensor(list(idx), dtype=torch.int64)
        L = self.lengths[ii]
        T = int(L.max())
        x = self.x[ii, :T]
        extras: dict[str, Any] = {}
        y = None
        if self.y is not None:
            y = self.y[ii, :T] if self.per_step else self.y[ii]
            if self.y_lengths is not None:
                tl = self.y_lengths[ii]
                extras["target_lengths"] = tl
                if not self.per_step and y.dim() >= 2:
                    y = y[:, : int(tl.max())]
        if self.mask is not None:
            extras["loss_mask"] = self.mask[ii, :T]
        return Batch(x=x, y=y, lengths=L, extras=extras, batch_first=True, per_step=self.per_step)


class BatchSource:
    """Global batch ``i`` (a pure function of seed, epoch and ``i``), cut to
    this process's shard.  ``len()`` is batches per epoch."""

    def __init__(self, data: TrainData, split: str, batch: int, *, seed: int, shuffle: bool, bucket: int,
                 batch_first: bool, rank: int = 0, world: int = 1, stream_batch: Optional[int] = None) -> None:
        self.data = data
        self.kind = data.kind
        self.rank, self.world = rank, world
        self.batch_first = batch_first
        items = data.split(split)
        if self.kind == "stream":
            rows = stream_batch or batch
            self.stream = ContiguousBatches(items, rows, data.seq_len, batch_first=True)
            self.rows = rows
            self.n = len(self.stream)
        else:
            self.pad_y = -100 if data.objective.name in ("lm", "tag") and not data.objective.multi_label else 0
            self.it = BatchIterator(items, batch, seed=seed, shuffle=shuffle, bucket=bucket, batch_first=True,
                                    y_pad_value=self.pad_y)
            self.n = len(self.it)
            self.packed = Packed(items, self.pad_y) if Packed.fits(items) else None

    def __len__(self) -> int:
        return self.n

    def global_indices(self, position: int) -> list[int]:
        epoch, b = divmod(position, self.n)
        return self.it.batch_indices(epoch)[b]

    def get(self, position: int) -> Batch:
        if self.kind == "stream":
            b = self.stream[position % self.n]
            if self.world > 1:
                k = self.rows // self.world
                sl = slice(self.rank * k, (self.rank + 1) * k)
                b = Batch(x=b.x[sl], y=b.y[sl], lengths=b.lengths[sl], batch_first=True, per_step=True)
            return b
        idx = self.global_indices(position)
        if self.world > 1:
            idx = idx[self.rank :: self.world]
        return self.rows_batch(idx)

    def rows_batch(self, idx: Sequence[int]) -> Batch:
        if self.packed is not None:
            return self.packed.batch(idx)
        return collate([self.it.dataset[i] for i in idx], batch_first=True, pad_value=0, y_pad_value=self.pad_y)

    def sequential(self, max_batches: Optional[int] = None) -> Iterator[Batch]:
        """Every example once, in order (evaluation)."""
        if self.kind == "stream":
            yield from self.stream
            return
        n = len(self.it.dataset)
        size = self.it.batch_size
        for k, s in enumerate(range(0, n, size)):
            if max_batches is not None and k >= max_batches:
                return
            yield self.rows_batch(range(s, min(s + size, n)))

    def state(self, position: int) -> dict[str, int]:
        epoch, b = divmod(position, self.n)
        out = {"epoch": epoch, "batch": b, "batches_per_epoch": self.n}
        if self.kind == "examples":
            out.update(seed=self.it.seed, batch_size=self.it.batch_size, num_examples=len(self.it.dataset))
        return out


def to_layout(p: Prepared, batch_first: bool) -> Prepared:
    """Inputs in the network's layout (batches are built batch-first)."""
    if not batch_first:
        p.x = p.x.transpose(0, 1)
        p.batch_first = False
        # targets and masks stay batch-first ([B, T]); outputs are made batch-first before scoring
    return p
