"""``optimizer: {ridge: {alpha, washout}}``: the closed-form read-out of an
echo-state network (rnnspec.train.ridge), its checks, its run directory, and
gradient training of a spec with a (frozen) reservoir."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rnnspec
from rnnspec.train.checkpoint import CheckpointError
from rnnspec.train.inference import load_run, predict
from rnnspec.train.loop import train
from rnnspec.train.tasks import load_data

ESN = """\
name: esn
model:
  input: {vector: 1}
  layers:
    - {block: reservoir, hidden: 30, spectral_radius: 0.9, input_scale: 0.5, density: 0.3}
  output: {linear: 1, every_step: true}
train:
  data: {task: mackey_glass, params: {window: 200, warmup: 20}, size: 4, split: 0.5}
  objective: regress
  optimizer: {ridge: {alpha: 1.0e-4, washout: 20}}
  batch: 2
"""


def _quiet(msg: str) -> None:
    pass


def test_read_out_is_the_ridge_solution(tmp_path: Path) -> None:
    """[W c] = (Z^T Z + alpha diag(1..1, 0))^-1 Z^T Y over the training steps past the washout."""
    spec = rnnspec.loads(ESN, "yaml")
    r = train(spec, run_dir=tmp_path / "run", log=_quiet)
    net = load_run(tmp_path / "run").net
    data = load_data(spec)
    zs, ys = [], []
    with torch.no_grad():
        for ex in data.train:
            seen: list[torch.Tensor] = []
            hook = net.head.register_forward_hook(lambda m, i, o: seen.append(i[0]))
            net(ex.x[:, None, :])
            hook.remove()
            zs.append(seen[0][20:, 0].double().numpy())
            ys.append(ex.y[20:].double().numpy())
    z = np.concatenate(zs)
    z1 = np.concatenate([z, np.ones((len(z), 1))], 1)
    y = np.concatenate(ys)
    d = np.eye(31) * 1e-4
    d[-1, -1] = 0.0
    w = np.linalg.solve(z1.T @ z1 + d, z1.T @ y)
    np.testing.assert_allclose(net.head.weight.detach().double().numpy(), w[:-1].T, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.head.bias.detach().double().numpy(), w[-1], rtol=1e-4, atol=1e-6)
    # the logged figures: NRMSE = sqrt(MSE / variance of the scored targets)
    assert r.metrics["nrmse"] == pytest.approx((r.metrics["loss"] / float(torch.cat([e.y[20:] for e in data.validation]).var(unbiased=False))) ** 0.5, rel=1e-3)
    assert r.metrics["nrmse"] < 0.05
    assert r.steps == 1 and r.timing["fit_s"] > 0


def test_ridge_run_directory_serves_eval_and_predict(tmp_path: Path) -> None:
    spec = rnnspec.loads(ESN, "yaml")
    train(spec, run_dir=tmp_path / "run", log=_quiet)
    series = np.linspace(0.5, 1.2, 60, dtype=np.float32)[None, :, None]
    np.save(tmp_path / "in.npy", series)
    assert predict(tmp_path / "run", tmp_path / "in.npy", tmp_path / "out.jsonl") == 1
    net = load_run(tmp_path / "run").net
    with torch.no_grad():
        y, _ = net(torch.from_numpy(series).transpose(0, 1))
    import json

    row = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    got = np.asarray(next(v for v in row.values() if isinstance(v, list)), dtype=np.float32).reshape(-1)
    np.testing.assert_allclose(got, y[:, 0, 0].numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(spec, resume=tmp_path / "run", log=_quiet)


@pytest.mark.parametrize("change, message, line", [
    (("    - {block: reservoir,", "    - {cell: gru, hidden: 8}\n    - {block: reservoir,"),
     "layer 0 is a gru layer, with trainable weights", 5),
    (("objective: regress", "objective: regress\n  schedule: {cosine: {}}"), "'schedule' does not apply to a ridge read-out", 10),
    (("objective: regress", "objective: regress\n  epochs: 3"), "'epochs' does not apply to a ridge read-out", 10),
    (("{linear: 1, every_step: true}", "{linear: 1, every_step: true, activation: tanh}"), "a ridge read-out is a linear output layer", 6),
    (("alpha: 1.0e-4,", "alpha: 1.0e-4, lr: 0.1,"), "optimizer 'ridge' takes no argument 'lr'; it takes alpha, washout", 10),
    (("washout: 20", "washout: -1"), "washout': input should be greater than or equal to 0", 10),
])
def test_bad_ridge_specs_are_located(change: tuple[str, str], message: str, line: int, tmp_path: Path) -> None:
    text = ESN.replace(*change)
    assert text != ESN
    with pytest.raises(rnnspec.SpecError, match=message) as e:
        train(rnnspec.loads(text, "yaml"), run_dir=tmp_path / "run", log=_quiet)
    assert e.value.pos is not None and e.value.pos.line == line


def test_ridge_needs_squared_error(tmp_path: Path) -> None:
    text = ESN.replace("objective: regress", "objective: regress\n  loss: bce")
    with pytest.raises(rnnspec.SpecError, match="needs objective regress with loss mse") as e:
        train(rnnspec.loads(text, "yaml"), run_dir=tmp_path / "run", log=_quiet)
    assert e.value.pos.line == 11


def test_rmsprop_alpha_still_below_one(tmp_path: Path) -> None:
    text = ESN.replace("{ridge: {alpha: 1.0e-4, washout: 20}}", "{rmsprop: {alpha: 1.5}}")
    with pytest.raises(rnnspec.SpecError, match="rmsprop's alpha .* must be below 1") as e:
        train(rnnspec.loads(text, "yaml"), run_dir=tmp_path / "run", log=_quiet)
    assert (e.value.pos.line, e.value.pos.col) == (10, 32)


def test_gradient_training_moves_the_read_out_only(tmp_path: Path) -> None:
    text = ESN.replace("{ridge: {alpha: 1.0e-4, washout: 20}}", "{adam: {lr: 0.05}}") + "  max_steps: 40\n  epochs: 40\n"
    spec = rnnspec.loads(text, "yaml")
    torch.manual_seed(spec.train.seed)
    before = rnnspec.compile(spec)
    r = train(spec, run_dir=tmp_path / "run", log=_quiet)
    after = load_run(tmp_path / "run", "last").net
    for name in ("weight", "weight_in", "bias"):
        assert torch.equal(getattr(after.rnn.groups[0].block, name), getattr(before.rnn.groups[0].block, name))
    assert not torch.equal(after.head.weight, before.head.weight)
    losses = [row["loss"] for row in r.history if row.get("split") == "train"]
    assert losses[-1] < 0.2 * losses[0]
