"""Write a Spec back out, as YAML or as .rnn text.

Reading either output gives a Spec equal to the original (tested), so
``rnnspec check --dump`` converts between the formats.
"""
from __future__ import annotations

import json
import re
from typing import Any

import yaml

from rnnspec.spec.blocks_model import BlockSpec
from rnnspec.spec.model import CellDef, LayerSpec, Spec

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def to_data(spec: Spec) -> dict[str, Any]:
    """Plain data with defaults left out (what a person would have written)."""
    return spec.model_dump(exclude_defaults=True, mode="json")


def dump_yaml(spec: Spec) -> str:
    return yaml.safe_dump(to_data(spec), sort_keys=False, default_flow_style=None, width=100)


def _value(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return v if _IDENT.match(v) and v not in ("true", "false", "null") else json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        # commas keep keys that are DSL keywords (input, layer, ...) from being read as statements
        return "{ " + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r}")


def _cell(name: str, c: CellDef) -> str:
    sig = list(c.inputs)
    sig += [f"{s}[{size}]" for s, size in c.state.items()]
    sig += [f"{k}={_value(v)}" for k, v in c.consts.items()]
    head = f"cell {name}(" + ", ".join(sig) + ")"
    if c.output is not None:
        head += f" -> {c.output}"
    lines = [head + " {"]
    for pname, decl in c.params.items():
        text = f"    param {pname}"
        if decl.shape is not None:
            text += "[" + ", ".join(str(d) for d in decl.shape) + "]"
        if decl.init is not None:
            text += f": {decl.init}"
        lines.append(text)
    lines += [f"    {eq}" for eq in c.equations]
    lines.append("}")
    return "\n".join(lines)


def _call(name: str, first: Any, named: dict[str, Any]) -> str:
    args = ([] if first is None else [_value(first)]) + [f"{k}={_value(v)}" for k, v in named.items()]
    return f"{name}(" + ", ".join(args) + ")"


def _block(block: BlockSpec) -> str:
    fields = block.model_dump(exclude_defaults=True, mode="json")
    fields.pop("block", None)
    return "    block " + _call(block.block, None, fields)


def _layer(layer: LayerSpec | BlockSpec) -> str:
    if isinstance(layer, BlockSpec):
        return _block(layer)
    named: dict[str, Any] = {"hidden": layer.hidden}
    if layer.heads != 1:
        named["heads"] = layer.heads
    if not layer.bias:
        named["bias"] = False
    if layer.initial_state != "zeros":
        named["initial_state"] = layer.initial_state
    if layer.initial_init is not None:
        named["initial_init"] = layer.initial_init
    named.update(layer.args)
    text = "    layer " + _call(layer.cell, None, named)
    if layer.bidirectional:
        text += " bidirectional" + (" sum" if layer.merge == "sum" else "")
    elif layer.merge != "concat":
        text += f" bidirectional {layer.merge}"  # merge without bidirectional cannot be said in the DSL
    if layer.depth != 1:
        text += f" depth {layer.depth}"
    if layer.dropout:
        text += f" dropout {layer.dropout!r}"
    return text


def dump_rnn(spec: Spec) -> str:
    parts: list[str] = []
    for inc in spec.include:
        parts.append(f"import {json.dumps(inc)}")
    for name, c in spec.cells.items():
        parts.append(_cell(name, c))
    if spec.model is not None:
        m = spec.model
        name = spec.name or "model"
        lines = [f"network {name if _IDENT.match(name) else json.dumps(name)} {{"]
        if m.input.tokens is not None:
            lines.append("    input " + _call("tokens", m.input.tokens, {"embed": m.input.embed} if m.input.embed else {}))
        else:
            lines.append("    input " + _call("vector", m.input.vector, {}))
        lines += [_layer(layer) for layer in m.layers]
        if m.output is not None:
            o = m.output
            kind, size = ("logits", o.logits) if o.logits is not None else ("linear", o.linear)
            text = "    output " + _call(kind, size, {"activation": o.activation} if o.activation else {})
            lines.append(text + (" every step" if o.every_step else ""))
        if m.batch_first:
            lines.append("    batch_first = true")
        lines.append("}")
        parts.append("\n".join(lines))
    if spec.memory is not None:
        kind = "hopfield" if spec.memory.hopfield is not None else "bam"
        parts.append("memory " + _call(kind, None, getattr(spec.memory, kind).model_dump(exclude_defaults=True, mode="json")))
        if spec.model is None and spec.name is not None:
            parts.insert(0, f"name {spec.name if _IDENT.match(spec.name) else json.dumps(spec.name)}")
    if spec.train is not None:
        data = spec.train.model_dump(exclude_defaults=True, mode="json")
        lines = ["train {"] + [f"    {k}: {_value(v)}" for k, v in data.items()] + ["}"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
