"""The ``train.ctc`` section (blank, decoding) in both spec formats: it reaches
the objective, round-trips, and every misuse is a SpecError at the key."""
from __future__ import annotations

from pathlib import Path

import pytest

import rnnspec
from rnnspec.errors import SpecError
from rnnspec.spec.dump import dump_rnn, dump_yaml
from rnnspec.train.tasks import load_data

from ._util import col_of, write_spec

YAML = """
name: ctc
model:
  input: {vector: 8}
  layers: [{cell: lstm, hidden: 8, bidirectional: true}]
  output: {logits: LOGITS, every_step: true}
  batch_first: true
train:
  data: {task: speech_digits, params: {symbols: 3, max_len: 3, n_mels: 8}, size: 12, split: 0.75}
CTC
  batch: 4
  max_steps: 2
"""

RNN = """
network ctc {
    input  vector(8)
    layer  lstm(hidden=8) bidirectional
    output logits(LOGITS) every step
    batch_first = true
}

train {
    data: { task: speech_digits, params: { symbols: 3, max_len: 3, n_mels: 8 }, size: 12, split: 0.75 }
CTC
    batch: 4
    max_steps: 2
}
"""


def _write(tmp_path: Path, fmt: str, ctc: str, logits: int = 4) -> Path:
    text = (YAML if fmt == "yaml" else RNN).replace("LOGITS", str(logits))
    indent = "  " if fmt == "yaml" else "    "
    return write_spec(tmp_path, text.replace("CTC", "\n".join(indent + ln for ln in ctc.splitlines())), f"s.{fmt}")


def _load_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_data(rnnspec.load(path))
    return info.value


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_ctc_section_sets_the_objective_and_round_trips(tmp_path: Path, fmt: str) -> None:
    p = _write(tmp_path, fmt, "ctc: {blank: 4, decode: beam, beam: 3}", logits=5)
    spec = rnnspec.load(p)
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    d = load_data(spec)  # no objective written: the ctc section implies it
    obj = d.objective
    assert (obj.name, obj.blank, obj.decode, obj.beam) == ("ctc", 4, "beam", 3)
    assert obj.metrics == ("loss", "ler")
    assert d.classes == ["", "0", "1", "2"]  # the task's label names, kept by the run for predict


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_blank_outside_the_output_layer(tmp_path: Path, fmt: str) -> None:
    p = _write(tmp_path, fmt, "ctc: {blank: 7}")
    err = _load_error(p)
    assert "blank 7 is not one of the output layer's 4 logits" in err.message
    assert (err.pos.line, err.pos.col) == col_of(p, "7}")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_labels_that_are_the_blank(tmp_path: Path, fmt: str) -> None:
    p = _write(tmp_path, fmt, "ctc: {blank: 2}")
    err = _load_error(p)
    assert "CTC labels must be 0..N-1 except 2: 2 is the blank" in err.message
    assert (err.pos.line, err.pos.col) == col_of(p, "speech_digits")
    p = _write(tmp_path, fmt, "ctc: {blank: 3}")  # labels 1..3, blank 3 = the last of 4 logits
    assert "CTC labels must be 0..N-2: 3 is the blank" in _load_error(p).message


def test_ctc_section_on_another_objective(tmp_path: Path) -> None:
    p = write_spec(tmp_path, """
name: tagger
model:
  input: {tokens: 4, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 4, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 1, symbols: 4}, size: 20}
  objective: tag
  ctc: {blank: 0}
""")
    err = _load_error(p)
    assert "a 'ctc' section applies to objective ctc, not 'tag'" in err.message
    assert err.pos.line == col_of(p, "ctc: {")[0]


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
@pytest.mark.parametrize("ctc, bad", [("ctc: {blnk: 0}", "blnk"), ("ctc: {decode: viterbi}", "viterbi"),
                                      ("ctc: {beam: 0}", "0}"), ("ctc: {blank: -1}", "-1")])
def test_bad_ctc_options_are_located(tmp_path: Path, fmt: str, ctc: str, bad: str) -> None:
    p = _write(tmp_path, fmt, ctc)
    with pytest.raises(SpecError) as info:
        rnnspec.load(p)
    err = info.value
    assert (err.pos.line, err.pos.col) == col_of(p, bad), str(err)


def test_monitor_ler_needs_ctc(tmp_path: Path) -> None:
    from rnnspec.train.loop import train

    p = write_spec(tmp_path, """
name: tagger
model:
  input: {tokens: 4, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 4, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 1, symbols: 4}, size: 20}
  monitor: ler
  max_steps: 1
""")
    with pytest.raises(SpecError, match="monitor 'ler' is not a metric of objective 'tag'") as info:
        train(rnnspec.load(p), run_dir=tmp_path / "r", log=lambda m: None, threads=1)
    assert info.value.pos.line == col_of(p, "monitor")[0]
