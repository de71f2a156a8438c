"""`rnnspec train | eval | predict | sample` from the command line, runs on disk,
progress output, optional integrations."""
from __future__ import annotations

import sys

import importlib.util
import io
import json
from pathlib import Path

import pytest

from rnnspec.cli import main
from rnnspec.train.progress import Progress

from ._util import write_spec

CLF = """
name: clf
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 3}
train:
  data: {csv: d.csv, sequence_id: id, label: label, classes: [low, mid, high], split: 0.6, test: 0.2}
  batch: 6
  epochs: 4
  log_every: 3
"""


def _csv(tmp_path: Path) -> None:
    rows = ["id,a,b,label"]
    names = ["low", "mid", "high"]
    for i in range(30):
        for t in range(3 + i % 4):
            rows.append(f"s{i},{(i % 3) + 0.1 * t},{t},{names[i % 3]}")
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")


def _train(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[Path, str]:
    _csv(tmp_path)
    spec = write_spec(tmp_path, CLF)
    run_dir = tmp_path / "run"
    assert main(["train", str(spec), "--run-dir", str(run_dir), "--threads", "1", *extra]) == 0
    return run_dir, capsys.readouterr().out


def test_train_writes_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, out = _train(tmp_path, capsys)
    for name in ("spec.yaml", "run.json", "metrics.jsonl", "metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    lines = [l for l in out.splitlines() if l.startswith("step")]
    assert len(lines) == 4 and "accuracy" in lines[0]  # 12 steps, one line per 3 (not a terminal: no \r)
    assert "\r" not in out
    csv_head = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert csv_head[:3] == ["step", "split", "loss"]
    assert "test" in {json.loads(l)["split"] for l in (run_dir / "metrics.jsonl").read_text().splitlines()}
    tb = importlib.util.find_spec("tensorboard") is not None
    assert ((run_dir / "tensorboard").is_dir() if tb else out.count("tensorboard package is not installed") == 1)
    mpl = importlib.util.find_spec("matplotlib") is not None
    assert (run_dir / "loss.png").is_file() if mpl else "no loss plot" in out


def test_overrides_and_print_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _csv(tmp_path)
    spec = write_spec(tmp_path, CLF)
    assert main(["train", str(spec), "--train.optimizer.sgd.lr=0.5", "--train.batch", "4", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "sgd: {lr: 0.5}" in out and "adam" not in out and "batch: 4" in out
    assert str((tmp_path / "d.csv").resolve()) in out
    assert main(["train", str(spec), "--train.batch=many"]) == 2
    err = capsys.readouterr().err
    assert "<command line>:1:15: error: 'train.batch': expected an integer" in err and "Traceback" not in err
    assert main(["train", str(spec), "--train.data.lable=x"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lable'" in err and "did you mean 'label'" in err and "<command line>:1:3" in err


def test_eval_and_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = _train(tmp_path, capsys)
    assert main(["eval", str(run_dir), "--split", "test", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["split"] == "test" and res["size"] == 6 and 0.0 <= res["accuracy"] <= 1.0
    assert main(["eval", str(run_dir / "checkpoints" / "last.pt")]) == 0
    assert "validation (6 examples, last.pt at step 12)" in capsys.readouterr().out
    (tmp_path / "new.csv").write_text("id,a,b,label\nq,0.1,0,low\nq,0.2,1,low\nr,2.1,0,high\n")
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(run_dir), str(tmp_path / "new.csv"), "-o", str(out)]) == 0
    preds = [json.loads(l) for l in out.read_text().splitlines()]
    assert [p["index"] for p in preds] == [0, 1] and preds[0]["class"] in ("low", "mid", "high")
    assert abs(sum(preds[0]["probs"]) - 1) < 1e-4
    assert main(["predict", str(run_dir), str(tmp_path / "missing.csv"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_sample_and_predict_for_a_language_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.txt").write_text("abab cdcd " * 100)
    spec = write_spec(tmp_path, """
name: lm
model:
  input: {tokens: 8, embed: 4}
  layers: [{cell: gru, hidden: 16}]
  output: {logits: 8, every_step: true}
train:
  data: {text: c.txt, seq_len: 10}
  optimizer: {adam: {lr: 0.02}}
  batch: 4
  max_steps: 30
  log_every: 10
""")
    assert main(["train", str(spec), "--run-dir", str(tmp_path / "r"), "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--prompt", "ab", "--length", "20", "--top-k", "3"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("ab") and len(text) == 22
    (tmp_path / "in.txt").write_text("abab\ncdc\n")
    assert main(["predict", str(tmp_path / "r"), str(tmp_path / "in.txt"), "-o", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "index,next,perplexity" and len(rows) == 3


def test_predict_tags_from_token_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, """
name: tag
model:
  input: {tokens: 5, embed: 4}
  layers: [{cell: gru, hidden: 8}]
  output: {logits: 5, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 1, min_len: 3, max_len: 6, symbols: 5}, size: 40}
  batch: 8
  max_steps: 2
""")
    assert main(["train", str(spec), "--run-dir", str(tmp_path / "r"), "--threads", "1"]) == 0
    (tmp_path / "in.txt").write_text("1 2 3\n4 0 1 2\n")
    assert main(["predict", str(tmp_path / "r"), str(tmp_path / "in.txt"), "-o", str(tmp_path / "p.jsonl")]) == 0
    preds = [json.loads(l) for l in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [len(p["labels"]) for p in preds] == [3, 4]


def test_live_progress_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream, lines = Tty(), []
    p = Progress(10, log=lines.append, live=None, stream=stream)
    assert not p.live  # a custom log function means someone else owns the output
    p = Progress(10, log=print, live=None, stream=stream)
    assert p.live
    p.update(5, 1.25, 1000.0, 1.0, 0)
    assert stream.getvalue().startswith("\r[") and "5/10" in stream.getvalue() and "loss 1.2500" in stream.getvalue()


def test_mlflow_tracking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mlflow")
    _csv(tmp_path)
    spec = write_spec(tmp_path, CLF.replace("  log_every: 3", "  log_every: 3\n  track: mlflow"))
    assert main(["train", str(spec), "--run-dir", str(tmp_path / "run"), "--threads", "1"]) == 0
    run_id = (tmp_path / "run" / "mlflow_run_id").read_text().strip()
    logged = {p.name for p in (tmp_path / "run" / "mlruns").glob(f"*/{run_id}/metrics/*")}
    assert {"train_loss", "validation_loss", "validation_accuracy"} <= logged


def test_mlflow_missing_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    _csv(tmp_path)
    spec = write_spec(tmp_path, CLF.replace("  log_every: 3", "  log_every: 3\n  track: mlflow"))
    assert main(["train", str(spec), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rnnspec[mlflow]'" in err and f"{spec}:11:10" in err
