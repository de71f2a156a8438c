"""The validated spec: one pydantic model that both formats produce.

Every model is strict (a wrong type is an error, never coerced) and forbids
unknown keys (a misspelt key is an error with a did-you-mean, never ignored).
Equality compares the data only, not where it came from, so a spec dumped to
the other format and read back is equal to the original.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from pydantic import Discriminator, Tag

from rnnspec.spec.blocks_model import BlockSpec, MemorySpec
from rnnspec.spec.model_base import Fraction, PositiveInt, Strict


def _exactly_one(values: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    given = [k for k in keys if values.get(k) is not None]
    if len(given) != 1:
        options = " or ".join(repr(k) for k in keys)
        if not given:
            raise ValueError(f"{what} needs one of {options}")
        raise ValueError(f"{what} takes only one of {options}, got {', '.join(repr(g) for g in given)}")


# ---------------------------------------------------------------- cells

class ParamDecl(Strict):
    """A declared parameter: its shape (else inferred) and initializer."""

    shape: Optional[list[int | str]] = None
    init: Optional[str] = None


class CellDef(Strict):
    """A cell as written: inputs, state variables with sizes, constants,
    parameters and equations (canonical text; the parsed equations with their
    source positions ride along privately)."""

    inputs: list[str] = Field(default_factory=lambda: ["x"])
    state: dict[str, int | str]
    consts: dict[str, int | float | str] = Field(default_factory=dict)
    output: Optional[str] = None
    params: dict[str, ParamDecl] = Field(default_factory=dict)
    equations: list[str]

    _parsed: Any = PrivateAttr(default=None)  # list[Equation] with positions
    _origin: Any = PrivateAttr(default=None)  # Pos of the cell's name
    _param_pos: Any = PrivateAttr(default=None)  # parameter name -> Pos of its declaration


# ---------------------------------------------------------------- network

class InputSpec(Strict):
    """``{tokens: 96, embed: 64}`` (token ids, embedded) or ``{vector: 40}``."""

    tokens: Optional[PositiveInt] = None
    vector: Optional[PositiveInt] = None
    embed: Optional[PositiveInt] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "InputSpec":
        _exactly_one(self.__dict__, ("tokens", "vector"), "input")
        if self.vector is not None and self.embed is not None:
            raise ValueError("'embed' applies to token inputs only")
        return self

    @property
    def size(self) -> int:
        """Features per step as the first layer sees them."""
        if self.vector is not None:
            return self.vector
        return self.embed if self.embed is not None else int(self.tokens or 0)


class LayerSpec(Strict):
    """One recurrent layer (``depth`` stacks copies of it)."""

    cell: str
    hidden: PositiveInt
    depth: PositiveInt = 1
    dropout: Fraction = 0.0
    bidirectional: bool = False
    merge: Literal["concat", "sum"] = "concat"
    heads: PositiveInt = 1
    bias: bool = True
    # zeros (torch.nn's start) or a trained start state per layer and direction
    initial_state: Literal["zeros", "learned"] = "zeros"
    initial_init: Optional[str] = None  # the learned state's initializer (as a param's); default zeros
    args: dict[str, int | float | str] = Field(default_factory=dict)


class OutputSpec(Strict):
    """A linear read-out: ``logits`` (for cross-entropy) or ``linear``."""

    logits: Optional[PositiveInt] = None
    linear: Optional[PositiveInt] = None
    every_step: bool = False
    activation: Optional[Literal["sigmoid", "tanh", "relu", "softmax", "log_softmax"]] = None

    @model_validator(mode="after")
    def _one_kind(self) -> "OutputSpec":
        _exactly_one(self.__dict__, ("logits", "linear"), "output")
        return self

    @property
    def size(self) -> int:
        return int(self.logits if self.logits is not None else self.linear or 0)


def _layer_kind(value: Any) -> str:
    """A layer is a cell layer unless it names a ``block``."""
    if isinstance(value, dict):
        return "block" if "block" in value else "cell"
    return "block" if isinstance(value, BlockSpec) else "cell"


AnyLayer = Annotated[
    Annotated[LayerSpec, Tag("cell")] | Annotated[BlockSpec, Tag("block")],
    Discriminator(_layer_kind),
]


class ModelSpec(Strict):
    input: InputSpec
    layers: Annotated[list[AnyLayer], Field(min_length=1)]
    output: Optional[OutputSpec] = None
    batch_first: bool = False


# ---------------------------------------------------------------- training
#
# The training section.  Cross-field rules that need the data or the network
# (a column that must exist, labels that must fit the output, options that
# apply to one data source only) are checked by rnnspec.train, which has the
# spec's source map and reports them at the key that named them.

DATA_SOURCES = ("text", "corpus", "task", "csv", "npy", "npz", "folder")


class NpzKeys(Strict):
    """Array names inside an ``.npz`` archive."""

    x: str = "x"
    y: Optional[str] = "y"
    lengths: Optional[str] = "lengths"
    target_lengths: Optional[str] = None


class DataSpec(Strict):
    """Where examples come from (exactly one source) and how they are split
    and batched.

    Sources: ``text`` (a file, char or word level), ``corpus`` (ships with
    Python), ``task`` (a synthetic generator, with ``params`` and ``size``),
    ``csv`` / ``npy`` / ``npz`` (tables and arrays), ``folder`` (one sequence
    per file, class = subfolder)."""

    text: Optional[str] = None
    corpus: Optional[Literal["pydoc_topics"]] = None
    task: Optional[str] = None
    csv: Optional[str] = None
    npy: Optional[str] = None
    npz: Optional[str] = None
    folder: Optional[str] = None
    # synthetic tasks
    params: dict[str, Any] = Field(default_factory=dict)
    size: PositiveInt = 1000
    # text
    level: Literal["char", "word"] = "char"
    seq_len: PositiveInt = 128
    limit_chars: Optional[PositiveInt] = None
    # tables and arrays
    features: Optional[list[str]] = None
    label: Optional[str] = None
    labels: Optional[list[str]] = None
    sequence_id: Optional[str] = None
    time: Optional[str] = None
    targets: Optional[str] = None
    keys: Optional[NpzKeys] = None
    classes: Optional[list[str]] = None
    target: Literal["auto", "step", "sequence"] = "auto"
    # splits and batches
    split: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    test: Fraction = 0.0
    shuffle: bool = True
    bucket: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _one_source(self) -> "DataSpec":
        _exactly_one(self.__dict__, DATA_SOURCES, "data")
        if self.split + self.test > 1.0 + 1e-9:
            raise ValueError(f"split ({self.split}) + test ({self.test}) is more than 1")
        if self.label is not None and self.labels is not None:
            raise ValueError("give 'label' (one column) or 'labels' (several), not both")
        return self

    @property
    def source(self) -> str:
        """The name of the source key that is set."""
        return next(k for k in DATA_SOURCES if getattr(self, k) is not None)


class OptimizerArgs(Strict):
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    momentum: Annotated[float, Field(ge=0.0)] = 0.0
    nesterov: bool = False
    weight_decay: Optional[Annotated[float, Field(ge=0.0)]] = None
    betas: Optional[Annotated[list[Annotated[float, Field(ge=0.0, lt=1.0)]], Field(min_length=2, max_length=2)]] = None
    eps: Optional[Annotated[float, Field(gt=0.0)]] = None
    alpha: Optional[Annotated[float, Field(gt=0.0)]] = None  # rmsprop: < 1 (checked in train.optim); ridge: the penalty
    washout: Annotated[int, Field(ge=0)] = 0  # ridge: steps at each sequence's start left out of the fit


OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad", "ridge"]


class ScheduleArgs(Strict):
    """Learning-rate schedule arguments (which apply depends on the schedule)."""

    warmup: Annotated[int, Field(ge=0)] = 0
    every: Optional[PositiveInt] = None
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0
    patience: Annotated[int, Field(ge=0)] = 2
    threshold: Annotated[float, Field(ge=0.0)] = 1e-4


ScheduleName = Literal["constant", "step", "cosine", "linear", "plateau"]


class BpttSpec(Strict):
    truncate: Optional[PositiveInt] = None


class SampleSpec(Strict):
    length: PositiveInt = 200
    temperature: Annotated[float, Field(gt=0.0)] = 0.8
    prompt: str = ""
    top_k: Optional[PositiveInt] = None


class EarlyStopSpec(Strict):
    patience: PositiveInt = 5
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0


class Seq2SeqSpec(Strict):
    """Encoder-decoder training: an encoder (the network's layers, reading
    ``source``) runs over the input; its final state starts the decoder (the
    network itself), which reads the target shifted right (``bos`` first)."""

    source: InputSpec
    bos: Annotated[int, Field(ge=0)] = 1
    eos: Optional[Annotated[int, Field(ge=0)]] = None
    max_len: PositiveInt = 100


class AnomalySpec(Strict):
    """Prediction-error anomaly detection (Malhotra et al. 2015) on a
    per-step ``regress`` predictor: the errors of each point's predictions
    are scored by a Gaussian fitted on the validation split's normal points,
    and a point is flagged when its score exceeds the ``quantile`` of those
    normal scores (see rnnspec.train.anomaly)."""

    quantile: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99


class CtcSpec(Strict):
    """CTC options (objective ctc): which output is the blank, and how
    outputs are decoded into labels for the label error rate and predict."""

    blank: Annotated[int, Field(ge=0)] = 0
    decode: Literal["greedy", "beam"] = "greedy"
    beam: PositiveInt = 8


Objective = Literal["lm", "classify", "tag", "regress", "seq2seq", "ctc"]
Metric = Literal["loss", "accuracy", "perplexity", "bpc", "mae", "bit_errors", "ler",
                "f1", "exact", "auc", "precision", "recall"]


class TrainSpec(Strict):
    data: DataSpec
    objective: Optional[Objective] = None
    loss: Optional[Literal["cross_entropy", "mse", "bce", "ctc"]] = None
    seq2seq: Optional[Seq2SeqSpec] = None
    ctc: Optional[CtcSpec] = None
    anomaly: Optional[AnomalySpec] = None
    optimizer: dict[OptimizerName, OptimizerArgs] = Field(default_factory=lambda: {"adam": OptimizerArgs()})
    schedule: dict[ScheduleName, ScheduleArgs] = Field(default_factory=lambda: {"constant": ScheduleArgs()})
    bptt: BpttSpec = Field(default_factory=BpttSpec)
    batch: PositiveInt = 32
    epochs: PositiveInt = 1
    max_steps: Optional[PositiveInt] = None
    clip_grad_norm: Optional[Annotated[float, Field(gt=0.0)]] = None
    clip_grad_value: Optional[Annotated[float, Field(gt=0.0)]] = None
    seed: int = 0
    log_every: PositiveInt = 20
    eval_every: Optional[PositiveInt] = None
    eval_batches: Optional[PositiveInt] = None
    checkpoint_every: PositiveInt = 200
    monitor: Metric = "loss"
    early_stop: Optional[EarlyStopSpec] = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    track: Optional[Literal["mlflow"]] = None
    sample: Optional[SampleSpec] = None

    @model_validator(mode="after")
    def _one_optimizer(self) -> "TrainSpec":
        if len(self.optimizer) != 1:
            raise ValueError("optimizer takes exactly one of sgd, adam, adamw, rmsprop, adagrad, ridge")
        if len(self.schedule) != 1:
            raise ValueError("schedule takes exactly one of constant, step, cosine, linear, plateau")
        if self.objective == "seq2seq" and self.seq2seq is None:
            raise ValueError("objective seq2seq needs a 'seq2seq' section ({source: {vector: N}} or {source: {tokens: N}})")
        return self


# ---------------------------------------------------------------- the spec

class Spec(Strict):
    """A whole spec file, includes resolved into ``cells``."""

    name: Optional[str] = None
    include: list[str] = Field(default_factory=list)
    cells: dict[str, CellDef] = Field(default_factory=dict)
    model: Optional[ModelSpec] = None
    memory: Optional[MemorySpec] = None
    train: Optional[TrainSpec] = None

    _file: str = PrivateAttr(default="<spec>")
    _where: Any = PrivateAttr(default=None)  # SourceMap
    _library: Any = PrivateAttr(default=None)  # dict[str, CellDef]: every cell in scope

    def cell(self, name: str) -> CellDef:
        lib = self._library or {}
        if name in self.cells:
            return self.cells[name]
        return lib[name]
