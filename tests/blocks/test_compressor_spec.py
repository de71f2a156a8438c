"""The history compressor (``block: compressor``, Schmidhuber 1992) as a spec
layer: both formats, located errors, the surprise gate, state, padding, the
auxiliary prediction loss, and the standalone module."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rnnspec
from rnnspec.blocks.compressor import Compressor, CompressorState
from rnnspec.blocks.layer import MemoryLayer
from rnnspec.codegen.standalone import generate
from rnnspec.spec.dump import dump_rnn, dump_yaml
from rnnspec.train.auxiliary import take_aux_loss

RNN = """
cell mgu(x, h[hidden]) {
    f  = sigmoid(W_f @ x + U_f @ h + b_f)
    n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
    h' = (1 - f) * h + f * n
}
network hc {
  input tokens(6)
  block compressor(automatizer=gru, chunker=mgu, hidden=8, chunker_hidden=5, threshold=0.4, out=7)
  output logits(2)
}
"""

YAML = """
name: hc
cells:
  mgu:
    inputs: [x]
    state: {h: hidden}
    equations: |
      f  = sigmoid(W_f @ x + U_f @ h + b_f)
      n  = tanh(W_n @ x + U_n @ (f * h) + b_n)
      h' = (1 - f) * h + f * n
model:
  input: {tokens: 6}
  layers:
    - {block: compressor, automatizer: gru, chunker: mgu, hidden: 8, chunker_hidden: 5, threshold: 0.4, out: 7}
  output: {logits: 2}
"""


def _layer(net: torch.nn.Module) -> MemoryLayer:
    return next(m for m in net.modules() if isinstance(m, MemoryLayer))


def test_yaml_and_rnn_give_the_same_spec_and_round_trip() -> None:
    spec = rnnspec.loads(RNN, "rnn")
    assert rnnspec.loads(YAML, "yaml") == spec
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    block = spec.model.layers[0]
    assert (block.automatizer, block.chunker, block.chunker_hidden, block.threshold) == ("gru", "mgu", 5, 0.4)


def _error(text: str, fmt: str) -> rnnspec.SpecError:
    with pytest.raises(rnnspec.SpecError) as e:
        rnnspec.loads(text, fmt, filename=f"bad.{fmt}")
    return e.value


def _net_rnn(block: str) -> str:
    return f"network m {{\n  input tokens(5)\n  block {block}\n}}\n"


def _net_yaml(block: str) -> str:
    return f"name: m\nmodel:\n  input: {{tokens: 5}}\n  layers:\n    - {block}\n"


def test_unknown_cells_are_located_with_a_suggestion() -> None:
    text = _net_rnn("compressor(automatizer=lstn, hidden=4)")
    e = _error(text, "rnn")
    assert "unknown automatizer cell 'lstn'" in e.message and "did you mean 'lstm'" in e.message
    assert (e.pos.line, e.pos.col) == (3, text.splitlines()[2].index("lstn") + 1)
    text = _net_yaml("{block: compressor, chunker: elmann, hidden: 4}")
    e = _error(text, "yaml")
    assert "unknown chunker cell 'elmann'" in e.message and "did you mean 'elman'" in e.message
    assert (e.pos.line, e.pos.col) == (5, text.splitlines()[4].index("elmann") + 1)


@pytest.mark.parametrize(
    "fields, message",
    [
        ("threshold: 0", "greater than 0"),
        ("threshold: 1.5", "threshold 1.5 is a probability with surprise: symbol; it must be <= 1"),
        ("surprise: sometimes", "symbol"),
        ("slots: 8", "'slots' do(es) not apply to a compressor block"),
        ("chunker_hidden: 0", "greater than 0"),
    ],
)
def test_bad_fields_are_located(fields: str, message: str) -> None:
    e = _error(_net_yaml(f"{{block: compressor, hidden: 4, {fields}}}"), "yaml")
    assert message in e.message
    assert e.pos is not None and e.pos.line == 5 and e.pos.file == "bad.yaml"


def test_compressor_fields_do_not_apply_to_other_blocks() -> None:
    e = _error(_net_rnn("ntm(hidden=4, chunker=lstm)"), "rnn")
    assert "'chunker' do(es) not apply to a ntm block" in e.message and e.pos.line == 3


def test_an_error_surprise_threshold_may_exceed_one() -> None:
    spec = rnnspec.loads(_net_yaml("{block: compressor, hidden: 4, surprise: error, threshold: 2.5}"), "yaml")
    assert spec.model.layers[0].threshold == 2.5


def _steering(comp: Compressor, favoured: int) -> None:
    """Make the automatizer always predict symbol ``favoured`` with p ~ 1."""
    with torch.no_grad():
        comp.predict.weight.zero_()
        comp.predict.bias.fill_(-20.0)
        comp.predict.bias[favoured] = 20.0


def test_the_chunker_steps_only_on_unpredicted_inputs() -> None:
    torch.manual_seed(0)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    comp = _layer(net).block
    _steering(comp, favoured=3)
    ids = torch.tensor([[1, 3, 3, 0, 3, 3, 3, 5, 3],   # surprises at t = 0, 3, 7
                        [3, 3, 3, 3, 3, 3, 3, 3, 3],   # only the first input (no prediction yet)
                        [2, 4, 1, 3, 3, 2, 3, 3, 3]])  # t = 0, 1, 2, 5
    x = F.one_hot(ids, 6).double().transpose(0, 1)  # [T, B, F]
    state = comp.initial_state(3, x.device, x.dtype)
    steps = torch.zeros(3)
    for t in range(x.shape[0]):
        y, new = comp.step(x[t], state)
        moved = (new.chunker[0] != state.chunker[0]).any(-1)
        expected = (ids[:, t] != 3) | (t == 0)
        assert torch.equal(moved, expected), t  # the chunker state changes exactly on the unexpected inputs
        assert torch.equal(new.chunker_out != state.chunker_out, expected.unsqueeze(-1).expand_as(new.chunker_out))
        steps += expected
        state = new
    assert state.ticks.tolist() == steps.tolist() == [3.0, 1.0, 4.0]


def test_error_surprise_for_real_valued_inputs() -> None:
    torch.manual_seed(0)
    spec = rnnspec.loads("network m {\n  input vector(3)\n  block compressor(hidden=6, surprise=error, threshold=0.1)\n}\n", "rnn")
    layer = _layer(rnnspec.compile(spec))
    with torch.no_grad():
        layer.block.predict.weight.zero_()
        layer.block.predict.bias.copy_(torch.tensor([0.5, -0.5, 1.0]))
    near = torch.tensor([0.5, -0.4, 1.0])  # mean squared error 0.0033: predicted
    far = torch.tensor([0.0, 0.0, 0.0])    # 0.5: unexpected
    x = torch.stack([torch.stack([far, near, far]), torch.stack([near, near, near])])  # [B=2, T=3, 3]
    _, state = layer(x.transpose(0, 1), None, None)
    assert state.ticks.tolist() == [2.0, 1.0]  # row 0: t = 0 and the far input at t = 2; row 1: t = 0


def test_chunked_run_with_state_equals_whole_run_and_padding_stays_out() -> None:
    torch.manual_seed(1)
    net = rnnspec.compile(rnnspec.loads(RNN.replace("output logits(2)", "output linear(2) every step"), "rnn")).double()
    _steering(_layer(net).block, favoured=2)
    ids = torch.randint(0, 6, (10, 3))
    ids[ids % 2 == 1] = 2  # a mix of predicted and unexpected inputs
    whole, state = net(ids)
    assert isinstance(state, CompressorState) and state.ticks.shape == (3,)
    first, mid = net(ids[:4])
    second, end = net(ids[4:], mid)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    torch.testing.assert_close(end.ticks, state.ticks)
    lengths = torch.tensor([10, 4, 7])
    y, _ = net(ids, lengths=lengths)
    for b in range(3):
        n = int(lengths[b])
        alone, st = net(ids[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b : b + 1], alone)


def test_aux_loss_is_the_automatizers_next_symbol_cross_entropy() -> None:
    torch.manual_seed(2)
    net = rnnspec.compile(rnnspec.loads(RNN, "rnn")).double()
    layer = _layer(net)
    ids = torch.randint(0, 6, (7, 2))
    lengths = torch.tensor([7, 4])
    net(ids, lengths=lengths)
    aux = take_aux_loss(net)
    assert aux is not None and layer.aux_loss is None  # taking clears it
    # by hand: the prediction made at t-1 scored against the symbol at t, t = 1..len-1
    comp = layer.block
    x = F.one_hot(ids, 6).double()
    state = comp.initial_state(2, x.device, x.dtype)
    terms = []
    for t in range(7):
        if t > 0:
            terms.append(F.cross_entropy(state.prediction, ids[t], reduction="none"))
        _, state = comp.step(x[t], state)
    nll = torch.stack(terms)  # [6, B]
    want = (nll[:, 0].sum() + nll[:3, 1].sum()) / (6 + 3)
    torch.testing.assert_close(aux, want)
    aux.backward()
    assert comp.predict.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in comp.automatizer.parameters())


def test_trainer_adds_and_logs_the_aux_loss(tmp_path: Path) -> None:
    from rnnspec.train.loop import train

    text = (_net_yaml("{block: compressor, automatizer: elman, chunker: elman, hidden: 6}")
            + "  output: {logits: 2}\ntrain:\n  data: {task: history_compression, params: {length: 4}, size: 64}\n"
            "  objective: classify\n  batch: 16\n  max_steps: 4\n  log_every: 2\n")
    spec = rnnspec.loads(text.replace("tokens: 5", "tokens: 6"), "yaml")
    torch.manual_seed(spec.train.seed)
    before = rnnspec.compile(spec)
    r = train(spec, run_dir=tmp_path / "run", log=lambda s: None, threads=1)
    rows = [h for h in r.history if h.get("split") == "train"]
    assert [h["step"] for h in rows] == [2, 4] and all(h["aux_loss"] > 0 for h in rows)
    from rnnspec.train.inference import load_run

    after = load_run(tmp_path / "run", "last").net
    # the next-input predictor's only gradient is the auxiliary loss: it moved, so that loss was trained
    assert not torch.equal(_layer(after).block.predict.weight, _layer(before).block.predict.weight)


def test_generated_module_matches_in_process(tmp_path: Path, run_standalone) -> None:  # noqa: ANN001
    spec = rnnspec.loads(RNN, "rnn")
    (tmp_path / "hc_model.py").write_text(generate(spec, "hc.rnn"))
    torch.manual_seed(0)
    net = rnnspec.compile(spec)
    _steering(_layer(net).block, favoured=2)
    ids = torch.randint(0, 6, (9, 3))
    ids[ids % 2 == 0] = 2
    expected, state = net(ids)
    y, ticks = run_standalone("hc_model", net.state_dict(), ids, "y, st = m(inp)\nout = (y, st.ticks)")
    torch.testing.assert_close(y, expected.detach(), rtol=0, atol=0)
    assert torch.equal(ticks, state.ticks) and 1 < float(ticks.mean()) < 9
