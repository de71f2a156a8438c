"""The two spec formats are one language: the same network written in YAML and
in the .rnn DSL loads to equal Spec objects, a YAML cell may give its
equations as a list or as one block string, and an error inside an equation
string in YAML points at the right column of the YAML file."""
from __future__ import annotations

import pytest
import torch

import rnnspec
from rnnspec.errors import SpecError


def both(yaml_text: str, rnn_text: str):
    return rnnspec.loads(yaml_text, "yaml", filename="s.yaml"), rnnspec.loads(rnn_text, "rnn", filename="s.rnn")


# ---------------------------------------------------------------- equal specs

MGU_RNN = """\
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}

network tagger {
    input  vector(40)
    layer  mgu(hidden=128, heads=4) bidirectional depth 2
    output linear(10) every step
}
"""

MGU_YAML = """\
name: tagger
cells:
  mgu:
    inputs: [x]
    state: {h: hidden}
    equations:
      - f = sigmoid(W_f @ x + U_f @ h + b_f)
      - n = tanh(W_n @ x + U_n @ (f * h) + b_n)
      - h' = (1 - f) * h + f * n
model:
  input: {vector: 40}
  layers:
    - {cell: mgu, hidden: 128, heads: 4, bidirectional: true, depth: 2}
  output: {linear: 10, every_step: true}
"""


def test_design_example_equal_in_both_formats():
    a, b = both(MGU_YAML, MGU_RNN)
    assert a == b
    assert a.model.layers[0].heads == 4 and a.model.layers[0].depth == 2 and a.model.layers[0].bidirectional
    assert a.model.output.every_step and a.model.output.linear == 10
    assert a.cells["mgu"].equations == b.cells["mgu"].equations
    # the spacing of the source does not matter: equations are canonical text
    assert a.cells["mgu"].equations[0] == "f = sigmoid(W_f @ x + U_f @ h + b_f)"


FULL_RNN = """\
# everything a spec can say, in the DSL
cell peep(x, h[hidden], c[hidden], scale=0.5) -> h {
    param b_i[4*hidden]: chunks(0, 1, 0, 0)
    param p_f[hidden]: zeros
    param U[4*hidden, hidden]: orthogonal
    i, f, g, o = split(W @ x + b_i + U @ h, 4)
    c' = sigmoid(f + p_f * c) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c') * scale
}
network lm {
    input tokens(96, embed=64)
    layer peep(hidden=32) bidirectional sum depth 2 dropout 0.1
    layer elman(hidden=16, act=relu, bias=false)
    layer jordan(hidden=8, out=4)
    output logits(96, activation=log_softmax) every step
    batch_first = true
}
train {
    data: {text: "data/tiny.txt", seq_len: 64, split: 0.9}
    loss: cross_entropy
    optimizer: adam(lr=3.0e-3, weight_decay=0.01)
    bptt: {truncate: 32}
    batch: 16
    epochs: 2
    clip_grad_norm: 1.0
    sample: {length: 50, temperature: 0.7, prompt: "The"}
}
"""

FULL_YAML = """\
# everything a spec can say, in YAML
name: lm
cells:
  peep:
    inputs: [x]
    state: {h: hidden, c: hidden}
    consts: {scale: 0.5}
    output: h
    params:
      b_i: "[4*hidden]: chunks(0, 1, 0, 0)"
      p_f: {shape: [hidden], init: zeros}
      U: "[4*hidden, hidden]: orthogonal"
    equations: |
      i, f, g, o = split(W @ x + b_i + U @ h, 4)
      c' = sigmoid(f + p_f * c) * c + sigmoid(i) * tanh(g)
      h' = sigmoid(o) * tanh(c') * scale
model:
  input: {tokens: 96, embed: 64}
  layers:
    - {cell: peep, hidden: 32, bidirectional: true, merge: sum, depth: 2, dropout: 0.1}
    - {cell: elman, hidden: 16, args: {act: relu}, bias: false}
    - {cell: jordan, hidden: 8, args: {out: 4}}
  output: {logits: 96, activation: log_softmax, every_step: true}
  batch_first: true
train:
  data: {text: data/tiny.txt, seq_len: 64, split: 0.9}
  loss: cross_entropy
  optimizer: {adam: {lr: 3.0e-3, weight_decay: 0.01}}
  bptt: {truncate: 32}
  batch: 16
  epochs: 2
  clip_grad_norm: 1.0
  sample: {length: 50, temperature: 0.7, prompt: The}
"""


def test_full_spec_equal_in_both_formats():
    a, b = both(FULL_YAML, FULL_RNN)
    assert a == b
    layers = a.model.layers
    assert [l.cell for l in layers] == ["peep", "elman", "jordan"]
    assert layers[0].merge == "sum" and layers[0].dropout == 0.1 and layers[0].depth == 2
    assert layers[1].args == {"act": "relu"} and layers[1].bias is False
    assert layers[2].args == {"out": 4}
    assert a.model.batch_first is True
    assert a.train.optimizer["adam"].lr == 3.0e-3 and a.train.optimizer["adam"].weight_decay == 0.01
    peep = a.cells["peep"]
    assert peep.params["b_i"].shape == ["4*hidden"] and peep.params["b_i"].init == "chunks(0, 1, 0, 0)"
    assert peep.params["U"].shape == ["4*hidden", "hidden"] and peep.output == "h"
    assert peep.consts == {"scale": 0.5}


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and immune to a busy machine
    yield
    torch.set_num_threads(n)


def test_equal_specs_compile_to_the_same_function(one_thread):
    a, b = both(FULL_YAML, FULL_RNN)
    torch.manual_seed(0)
    na = rnnspec.compile(a).eval()
    nb = rnnspec.compile(b).eval()
    nb.load_state_dict(na.state_dict())
    x = torch.randint(0, 96, (3, 7))  # batch_first
    ya, _ = na(x)
    yb, _ = nb(x)
    assert ya.shape == (3, 7, 96)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)


@pytest.mark.parametrize(
    "yaml_layer,rnn_layer",
    [
        ("{cell: lstm, hidden: 8}", "lstm(hidden=9)"),
        ("{cell: lstm, hidden: 8}", "gru(hidden=8)"),
        ("{cell: lstm, hidden: 8}", "lstm(hidden=8) bidirectional"),
        ("{cell: lstm, hidden: 8}", "lstm(hidden=8) depth 2"),
        ("{cell: elman, hidden: 8}", "elman(hidden=8, act=relu)"),
        ("{cell: lstm, hidden: 8, bidirectional: true}", "lstm(hidden=8) bidirectional sum"),
    ],
)
def test_different_networks_are_not_equal(yaml_layer, rnn_layer):
    a, b = both(
        f"name: t\nmodel:\n  input: {{vector: 3}}\n  layers: [{yaml_layer}]\n",
        f"network t {{\n input vector(3)\n layer {rnn_layer}\n}}\n",
    )
    assert a != b


def test_defaults_are_explicit_in_neither_and_equal():
    a, b = both(
        "name: t\nmodel:\n  input: {vector: 3}\n  layers: [{cell: lstm, hidden: 8, depth: 1, dropout: 0.0, merge: concat}]\n",
        "network t {\n input vector(3)\n layer lstm(hidden=8)\n}\n",
    )
    assert a == b


def test_equality_ignores_source_positions():
    a = rnnspec.loads(MGU_RNN, "rnn", filename="one.rnn")
    b = rnnspec.loads("\n\n\n" + MGU_RNN.replace("    ", "  "), "rnn", filename="two.rnn")
    assert a == b


def test_adam_betas_in_both_formats():
    # (was a bug: strict tuple[float, float] refused a list, "expected a list, got a list")
    a, b = both(
        "train:\n  data: {task: copy}\n  optimizer: {adam: {lr: 0.01, betas: [0.9, 0.99]}}\n",
        'train {\n  data: {task: "copy"}\n  optimizer: adam(lr=0.01, betas=[0.9, 0.99])\n}\n',
    )
    assert a == b
    assert tuple(a.train.optimizer["adam"].betas) == (0.9, 0.99)


# ---------------------------------------------------------------- YAML equations: list or block

CELL_HEAD = "name: t\ncells:\n  mgu:\n    state: {h: hidden}\n"

EQ_FORMS = {
    "list": """    equations:
      - f = sigmoid(W_f @ x + U_f @ h + b_f)
      - n = tanh(W_n @ x + U_n @ (f * h) + b_n)
      - h' = (1 - f) * h + f * n
""",
    "flow-list": """    equations: ["f = sigmoid(W_f @ x + U_f @ h + b_f)", "n = tanh(W_n @ x + U_n @ (f * h) + b_n)", "h' = (1 - f) * h + f * n"]
""",
    "quoted-list": """    equations:
      - 'f = sigmoid(W_f @ x + U_f @ h + b_f)'
      - "n = tanh(W_n @ x + U_n @ (f * h) + b_n)"
      - 'h'' = (1 - f) * h + f * n'
""",
    "block": """    equations: |
      f = sigmoid(W_f @ x + U_f @ h + b_f)
      n = tanh(W_n @ x + U_n @ (f * h) + b_n)
      h' = (1 - f) * h + f * n
""",
    "block-strip-comments": """    equations: |-
      # the minimal gated unit
      f = sigmoid(W_f @ x + U_f @ h + b_f)   # forget gate

      n = tanh(W_n @ x + U_n @ (f * h) + b_n)
      h' = (1 - f) * h + f * n
""",
    "block-in-list": """    equations:
      - f = sigmoid(W_f @ x + U_f @ h + b_f)
      - |
        n = tanh(W_n @ x + U_n @ (f * h) + b_n)
      - h' = (1 - f) * h + f * n
""",
}


@pytest.mark.parametrize("form", sorted(EQ_FORMS))
def test_yaml_equation_forms_give_equal_cells(form):
    ref = rnnspec.loads(CELL_HEAD + EQ_FORMS["list"], "yaml").cells["mgu"]
    got = rnnspec.loads(CELL_HEAD + EQ_FORMS[form], "yaml").cells["mgu"]
    assert got == ref
    dsl = rnnspec.loads(MGU_RNN, "rnn").cells["mgu"]
    assert got == dsl


def test_equation_list_and_block_differ_when_equations_differ():
    a = rnnspec.loads(CELL_HEAD + EQ_FORMS["list"], "yaml").cells["mgu"]
    b = rnnspec.loads(CELL_HEAD + EQ_FORMS["block"].replace("(1 - f) * h", "(1 - f) * n"), "yaml").cells["mgu"]
    assert a != b


# ---------------------------------------------------------------- errors inside YAML equation strings

HEAD = "name: t\ncells:\n  c:\n    state: {h: hidden}\n"


def _err(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        rnnspec.loads(text, "yaml", filename="eq.yaml")
    return info.value


def _at(text: str, line: int, needle: str) -> tuple[int, int]:
    return line, text.splitlines()[line - 1].index(needle) + 1


def _check(err: SpecError, where: tuple[int, int], phrase: str) -> None:
    assert (err.pos.line, err.pos.col) == where, str(err)
    assert phrase in err.message, str(err)
    # the caret sits under the culprit in the rendered report
    lines = str(err).splitlines()
    gutter = f"{where[0]:>5} | "
    assert lines[1].startswith(gutter)
    assert lines[2].index("^") == len(gutter) + where[1] - 1


UNDEF = "undefined variable 'hh'"

# (name, equations block, line of the culprit)
POSITION_CASES = [
    ("plain-list", "    equations:\n      - h' = tanh(W @ x + U @ hh + b)\n", 6),
    ("double-quoted", "    equations:\n      - \"h' = tanh(W @ x + U @ hh + b)\"\n", 6),
    ("flow-list", "    equations: [\"a = W @ x\", \"h' = tanh(a + U @ hh + b)\"]\n", 5),
    ("plain-string", "    equations: h' = tanh(W @ x + U @ hh + b)\n", 5),
    ("block", "    equations: |\n      a = W @ x\n      h' = tanh(a + U @ hh + b)\n", 7),
    ("block-strip-blank", "    equations: |-\n      a = W @ x\n\n      h' = tanh(a + U @ hh + b)\n", 8),
    ("block-keep-comments", "    equations: |+\n      # comment (\n      a = W @ x   # W x\n      h' = tanh(a + U @ hh + b)\n", 8),
    ("folded-one-line", "    equations: >\n      h' = tanh(W @ x + U @ hh + b)\n", 6),
    ("block-in-list", "    equations:\n      - a = W @ x\n      - |\n        h' = tanh(a + U @ hh + b)\n", 8),
    ("deeper-indent", "    equations:\n        -     h' = tanh(W @ x + U @ hh + b)\n", 6),
]


@pytest.mark.parametrize("name,eqs,line", POSITION_CASES, ids=[c[0] for c in POSITION_CASES])
def test_undefined_variable_column_in_yaml(name, eqs, line):
    text = HEAD + eqs
    _check(_err(text), _at(text, line, "hh"), UNDEF)


def test_single_quoted_without_escapes():
    text = HEAD + "    equations:\n      - 'a = W @ x'\n      - 'c2 = tanh(a + U @ hh + b)'\n      - \"h' = c2\"\n"
    _check(_err(text), _at(text, 7, "hh"), UNDEF)


@pytest.mark.parametrize(
    "eqs,line,needle,phrase",
    [
        ("    equations:\n      - h' = tanh(W @ x + + U @ h)\n", 6, "+ U", "unexpected '+'"),
        ("    equations:\n      - \"h' = tanh(W @ x ** U @ h)\"\n", 6, "* U", "unexpected '*'"),
        ("    equations: |\n      a = W @ x\n      h' = tanh(a ** U @ h)\n", 7, "* U", "unexpected '*'"),
        ("    equations: |\n      a = W @ x\n      h' = tanhh(a + U @ h)\n", 7, "tanhh", "unknown function 'tanhh'"),
        ("    equations:\n      - a = W @ x\n      - h' = tanh(a + h + x)\n", 7, "a + h", "shape mismatch"),
        ("    equations:\n      - a, z = split(W @ x, 3)\n      - h' = tanh(a)\n", 6, "a, z", "split into 3 parts"),
        ("    equations: [\"h' = tanh(W @ x + U @ h) $\"]\n", 5, "$", "unexpected character '$'"),
        ("    equations:\n      - h' = tanh(W @ x + U @ h\n", 6, None, "ends too early"),
    ],
    ids=["plain-syntax", "quoted-syntax", "block-syntax", "block-unknown-fn", "shape", "split", "char", "eof"],
)
def test_other_equation_errors_point_into_the_yaml(eqs, line, needle, phrase):
    text = HEAD + eqs
    err = _err(text)
    if needle is None:  # end of the equation: just past its last character
        where = (line, len(text.splitlines()[line - 1]) + 1)
    else:
        where = _at(text, line, needle)
    assert (err.pos.line, err.pos.col) == where, str(err)
    assert phrase in err.message, str(err)


def test_single_quoted_with_escaped_quote():
    # 'h'' = ...' is how YAML spells h' in single quotes: the natural way to write it.
    text = HEAD + "    equations:\n      - 'h'' = tanh(W @ x + U @ hh + b)'\n"
    _check(_err(text), _at(text, 6, "hh"), UNDEF)


def test_double_quoted_with_escape():
    text = HEAD + "    equations:\n      - \"h' = tanh(W @ x + \\u0055 @ hh + b)\"\n"
    _check(_err(text), _at(text, 6, "hh"), UNDEF)


def test_block_scalar_with_indentation_indicator():
    # `|2` under a key indented 4: content indentation is 6, so each line keeps 2 leading spaces.
    text = HEAD + "    equations: |2\n        a = W @ x\n        h' = tanh(a + U @ hh + b)\n"
    _check(_err(text), _at(text, 7, "hh"), UNDEF)


def test_multiline_plain_scalar():
    text = HEAD + "    equations:\n      - a = W @ x\n      - h' = tanh(a\n          + U @ hh + b)\n"
    _check(_err(text), _at(text, 8, "hh"), UNDEF)


# Scalars whose value is not a slice of one source line: the value was folded
# (plain, quoted, '>'), or its indentation is fixed by an indicator (|2). The
# error must land on the line and column of the culprit in the file, not at an
# offset into the folded value.  (name, equations block, line of the culprit)
RESHAPED_CASES = [
    ("folded-block-second-line", "    equations: >\n      h' = tanh(W @ x\n      + U @ hh + b)\n", 7),
    ("folded-block-in-list", "    equations:\n      - >-\n        h' = tanh(W @ x\n        + U @ hh + b)\n", 8),
    ("plain-three-lines", "    equations:\n      - h' = tanh(W @ x\n          + U @ x\n            + hh + b)\n", 8),
    ("plain-folded-string", "    equations: h' = tanh(W @ x\n      + U @ hh + b)\n", 6),
    ("plain-blank-line", "    equations:\n      - h' = tanh(W @ x\n\n          + U @ hh + b)\n", 8),
    ("plain-flow-list", "    equations: [a = W @ x, h' = tanh(a\n        + U @ hh + b)]\n", 6),
    ("double-quoted-folded", "    equations:\n      - \"h' = tanh(W @ x\n        + U @ hh + b)\"\n", 7),
    ("double-quoted-escaped-break", "    equations:\n      - \"h' = tanh(W @ x + \\\n        U @ hh + b)\"\n", 7),
    ("single-quoted-folded", "    equations:\n      - 'h'' = tanh(W @ x\n        + U @ hh + b)'\n", 7),
    ("indicator-first-line", "    equations: |2\n        h' = tanh(W @ x + U @ hh + b)\n        a = W @ x\n", 6),
    ("indicator-later-line", "    equations: |2\n        a = W @ x\n\n          c = a\n        h' = tanh(c + U @ hh + b)\n", 9),
    ("indicator-strip", "    equations: |-2\n        a = W @ x\n        h' = tanh(a + U @ hh + b)\n", 7),
    ("indicator-keep", "    equations: |2+\n        a = W @ x\n        h' = tanh(a + U @ hh + b)\n\n", 7),
    ("indicator-in-list", "    equations:\n      - |1\n          h' = tanh(W @ x + U @ hh + b)\n", 7),
    ("indicator-folded", "    equations:\n      - >1\n          h' = tanh(W @ x\n          + U @ hh + b)\n", 8),
    ("indicator-crlf", "    equations: |2\r\n        a = W @ x\r\n        h' = tanh(a + U @ hh + b)\r\n", 7),
]


@pytest.mark.parametrize("name,eqs,line", RESHAPED_CASES, ids=[c[0] for c in RESHAPED_CASES])
def test_undefined_variable_in_reshaped_yaml_scalar(name, eqs, line):
    text = HEAD + eqs
    _check(_err(text), _at(text, line, "hh"), UNDEF)


def test_syntax_errors_on_a_folded_line():
    text = HEAD + "    equations:\n      - h' = tanh(W @ x\n          + U @ x ** h)\n"
    err = _err(text)
    _check(err, _at(text, 7, "* h"), "unexpected '*'")
    assert err.pos.end_col == err.pos.col + 1  # one character, on that line
    text = HEAD + "    equations:\n      - h' = tanh(W @ x\n          + U @ h\n"
    err = _err(text)  # just past the last character, on the last line
    assert (err.pos.line, err.pos.col) == (7, len(text.splitlines()[6]) + 1), str(err)
    assert "ends too early" in err.message


def test_error_spanning_a_fold_stays_on_its_first_line():
    # `a + h + x` starts on line 6 and ends on line 7: the caret marks its start,
    # and never runs past the line it is on.
    text = HEAD + "    equations:\n      - a = W @ x\n      - h' = tanh(a + h\n          + x)\n"
    err = _err(text)
    assert (err.pos.line, err.pos.col) == _at(text, 7, "a + h"), str(err)
    assert "shape mismatch" in err.message
    assert err.pos.col < err.pos.end_col <= len(text.splitlines()[6]) + 1


def test_unreadable_scalar_falls_back_to_its_start(monkeypatch):
    # Where the scalar's source cannot be read back to its value, the error is
    # put at the start of the scalar: coarse, but never a wrong column.
    import rnnspec.spec.yaml_source as ys

    monkeypatch.setattr(ys, "scalar_points", lambda node, head: None)
    text = HEAD + "    equations:\n      - h' = tanh(W @ x\n          + U @ hh + b)\n"
    err = _err(text)
    assert (err.pos.line, err.pos.col) == _at(text, 6, "h'"), str(err)
    assert UNDEF in err.message
    text = HEAD + "    equations: |2\n        a = W @ x\n        h' = tanh(a + U @ hh + b)\n"
    assert (_err(text).pos.line, _err(text).pos.col) == _at(text, 6, "a = W"), str(_err(text))
