"""Bad input, in both formats: every error is a SpecError at the exact
``line:col`` the user wrote, says what is wrong (with a did-you-mean where a
name is close), and renders the source line with a caret under the spot.
Hostile files (huge, binary, deeply nested, alias bombs, code-running YAML
tags) fail fast with a SpecError, never a RecursionError or a hang.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import rnnspec
import rnnspec.errors
from rnnspec.errors import SpecError
from rnnspec.spec import limits


# ---------------------------------------------------------------- helpers

def spec_error(text: str, fmt: str, filename: str | None = None) -> SpecError:
    with pytest.raises(SpecError) as info:
        rnnspec.loads(text, fmt, filename=filename or f"bad.{fmt}")
    return info.value


def file_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        rnnspec.load(path)
    return info.value


def all_errors(err: SpecError) -> list[SpecError]:
    return [err, *err.also]


def assert_caret(err: SpecError, source_line: str | None = None) -> None:
    """str(err) is ``file:line:col: error: msg`` / the source line (or a window
    of it, when long) / carets under the culprit: the text above the carets is
    the source text from ``col`` to ``end_col``."""
    p = err.pos
    assert p is not None and p.line > 0
    src = source_line or rnnspec.errors.source_line(p)
    assert src is not None
    lines = str(err).splitlines()
    assert lines[0] == f"{p.file}:{p.line}:{p.col}: error: {err.message}"
    gutter = f"{p.line:>5} | "
    assert lines[1].startswith(gutter), str(err)
    shown = lines[1][len(gutter):]
    if len(src) <= 120:
        assert shown == src, str(err)
    caret = lines[2]
    assert caret.strip() and set(caret.strip()) == {"^"}, str(err)
    start = caret.index("^") - len(gutter)
    width = len(caret.strip())
    want_width = max(1, min(p.end_col - p.col, len(src) - p.col + 1)) if p.end_col > p.col else 1
    assert width == want_width, f"caret width {width}, expected {want_width}:\n{err}"
    assert shown[start : start + width] == src[p.col - 1 : p.col - 1 + width], str(err)


def check(err: SpecError, line: int, col: int, *phrases: str) -> None:
    assert err.pos is not None, str(err)
    assert (err.pos.line, err.pos.col) == (line, col), str(err)
    for ph in phrases:
        assert ph in err.message, str(err)
    assert_caret(err)


def col_of(text: str, line: int, needle: str, nth: int = 0) -> int:
    """1-based column of the nth occurrence of needle in 1-based ``line``."""
    src = text.splitlines()[line - 1]
    idx = -1
    for _ in range(nth + 1):
        idx = src.index(needle, idx + 1)
    return idx + 1


def yaml_net(layer: str, extra: str = "") -> str:
    return f"""name: t
{extra}model:
  input: {{vector: 3}}
  layers:
    - {layer}
"""


def rnn_net(layer: str, extra: str = "") -> str:
    return f"""{extra}network t {{
    input vector(3)
    layer {layer}
}}
"""


def yaml_cell(equations: list[str], state: str = "{h: hidden}", params: str = "") -> str:
    eqs = "".join(f"      - {e}\n" for e in equations)
    return f"""name: t
cells:
  cc:
    state: {state}
{params}    equations:
{eqs}model:
  input: {{vector: 3}}
  layers:
    - {{cell: cc, hidden: 8}}
"""


def rnn_cell(equations: list[str], sig: str = "x, h[hidden]", params: str = "") -> str:
    eqs = "".join(f"    {e}\n" for e in equations)
    return f"""cell cc({sig}) {{
{params}{eqs}}}
network t {{
    input vector(3)
    layer cc(hidden=8)
}}
"""


# ---------------------------------------------------------------- unknown keys

def test_yaml_unknown_key_did_you_mean():
    text = yaml_net("{cell: lstm, hidden: 8, depht: 2}")
    err = spec_error(text, "yaml")
    check(err, 5, col_of(text, 5, "depht"), "unknown key 'depht'", "did you mean 'depth'?")


def test_yaml_misspelt_required_key_reports_did_you_mean():
    # `hiden` for `hidden`: the required key is missing AND an unknown key is
    # there; both are reported, the typo with its did-you-mean at the typo.
    text = yaml_net("{cell: lstm, hiden: 8}")
    err = spec_error(text, "yaml")
    typo = [e for e in all_errors(err) if "unknown key 'hiden'" in e.message]
    assert typo, str(err)
    check(typo[0], 5, col_of(text, 5, "hiden"), "did you mean 'hidden'?")
    assert "did you mean 'hidden'?" in str(err)


def test_rnn_unknown_key_did_you_mean():
    text = rnn_net("lstm(hidden=8)") + 'train {\n    data: {task: "copy"}\n    batchh: 3\n}\n'
    err = spec_error(text, "rnn")
    check(err, 7, 5, "unknown key 'batchh'", "did you mean 'batch'?")


def test_yaml_unknown_train_key_did_you_mean():
    text = yaml_net("{cell: lstm, hidden: 8}") + "train:\n  data: {task: copy}\n  batchh: 3\n"
    err = spec_error(text, "yaml")
    check(err, 8, 3, "unknown key 'batchh'", "did you mean 'batch'?")


def test_rnn_misspelt_layer_field_did_you_mean():
    text = rnn_net("lstm(hiden=8)")
    err = spec_error(text, "rnn")
    hits = [e for e in all_errors(err) if "did you mean 'hidden'?" in e.message]
    assert hits, str(err)
    check(hits[0], 3, col_of(text, 3, "hiden"), "hiden")


def test_rnn_misspelt_layer_option_did_you_mean():
    text = rnn_net("lstm(hidden=8, depht=2)")
    err = spec_error(text, "rnn")
    check(err, 3, col_of(text, 3, "depht"), "depht", "did you mean 'depth'?")


# ---------------------------------------------------------------- unknown cell

@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_unknown_cell_did_you_mean(fmt):
    text = yaml_net("{cell: lstn, hidden: 8}") if fmt == "yaml" else rnn_net("lstn(hidden=8)")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "lstn"), "unknown cell 'lstn'", "did you mean 'lstm'?", "known cells:")


def test_unknown_cell_did_you_mean_user_cell():
    text = """name: t
cells:
  mycell:
    state: {h: hidden}
    equations: ["h' = tanh(W @ x + U @ h)"]
model:
  input: {vector: 3}
  layers:
    - {cell: mycel, hidden: 10}
"""
    err = spec_error(text, "yaml")
    check(err, 9, 14, "unknown cell 'mycel'", "did you mean 'mycell'?")


# ---------------------------------------------------------------- wrong types (strict, never coerced)

@pytest.mark.parametrize(
    "fmt,value,shown",
    [
        ("yaml", '"8"', "the string '8'"),
        ("rnn", '"8"', "the string '8'"),
        ("yaml", "true", "True"),
        ("rnn", "true", "True"),
        ("yaml", "8.0", "8.0"),
        ("rnn", "8.0", "8.0"),
        ("yaml", "8.5", "8.5"),
    ],
)
def test_hidden_wrong_type(fmt, value, shown):
    if fmt == "yaml":
        text = yaml_net(f"{{cell: lstm, hidden: {value}}}")
        line = 5
    else:
        text = rnn_net(f"lstm(hidden={value})")
        line = 3
    err = spec_error(text, fmt)
    col = col_of(text, line, value) + (1 if value.startswith('"') and fmt == "yaml" else 0)
    check(err, line, col, "'model.layers[0].hidden'", "expected an integer")
    assert f"got {shown}".lower() in err.message.lower(), str(err)  # True or true: either spelling


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_input_size_string_is_not_coerced(fmt):
    if fmt == "yaml":
        text = 'name: t\nmodel:\n  input: {vector: "3"}\n  layers: [{cell: lstm, hidden: 8}]\n'
        line, col = 3, col_of(text, 3, '"3"') + 1
    else:
        text = 'network t {\n    input vector("3")\n    layer lstm(hidden=8)\n}\n'
        line, col = 2, col_of(text, 2, '"3"')
    err = spec_error(text, fmt)
    check(err, line, col, "'model.input.vector'", "expected an integer")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_bool_field_given_an_int(fmt):
    text = yaml_net("{cell: lstm, hidden: 8, bias: 1}") if fmt == "yaml" else rnn_net("lstm(hidden=8, bias=1)")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "1}" if fmt == "yaml" else "1)"), "'model.layers[0].bias'", "expected true or false")


# ---------------------------------------------------------------- missing keys

@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_missing_required_key(fmt):
    if fmt == "yaml":
        text = "name: t\nmodel:\n  input: {vector: 3}\n  layers:\n    - cell: lstm\n      depth: 2\n"
        line, col = 5, 7
    else:
        text = rnn_net("lstm(depth=2)")
        line, col = 3, 5
    err = spec_error(text, fmt)
    check(err, line, col, "'model.layers[0]' is missing the required key 'hidden'")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_missing_input(fmt):
    if fmt == "yaml":
        text = "name: t\nmodel:\n  layers: [{cell: lstm, hidden: 8}]\n"
        line, col = 2, 1
    else:
        text = "network t {\n    layer lstm(hidden=8)\n}\n"
        line, col = 1, 1
    err = spec_error(text, fmt)
    check(err, line, col, "'model' is missing the required key 'input'")


# ---------------------------------------------------------------- syntax

def test_yaml_syntax_error_unclosed_flow_mapping():
    text = "name: t\nmodel:\n  input: {vector: 3\n  layers: [{cell: lstm, hidden: 8}]\n"
    err = spec_error(text, "yaml")
    check(err, 4, 9, "invalid YAML", "expected ',' or '}'")


def test_yaml_syntax_error_bad_indentation():
    text = "name: t\nmodel:\n  input: {vector: 3}\n   layers: [{cell: lstm, hidden: 8}]\n"
    err = spec_error(text, "yaml")
    check(err, 4, 4, "invalid YAML")


def test_rnn_syntax_error_names_expected_tokens():
    text = rnn_net("lstm(hidden 8)")
    err = spec_error(text, "rnn")
    check(err, 3, col_of(text, 3, "8"), "unexpected '8'", "expected", "'='", "')'")


def test_rnn_syntax_error_statement_outside_network():
    text = "network t {\n    input vector(3)\n    layer lstm(hidden=8) }\n    output linear(2)\n}\n"
    err = spec_error(text, "rnn")
    check(err, 4, 5, "unexpected 'output'", "'cell'", "'network'", "'train'")


def test_rnn_unexpected_character():
    text = rnn_net("lstm(hidden=8) $")
    err = spec_error(text, "rnn")
    check(err, 3, col_of(text, 3, "$"), "unexpected character '$'")


def test_rnn_float_where_int_token_expected():
    text = rnn_net("lstm(hidden=8) depth 2.0")
    err = spec_error(text, "rnn")
    check(err, 3, col_of(text, 3, ".0"), "unexpected '.0'")


def test_rnn_ends_too_early():
    text = "network t {\n    input vector(3)\n    layer lstm(hidden=8)\n"
    err = spec_error(text, "rnn")
    assert (err.pos.line, err.pos.col) == (3, 25)  # just after the last thing written
    assert "ends too early" in err.message and "expected" in err.message


def test_equation_syntax_error_in_yaml_string():
    text = yaml_cell(["h' = tanh(W @ x + + U @ h)"])
    err = spec_error(text, "yaml")
    check(err, 6, col_of(text, 6, "+ U") , "unexpected '+' in equation", "expected")


# ---------------------------------------------------------------- duplicates

def test_yaml_duplicate_top_level_key():
    text = yaml_net("{cell: lstm, hidden: 8}") + "name: u\n"
    err = spec_error(text, "yaml")
    check(err, 6, 1, "duplicate key 'name'", "first given at line 1")


def test_yaml_duplicate_nested_key():
    text = "name: t\nmodel:\n  input: {vector: 3}\n  layers:\n    - cell: lstm\n      hidden: 8\n      hidden: 9\n"
    err = spec_error(text, "yaml")
    check(err, 7, 7, "duplicate key 'hidden'", "line 6")


def test_rnn_duplicate_argument():
    text = rnn_net("lstm(hidden=8, hidden=9)")
    err = spec_error(text, "rnn")
    check(err, 3, col_of(text, 3, "hidden", nth=1), "'hidden' is given twice")


# ---------------------------------------------------------------- equations

@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_undefined_variable_typo(fmt):
    eq = "h' = tanh(W @ x + U @ hh + b)"
    text = yaml_cell([eq]) if fmt == "yaml" else rnn_cell([eq])
    line = 6 if fmt == "yaml" else 2
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "hh"), "undefined variable 'hh'", "did you mean 'h'?")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_shape_mismatch_in_sum(fmt):
    eq = "h' = tanh(W @ x + h + x)"  # hidden-sized h plus input-sized x
    text = yaml_cell([eq]) if fmt == "yaml" else rnn_cell([eq])
    line = 6 if fmt == "yaml" else 2
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "W @ x"), "shape mismatch", "'+'", "[hidden=8]", "[input=3]")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_state_never_updated(fmt):
    eq = "h' = tanh(W @ x + U @ h + b)"
    if fmt == "yaml":
        text = yaml_cell([eq], state="{h: hidden, m: hidden}")
        line, col = 3, 3
    else:
        text = rnn_cell([eq], sig="x, h[hidden], m[hidden]")
        line, col = 1, 6
    err = spec_error(text, fmt)
    check(err, line, col, "state 'm' is never updated", "m' = ")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_declared_param_used_as_matrix_and_vector(fmt):
    eq = "h' = tanh(W @ x + U @ h + U * h)"
    if fmt == "yaml":
        text = yaml_cell([eq], params="    params:\n      U: orthogonal\n")
        line = 8
    else:
        text = rnn_cell([eq], params="    param U: orthogonal\n")
        line = 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "U", nth=1), "parameter 'U' is used with two shapes", "matrix", "vector")


def test_bias_param_used_as_matrix_and_vector():
    text = rnn_cell(["h' = tanh(W @ x + b_u @ h + b_u)"])
    err = spec_error(text, "rnn")
    check(err, 2, col_of(text, 2, "b_u", nth=1), "parameter 'b_u' is used with two shapes")


@pytest.mark.parametrize("eq", ["h' = tanh(W @ x + U @ h + U * h)", "h' = tanh(W @ x + U * h + U @ h)"])
def test_undeclared_param_used_as_matrix_and_vector(eq):
    text = rnn_cell([eq])
    err = spec_error(text, "rnn")
    assert "used with two shapes" in err.message, str(err)
    assert err.pos.line == 2


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_unknown_function_did_you_mean(fmt):
    eq = "h' = tanhh(W @ x + U @ h)"
    text = yaml_cell([eq]) if fmt == "yaml" else rnn_cell([eq])
    line = 6 if fmt == "yaml" else 2
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "tanhh"), "unknown function 'tanhh'", "did you mean 'tanh'?")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_split_wrong_number_of_targets(fmt):
    eqs = ["a, b2 = split(W @ x, 3)", "h' = tanh(a + U @ h)"]
    text = yaml_cell(eqs) if fmt == "yaml" else rnn_cell(eqs)
    line = 6 if fmt == "yaml" else 2
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "a, b2"), "split into 3 parts but 2 name(s)")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_unknown_initializer_message(fmt):
    eq = "h' = tanh(W @ x + U @ h)"
    if fmt == "yaml":
        text = yaml_cell([eq], params="    params:\n      U: orthogonl\n")
    else:
        text = rnn_cell([eq], params="    param U: orthogonl\n")
    err = spec_error(text, fmt)
    assert "unknown initializer 'orthogonl'" in err.message
    assert "did you mean 'orthogonal'?" in err.message
    assert_caret(err)


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_unknown_initializer_position(fmt):
    eq = "h' = tanh(W @ x + U @ h)"
    if fmt == "yaml":
        text = yaml_cell([eq], params="    params:\n      U: orthogonl\n")
        line = 6
    else:
        text = rnn_cell([eq], params="    param U: orthogonl\n")
        line = 2
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "orthogonl"), "unknown initializer 'orthogonl'")


def test_initializer_syntax_error_in_yaml():
    text = yaml_cell(["h' = tanh(W @ x + U @ h)"], params='    params:\n      U: "orthogonal("\n')
    err = spec_error(text, "yaml")
    check(err, 6, col_of(text, 6, '("') + 1, "initializer ends too early")


# ---------------------------------------------------------------- layer arguments

@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_layer_argument_the_cell_does_not_have(fmt):
    if fmt == "yaml":
        text = "name: t\nmodel:\n  input: {vector: 3}\n  layers:\n    - cell: elman\n      hidden: 10\n      args: {actt: relu}\n"
        line = 7
    else:
        text = rnn_net("elman(hidden=10, actt=relu)")
        line = 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "actt"), "cell 'elman' has no argument 'actt'", "did you mean 'act'?")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_argument_for_cell_without_arguments(fmt):
    text = yaml_net("{cell: lstm, hidden: 8, args: {act: relu}}") if fmt == "yaml" else rnn_net("lstm(hidden=8, act=relu)")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "act"), "cell 'lstm' has no argument 'act'", "its arguments: none")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_missing_required_size(fmt):
    text = yaml_net("{cell: jordan, hidden: 10}") if fmt == "yaml" else rnn_net("jordan(hidden=10)")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "jordan"), "cell 'jordan' needs the size 'out'", "out=")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_heads_must_divide_hidden(fmt):
    text = yaml_net("{cell: gru, hidden: 10, heads: 4}") if fmt == "yaml" else rnn_net("gru(hidden=10, heads=4)")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "4"), "heads=4 does not divide state 'h' of size 10")


@pytest.mark.parametrize("fmt,form", [("yaml", "key"), ("rnn", "key"), ("rnn", "flag")])
def test_invalid_literal_did_you_mean(fmt, form):
    if fmt == "yaml":
        text = yaml_net("{cell: lstm, hidden: 8, bidirectional: true, merge: concatt}")
        line = 5
    elif form == "key":
        text = rnn_net("lstm(hidden=8, merge=concatt) bidirectional")
        line = 3
    else:
        text = rnn_net("lstm(hidden=8) bidirectional concatt")
        line = 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, "concatt"), "'model.layers[0].merge'", "got the string 'concatt'",
          "did you mean 'concat'?", "'concat' or 'sum'")


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_hidden_must_be_positive(fmt, value):
    text = yaml_net(f"{{cell: lstm, hidden: {value}}}") if fmt == "yaml" else rnn_net(f"lstm(hidden={value})")
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, value), "'model.layers[0].hidden'", "greater than 0", f"got {value}")


@pytest.mark.parametrize(
    "fmt,layer,value",
    [
        ("yaml", "{cell: lstm, hidden: 4, depth: 2, dropout: 1.0}", "1.0"),
        ("yaml", "{cell: lstm, hidden: 4, depth: 2, dropout: 1.5}", "1.5"),
        ("rnn", "lstm(hidden=4) depth 2 dropout 1.0", "1.0"),
        ("rnn", "lstm(hidden=4, dropout=1.5) depth 2", "1.5"),
    ],
)
def test_dropout_must_be_below_one(fmt, layer, value):
    text = yaml_net(layer) if fmt == "yaml" else rnn_net(layer)
    line = 5 if fmt == "yaml" else 3
    err = spec_error(text, fmt)
    check(err, line, col_of(text, line, value), "'model.layers[0].dropout'", "less than 1")


# ---------------------------------------------------------------- includes

@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_include_of_missing_file(tmp_path, fmt):
    if fmt == "yaml":
        text = "name: t\ninclude: [nope.rnn]\n" + yaml_net("{cell: gru, hidden: 4}").split("\n", 1)[1]
        line = 2
    else:
        text = rnn_net("gru(hidden=4)", extra='import "nope.rnn"\n')
        line = 1
    f = tmp_path / f"main.{fmt}"
    f.write_text(text)
    err = file_error(f)
    assert err.pos.file == str(f)
    # the DSL points at the string's opening quote, YAML at the plain scalar
    check(err, line, col_of(text, line, "nope.rnn") - (1 if fmt == "rnn" else 0), "in file included here", "no such file")
    assert any(str(tmp_path / "nope.rnn") in (e.pos.file if e.pos else "") for e in err.also), str(err)


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_include_cycle(tmp_path, fmt):
    cell_b = "cell cb(x, h[hidden]) {\n    h' = tanh(W @ x + U @ h)\n}\n"
    if fmt == "yaml":
        a = tmp_path / "a.yaml"
        a.write_text("name: a\ninclude:\n  - b.rnn\n")
        a_line, a_col = 3, 5
    else:
        a = tmp_path / "a.rnn"
        a.write_text('# a\nimport "b.rnn"\n')
        a_line, a_col = 2, 8
    b = tmp_path / "b.rnn"
    b.write_text(f'\n\nimport "{a.name}"\n' + cell_b)
    err = file_error(a)
    assert err.pos.file == str(a)
    check(err, a_line, a_col, "include cycle")
    inner = [e for e in err.also if e.pos and e.pos.file == str(b)]
    assert inner, str(err)
    check(inner[0], 3, 8, "include cycle")


def test_self_include(tmp_path):
    s = tmp_path / "s.rnn"
    s.write_text('import "s.rnn"\n')
    check(file_error(s), 1, 8, "include cycle", "'s.rnn'")


# ---------------------------------------------------------------- hostile files

def _fast(fn, limit=1.0):
    t0 = time.perf_counter()
    with pytest.raises(SpecError) as info:
        fn()
    assert time.perf_counter() - t0 < limit, f"took {time.perf_counter() - t0:.2f}s"
    return info.value


def _fast_ok(fn, limit=1.0):
    t0 = time.perf_counter()
    result = fn()
    assert time.perf_counter() - t0 < limit, f"took {time.perf_counter() - t0:.2f}s"
    return result


@pytest.mark.parametrize("suffix", [".yaml", ".rnn"])
def test_huge_file_is_refused_before_reading(tmp_path, suffix):
    f = tmp_path / f"big{suffix}"
    f.write_bytes(b"# " + b"x" * (limits.MAX_FILE_BYTES + 10) + b"\n")
    err = _fast(lambda: rnnspec.load(f))
    assert "a spec may be at most" in err.message and str(limits.MAX_FILE_BYTES) in err.message
    assert err.pos.file == str(f)


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_huge_text_is_refused(fmt):
    text = "# " + "x" * (limits.MAX_FILE_BYTES + 10) + "\n"
    err = _fast(lambda: rnnspec.loads(text, fmt))
    assert "a spec may be at most" in err.message


@pytest.mark.parametrize("suffix", [".yaml", ".rnn"])
def test_binary_file(tmp_path, suffix):
    f = tmp_path / f"bin{suffix}"
    f.write_bytes(b"network t {\x00\x01\x02\xff}" * 10)
    err = _fast(lambda: rnnspec.load(f))
    assert "binary file" in err.message


def test_nul_in_text():
    err = _fast(lambda: rnnspec.loads("name: t\x00\n", "yaml"))
    assert "binary file" in err.message


def test_not_utf8_file(tmp_path):
    f = tmp_path / "latin.yaml"
    f.write_bytes(b"name: caf\xe9\n")
    err = _fast(lambda: rnnspec.load(f))
    assert "not UTF-8" in err.message


def test_unknown_file_type(tmp_path):
    f = tmp_path / "spec.json"
    f.write_text("{}")
    err = _fast(lambda: rnnspec.load(f))
    assert "unknown spec file type '.json'" in err.message


def test_deep_yaml_lists_fail_fast():
    text = "a: " + "[" * 10000 + "]" * 10000 + "\n"
    err = _fast(lambda: rnnspec.loads(text, "yaml", filename="deep.yaml"))
    # root mapping is level 1, the first '[' (col 4) level 2: level MAX_DEPTH+1 is the culprit
    check(err, 1, 4 + limits.MAX_DEPTH - 1, f"nesting deeper than {limits.MAX_DEPTH}")


def test_deep_yaml_mappings_fail_fast():
    text = "a: " + "{a: " * 10000 + "1" + "}" * 10000 + "\n"
    err = _fast(lambda: rnnspec.loads(text, "yaml"))
    assert f"nesting deeper than {limits.MAX_DEPTH}" in err.message
    assert err.pos.line == 1


def test_deep_yaml_block_nesting_fails_fast():
    text = "".join("  " * i + "-\n" for i in range(200))
    err = _fast(lambda: rnnspec.loads(text, "yaml"))
    assert f"nesting deeper than {limits.MAX_DEPTH}" in err.message
    assert err.pos.line == limits.MAX_DEPTH + 1


@pytest.mark.parametrize(
    "text",
    [
        "cell c(x, h[hidden]) { h' = " + "tanh(" * 10000 + "h" + ")" * 10000 + " }",
        "train { a: " + "{ b: " * 10000 + "1" + " }" * 10000 + " }",
        "train { a: " + "[" * 10000 + "]" * 10000 + " }",
    ],
    ids=["eq-calls", "braces", "lists"],
)
def test_deep_dsl_fails_fast(text):
    err = _fast(lambda: rnnspec.loads(text, "rnn"))
    assert f"nested deeper than {limits.MAX_EXPR_DEPTH} levels" in err.message


def test_redundant_parentheses_are_harmless_and_fast():
    # Parentheses add no parse-tree depth: 10000 of them around one name is a valid, flat equation.
    text = "cell c(x, h[hidden]) { h' = tanh(W @ x + " + "(" * 10000 + "h" + ")" * 10000 + ") }"
    spec = _fast_ok(lambda: rnnspec.loads(text, "rnn"))
    assert spec.cells["c"].equations == ["h' = tanh(W @ x + h)"]


def test_deep_dsl_error_points_into_the_deep_expression():
    text = "# a spec\n\ncell c(x, h[hidden]) {\n    h' = " + "tanh(" * 1000 + "h" + ")" * 1000 + "\n}\n"
    err = _fast(lambda: rnnspec.loads(text, "rnn"))
    assert err.pos.line == 4 and err.pos.col > col_of(text, 4, "tanh")
    assert f"nested deeper than {limits.MAX_EXPR_DEPTH}" in err.message


def test_brackets_in_comments_do_not_count_as_nesting():
    text = "# " + "(" * 100 + "\n" + rnn_net("lstm(hidden=4)")
    spec = rnnspec.loads(text, "rnn")
    assert spec.model.layers[0].hidden == 4


def test_comment_cannot_disable_the_nesting_limit():
    text = "# " + ")" * 10000 + "\ncell c(x, h[hidden]) {\n h' = " + "tanh(" * 3000 + "h" + ")" * 3000 + "\n}\n"
    _fast(lambda: rnnspec.loads(text, "rnn"))


@pytest.mark.parametrize("expr", ["-" * 5000 + "h", " + ".join(["h"] * 5000)], ids=["neg-chain", "long-sum"])
def test_deep_dsl_expression_without_brackets_fails_fast(expr):
    text = "cell c(x, h[hidden]) {\n h' = " + expr + "\n}\n"
    _fast(lambda: rnnspec.loads(text, "rnn"))


@pytest.mark.parametrize("expr", ["tanh(" * 10000 + "h" + ")" * 10000, "-" * 10000 + "h"], ids=["calls", "neg"])
def test_deep_yaml_equation_fails_fast(expr):
    text = f"cells:\n  c:\n    state: {{h: hidden}}\n    equations:\n      - \"h' = {expr}\"\n"
    _fast(lambda: rnnspec.loads(text, "yaml"))


def test_yaml_alias_bomb_fails_fast():
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(rows) + "\n"
    err = _fast(lambda: rnnspec.loads(text, "yaml"), limit=2.0)
    assert "alias" in err.message and str(limits.MAX_NODES) in err.message
    assert err.pos.line >= 1


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object:argparse.Namespace {{a: 1}}",
        "!custom thing",
        "!!binary aGVsbG8=",
        "!!set {{a, b}}",
    ],
)
def test_yaml_tags_are_rejected(tmp_path, value):
    marker = tmp_path / "ran"
    text = "name: t\nmodel: " + value.format(marker=marker) + "\n"
    err = _fast(lambda: rnnspec.loads(text, "yaml"))
    check(err, 2, 8, "is not allowed in a spec", "never code")
    assert not marker.exists()


def test_yaml_merge_keys_are_rejected():
    text = "base: &b {cell: lstm}\nname: t\nmodel:\n  input: {vector: 3}\n  layers:\n    - <<: *b\n      hidden: 4\n"
    err = spec_error(text, "yaml")
    check(err, 6, 7, "merge keys")


def test_yaml_top_level_must_be_a_mapping():
    err = spec_error("- a\n- b\n", "yaml")
    assert "mapping" in err.message and (err.pos.line, err.pos.col) == (1, 1)


def test_empty_yaml():
    err = spec_error("", "yaml")
    assert "empty spec" in err.message


def test_caret_width_in_a_long_line():
    text = rnn_net("lstm(hidden=8, " + " " * 200 + "actt=relu)")
    err = spec_error(text, "rnn")
    assert (err.pos.col, err.pos.end_col) == (col_of(text, 3, "actt"), col_of(text, 3, "actt") + 4)
    assert_caret(err)


@pytest.mark.parametrize("decl, culprit, words", [
    ('"[hidden, , hidden]: zeros"', ", hidden]", "shape"),
    ('"[hidden, hidden]:   uniform(-0.1, 0.1"', None, "initializer ends too early"),
    ("'[hidden, hidden]: uniform(-0.1 0.1)'", "0.1)", "initializer"),
])
def test_param_shape_and_initializer_strings_are_located_inside(decl, culprit, words):
    """A shape and an initializer written in one YAML string: the error
    points at the character inside the string, not at its start."""
    text = yaml_cell(["h' = tanh(W @ x + U @ h)"], params=f"    params:\n      U: {decl}\n")
    err = spec_error(text, "yaml")
    line = text.splitlines()[5]
    col = line.rindex(culprit) + 1 if culprit else len(line.rstrip()[:-1]) + 1
    check(err, 6, col, words)
