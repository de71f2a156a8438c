"""Every data source wired from the spec, and every bad input reported at
the spec position that named it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnspec
from rnnspec.errors import SpecError
from rnnspec.train.tasks import load_data

from ._util import col_of, line_of, load, run, write_spec

CSV = "id,t,a,b,label\n" + "".join(
    f"s{i},{t},{(i * 7 + t) % 5 / 5:.2f},{(i + t) % 3 / 3:.2f},{i % 3}\n" for i in range(30) for t in range(4 + i % 3)
)


def _csv_spec(tmp_path: Path, data: str, logits: int = 3) -> Path:
    (tmp_path / "d.csv").write_text(CSV)
    return write_spec(tmp_path, f"""
name: csv-clf
model:
  input: {{vector: 2}}
  layers: [{{cell: gru, hidden: 8}}]
  output: {{logits: {logits}}}
train:
  data: {data}
  batch: 8
  max_steps: 3
""")


def test_word_level_text_saves_its_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("the cat sat on the mat\nthe dog sat on the log\n" * 40)
    spec = load(tmp_path, """
name: words
model:
  input: {tokens: 12, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 12, every_step: true}
train:
  data: {text: c.txt, level: word, seq_len: 8, split: 0.8}
  batch: 4
  max_steps: 3
""")
    r = run(spec, tmp_path / "run")
    vocab = json.loads((tmp_path / "run" / "vocab.json").read_text())
    assert vocab["level"] == "word" and "cat" in vocab["tokens"] and "<eos>" in vocab["tokens"]
    assert r.steps == 3 and {"perplexity", "bpc"} <= set(r.history[0])
    # the run directory is self-contained: the resolved spec names the data by absolute path
    saved = rnnspec.load(tmp_path / "run" / "spec.yaml")
    assert Path(saved.train.data.text).is_absolute()


def test_builtin_corpus(tmp_path: Path) -> None:
    spec = load(tmp_path, """
name: corpus
model:
  input: {tokens: 112, embed: 4}
  layers: [{cell: elman, hidden: 8}]
  output: {logits: 112, every_step: true}
train:
  data: {corpus: pydoc_topics, limit_chars: 3000, seq_len: 16, split: 0.9}
  batch: 4
  max_steps: 2
""")
    assert run(spec, tmp_path / "run").steps == 2


def test_synthetic_task_with_splits_and_bucketing(tmp_path: Path) -> None:
    spec = load(tmp_path, """
name: parens
model:
  input: {tokens: 2, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 2}
train:
  data: {task: parentheses, params: {min_len: 2, max_len: 12}, size: 100, split: 0.7, test: 0.1, bucket: 2}
  batch: 10
  max_steps: 2
""")
    data = load_data(spec)
    assert (len(data.train), len(data.validation), len(data.test)) == (70, 20, 10)
    assert data.objective.name == "classify"
    again = load_data(spec)  # a fixed seed: the same split every time
    assert [ex.x.tolist() for ex in again.validation] == [ex.x.tolist() for ex in data.validation]


def test_csv_with_sequence_ids_classifies(tmp_path: Path) -> None:
    spec = rnnspec.load(_csv_spec(tmp_path, "{csv: d.csv, sequence_id: id, time: t, label: label, split: 0.8}"))
    data = load_data(spec)
    assert data.objective.name == "classify" and len(data.train) == 24
    assert data.train[0].x.shape[1] == 2
    assert run(spec, tmp_path / "run").steps == 3


def test_npy_npz_and_folder_sources(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(20, 6, 3)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.normal(size=(20, 6, 2)).astype(np.float32))
    base = """
name: arr
model:
  input: {vector: 3}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 2, every_step: true}
train:
  data: DATA
  batch: 5
  max_steps: 2
"""
    spec = load(tmp_path, base.replace("DATA", "{npy: x.npy, targets: y.npy}"))
    d = load_data(spec)
    assert d.objective.name == "regress" and d.objective.per_step
    assert run(spec, tmp_path / "r1").steps == 2

    lengths = rng.integers(2, 7, size=20)
    np.savez(tmp_path / "d.npz", inputs=rng.normal(size=(20, 6, 3)).astype(np.float32),
             labels=rng.integers(0, 4, size=20), lens=lengths)
    spec = load(tmp_path, base.replace("DATA", "{npz: d.npz, keys: {x: inputs, y: labels, lengths: lens}}")
                .replace("{linear: 2, every_step: true}", "{logits: 4}"), "npz.yaml")
    d = load_data(spec)
    assert d.objective.name == "classify"
    assert sorted(ex.length for ex in [*d.train, *d.validation]) == sorted(lengths.tolist())
    assert run(spec, tmp_path / "r2").steps == 2

    for cls in ("up", "down"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        for k in range(6):
            np.save(tmp_path / "f" / cls / f"{k}.npy", rng.normal(size=(4 + k, 3)).astype(np.float32))
    spec = load(tmp_path, base.replace("DATA", "{folder: f, split: 0.75}").replace("{linear: 2, every_step: true}", "{logits: 2}"),
                "folder.yaml")
    d = load_data(spec)
    assert d.classes == ["down", "up"] and d.objective.name == "classify"
    r = run(spec, tmp_path / "r3")
    assert json.loads((tmp_path / "r3" / "run.json").read_text())["classes"] == ["down", "up"]
    assert r.steps == 2


# ---------------------------------------------------------------- errors, located

def _error(spec_or_path: object) -> SpecError:
    spec = rnnspec.load(spec_or_path) if isinstance(spec_or_path, Path) else spec_or_path
    with pytest.raises(SpecError) as e:
        load_data(spec)
    return e.value


def test_bad_path_is_located_at_the_path(tmp_path: Path) -> None:
    p = _csv_spec(tmp_path, "{csv: nope.csv, label: label}")
    err = _error(p)
    assert "nope.csv: no such file" in err.message
    assert err.pos.file == str(p) and (err.pos.line, err.pos.col) == col_of(p, "nope.csv")


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    p = _csv_spec(tmp_path, "{csv: empty.csv, label: label}")
    (tmp_path / "empty.csv").write_text("")
    err = _error(p)
    assert "file is empty" in err.message and err.pos.line == line_of(p, "empty.csv")


def test_wrong_column_name_points_at_the_column_option(tmp_path: Path) -> None:
    p = _csv_spec(tmp_path, "{csv: d.csv, sequence_id: id, label: lable}")
    err = _error(p)
    assert "no label column 'lable'" in err.message and "did you mean 'label'" in err.message
    assert (err.pos.line, err.pos.col) == col_of(p, "lable")
    p = _csv_spec(tmp_path, "{csv: d.csv, sequence_id: id, label: label, features: [a, c]}")
    err = _error(p)
    assert "no feature column 'c'" in err.message and err.pos.line == line_of(p, "features")


def test_label_out_of_range_is_located_at_the_source(tmp_path: Path) -> None:
    p = _csv_spec(tmp_path, "{csv: d.csv, sequence_id: id, label: label}", logits=2)
    err = _error(p)
    assert "label 2" in err.message and "out of range for num_classes=2" in err.message
    assert err.pos.line == line_of(p, "d.csv")
    # a synthetic task whose labels do not fit the output layer
    spec = load(tmp_path, """
name: t
model:
  input: {tokens: 8, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 3}
train:
  data: {task: temporal_order, params: {min_len: 12, max_len: 14, first: [2, 4], second: [6, 8]}, size: 40}
""", "t.yaml")
    err = _error(spec)
    assert "label 3 is out of range" in err.message and err.pos.line == 7


def test_unknown_task_and_bad_parameter(tmp_path: Path) -> None:
    text = """
name: t
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data: {task: ading, params: {length: 20}}
"""
    err = _error(load(tmp_path, text))
    assert "unknown synthetic task 'ading'" in err.message and "did you mean 'adding'" in err.message
    assert (err.pos.line, err.pos.col) == col_of(tmp_path / "spec.yaml", "ading")
    err = _error(load(tmp_path, text.replace("ading", "adding").replace("length: 20", "lenght: 20"), "b.yaml"))
    assert "has no parameter 'lenght'" in err.message and (err.pos.line, err.pos.col) == col_of(tmp_path / "b.yaml", "lenght")
    err = _error(load(tmp_path, text.replace("ading", "adding").replace("length: 20", "length: -3"), "c.yaml"))
    assert "'length'" in err.message and (err.pos.line, err.pos.col) == col_of(tmp_path / "c.yaml", "-3")


def test_option_for_another_source_is_an_error_at_its_key(tmp_path: Path) -> None:
    spec = load(tmp_path, """
name: t
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data:
    task: adding
    features: [a]
""")
    err = _error(spec)
    assert "'features' does not apply to 'task' data" in err.message and (err.pos.line, err.pos.col) == (9, 5)


def test_data_shape_must_fit_the_network(tmp_path: Path) -> None:
    spec = load(tmp_path, """
name: t
model:
  input: {vector: 3}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data: {task: adding, params: {length: 10}, size: 20}
""")
    err = _error(spec)
    assert "2 feature(s) per step" in err.message and err.pos.line == 3
    spec = load(tmp_path, """
name: t
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 3}
train:
  data: {task: adding, params: {length: 10}, size: 20}
""", "b.yaml")
    err = _error(spec)
    assert "1 value(s) per sequence" in err.message and err.pos.line == 5


def test_unknown_optimizer_and_argument(tmp_path: Path) -> None:
    base = """
name: t
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data: {task: adding, params: {length: 10}, size: 20}
  optimizer: OPT
"""
    with pytest.raises(SpecError) as e:
        load(tmp_path, base.replace("OPT", "{adamm: {lr: 0.1}}"))
    assert "'adamm'" in e.value.message and "did you mean 'adam'" in e.value.message
    assert (e.value.pos.line, e.value.pos.col) == col_of(tmp_path / "spec.yaml", "adamm")
    spec = load(tmp_path, base.replace("OPT", "{adam: {lr: 0.1, momentum: 0.9}}"), "b.yaml")
    with pytest.raises(SpecError) as e:
        run(spec, tmp_path / "r")
    assert "optimizer 'adam' takes no argument 'momentum'" in e.value.message
    assert (e.value.pos.line, e.value.pos.col) == col_of(tmp_path / "b.yaml", "momentum")
