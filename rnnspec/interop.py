"""torch.nn.LSTM / GRU / RNN <-> compiled standard-library networks.

``from_torch`` is the proof that the compiler is right: the library's lstm,
gru and elman cells, written as equations, hold torch's weights unchanged
and compute the same outputs, states and gradients.
"""
from __future__ import annotations

import torch
from torch import nn

from rnnspec.backends.runtime import Network
from rnnspec.compiler import build
from rnnspec.errors import SpecError
from rnnspec.spec.model import InputSpec, LayerSpec, ModelSpec, Spec

# torch parameter stem -> our cell parameter
_NAMES = {"weight_ih": "W", "weight_hh": "U", "bias_ih": "b_i", "bias_hh": "b_h"}


def _cell_for(rnn: nn.RNNBase) -> tuple[str, dict[str, str]]:
    if isinstance(rnn, nn.LSTM):
        if rnn.proj_size:
            raise SpecError("torch.nn.LSTM with proj_size has no standard-library equivalent yet")
        return "lstm", {}
    if isinstance(rnn, nn.GRU):
        return "gru", {}
    if isinstance(rnn, nn.RNN):
        return "elman", {"act": "relu" if rnn.nonlinearity == "relu" else "tanh"}
    raise SpecError(f"from_torch takes torch.nn.LSTM, GRU or RNN, not {type(rnn).__name__}")


def spec_of(rnn: nn.RNNBase) -> Spec:
    """The spec that describes ``rnn``."""
    cell, args = _cell_for(rnn)
    layer = LayerSpec(
        cell=cell,
        hidden=rnn.hidden_size,
        depth=rnn.num_layers,
        dropout=float(rnn.dropout),
        bidirectional=rnn.bidirectional,
        bias=rnn.bias,
        args=args,
    )
    model = ModelSpec(input=InputSpec(vector=rnn.input_size), layers=[layer], batch_first=rnn.batch_first)
    from rnnspec.spec.loader import standard_library

    spec = Spec(name=f"torch-{cell}", model=model)
    spec._library = standard_library()
    from rnnspec.spec.source import SourceMap

    spec._where = SourceMap("<from_torch>")
    return spec


def from_torch(rnn: nn.RNNBase) -> Network:
    """A compiled network holding ``rnn``'s weights (copied), same dtype and device."""
    net = build(spec_of(rnn))
    p = next(rnn.parameters())
    net.to(dtype=p.dtype, device=p.device)
    group = net.rnn.groups[0]
    with torch.no_grad():
        for name, value in rnn.named_parameters():
            stem, layer, reverse = _parse_name(name)
            cell = group.layers[layer][1 if reverse else 0]
            getattr(cell, _NAMES[stem]).copy_(value)
    net.train(rnn.training)
    return net


def to_torch(net: Network) -> nn.RNNBase:
    """The torch.nn module equivalent to ``net`` (weights copied), where one exists."""
    if net.embedding is not None or net.one_hot is not None or net.head is not None or len(net.rnn.groups) != 1:
        raise SpecError("to_torch takes a network of one recurrent layer group with no embedding or output layer")
    group = net.rnn.groups[0]
    spec = group.spec
    ir0 = group.layers[0][0].ir
    if spec.merge != "concat" or spec.heads != 1:
        raise SpecError("to_torch: torch.nn modules only concatenate directions and have no heads")
    if spec.initial_state != "zeros":
        raise SpecError("to_torch: torch.nn modules start from a zero state and have no learned initial state "
                        "(initial_state: learned); pass the state (net's rnn.groups.0.initial, broadcast) as h0")
    kwargs = dict(
        input_size=ir0.inputs[0][1],
        hidden_size=spec.hidden,
        num_layers=spec.depth,
        bias=spec.bias,
        batch_first=net.batch_first,
        dropout=spec.dropout,
        bidirectional=spec.bidirectional,
    )
    if spec.cell == "lstm":
        rnn: nn.RNNBase = nn.LSTM(**kwargs)
    elif spec.cell == "gru":
        rnn = nn.GRU(**kwargs)
    elif spec.cell == "elman":
        rnn = nn.RNN(nonlinearity=str(spec.args.get("act", "tanh")), **kwargs)
    else:
        raise SpecError(f"cell {spec.cell!r} has no torch.nn equivalent (lstm, gru and elman do)")
    p = next(net.parameters())
    rnn.to(dtype=p.dtype, device=p.device)
    with torch.no_grad():
        for name, value in rnn.named_parameters():
            stem, layer, reverse = _parse_name(name)
            value.copy_(getattr(group.layers[layer][1 if reverse else 0], _NAMES[stem]))
    rnn.train(net.training)
    return rnn


def _parse_name(name: str) -> tuple[str, int, bool]:
    """``weight_ih_l1_reverse`` -> ("weight_ih", 1, True)."""
    reverse = name.endswith("_reverse")
    base = name.removesuffix("_reverse")
    stem, _, layer = base.rpartition("_l")
    return stem, int(layer), reverse
