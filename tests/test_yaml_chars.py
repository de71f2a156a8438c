"""rnnspec.spec.yaml_chars reads a YAML scalar's source back to its value and
says where each character was written.  Checked on random strings that PyYAML
itself writes in every scalar style (plain, quoted, literal, folded; narrow
widths force folding; CR LF and CR line ends; nested under a key): every map
must be built (no fallback) and every visible character must sit at its point
in the file (an escaped one at its backslash)."""
from __future__ import annotations

import random
import re

import yaml

from rnnspec.spec.yaml_source import load_yaml

PIECES = ["a", "bb", "h'", " ", " ", "  ", "=", "@", "+", "(", ")", "#", ":", "-", ",", "'", '"', "\\", "\t",
          "\n", "\n\n", "é", "\u2028", "\x85", "\r\n", "x"]
# how PyYAML's Reader ends a line
LINE_END = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def _value(data, path):
    for k in path:
        data = data[k]
    return data


def test_every_character_of_every_style_maps_to_its_source():
    rng = random.Random(0)
    checked = {}
    for _ in range(400):
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 30)))
        style = rng.choice([None, "'", '"', "|", ">"])
        data = {"c": {"equations": [value], "k": value}}
        if rng.random() < 0.3:
            data = {"top": data}
        doc = yaml.dump(data, default_style=style, width=rng.choice([10, 20, 80]),
                        allow_unicode=rng.random() < 0.5, indent=rng.choice([2, 3, 4]))
        doc = doc.replace("\n", rng.choice(["\n", "\r\n", "\r"]))
        raw = load_yaml(doc, "f.yaml")
        lines = LINE_END.split(doc)
        for path in list(raw.where.texts):
            got = _value(raw.data, path)
            chars = raw.where.text(path)
            assert len(chars.points) == len(got), (doc, path)  # no fallback
            for i, ch in enumerate(got):
                if ch.isspace():
                    continue
                line, col = chars.points[i]
                src = lines[line - 1][col - 1]
                assert src == ch or src == "\\", (doc, path, i, ch, (line, col))
            checked[style] = checked.get(style, 0) + 1
    assert all(checked.get(s, 0) > 100 for s in (None, "'", '"', "|", ">")), checked


def test_anchor_and_tag_before_the_scalar():
    doc = "a: &x h' = tanh(a\n   + U @ hh)\nb: *x\nc: !!str p\n  hh\n"
    raw = load_yaml(doc, "f.yaml")
    for path, line, col in ((("a",), 2, 10), (("b",), 2, 10), (("c",), 5, 3)):
        chars = raw.where.text(path)
        assert chars.locate(_value(raw.data, path).index("hh")) == (line, col)
