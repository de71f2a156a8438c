"""The run directory and what is recorded in it.

::

    runs/<name>-<time>/
      spec.yaml              the resolved spec (overrides applied, data paths absolute)
      run.json               objective, loss, classes, world size, rnnspec version
      vocab.json             the token vocabulary (text data)
      metrics.jsonl          one JSON object per logged step: step, split, loss, ...
      metrics.csv            the same rows as a table (rewritten at checkpoints and at the end)
      checkpoints/last.pt    written atomically every checkpoint_every steps and at the end
      checkpoints/best.pt    the best by the validation metric (train.monitor), + best.json
      tensorboard/           event files, when tensorboard is installed
      loss.png               train/validation loss, when matplotlib is installed

Optional integrations (TensorBoard, matplotlib, MLflow) are imported only
when used; a missing one is reported once and skipped, except MLflow, which
a spec asks for by name (``track: mlflow``).
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

from rnnspec.train.checkpoint import atomic_write_text

Log = Callable[[str], None]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a crash
    return rows


class Run:
    """Writes a run's records (only the main process makes one with ``active=True``)."""

    def __init__(self, run_dir: Path, *, active: bool, log: Log, resume_step: Optional[int] = None,
                 tensorboard: bool = True, mlflow: bool = False, params: Optional[dict[str, Any]] = None) -> None:
        self.dir = run_dir
        self.active = active
        self.log = log
        self.rows: list[dict[str, Any]] = []
        self.tb: Any = None
        self.mlflow: Any = None
        self.notes: list[str] = []
        if not active:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = run_dir / "metrics.jsonl"
        if resume_step is not None:
            # Drop rows logged after the checkpoint we resume from: they will be logged again.
            kept = [r for r in read_metrics(self.jsonl) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
            self.rows = kept
        elif self.jsonl.exists():
            self.jsonl.unlink()
        self.fh = self.jsonl.open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step)
            except Exception:  # ImportError, or a broken install
                self.note("TensorBoard logging is off: the tensorboard package is not installed (pip install tensorboard)")
        if mlflow:
            import mlflow as _mlflow  # checked by the trainer before we get here

            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:  # a local file store next to the run (MLflow 3 asks to opt in to file stores)
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                uri = (run_dir / "mlruns").resolve().as_uri()
            _mlflow.set_tracking_uri(uri)
            _mlflow.set_experiment((params or {}).get("name") or "rnnspec")
            tag_file = run_dir / "mlflow_run_id"
            run_id = tag_file.read_text().strip() if (resume_step is not None and tag_file.is_file()) else None
            active_run = _mlflow.start_run(run_id=run_id, run_name=run_dir.name)
            if run_id is None:
                atomic_write_text(tag_file, active_run.info.run_id)
                flat = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in (params or {}).items()}
                _mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
            self.mlflow = _mlflow

    def note(self, msg: str) -> None:
        if msg not in self.notes:
            self.notes.append(msg)
            self.log(f"note: {msg}")

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if not self.active:
            return
        self.fh.write(json.dumps(row) + "\n")
        self.fh.flush()
        step = int(row["step"])
        split = row.get("split", "train")
        scalars = {k: v for k, v in row.items() if k not in ("step", "split") and isinstance(v, (int, float))}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"{split}/{k}", v, step)
        if self.mlflow is not None:
            self.mlflow.log_metrics({f"{split}_{k}": float(v) for k, v in scalars.items()}, step=step)

    def flush_csv(self) -> None:
        if not self.active:
            return
        cols: list[str] = []
        for r in self.rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in self.rows:
            w.writerow(r)
        atomic_write_text(self.dir / "metrics.csv", buf.getvalue())
        if self.tb is not None:
            self.tb.flush()

    def plot(self) -> Optional[Path]:
        """``loss.png``: train and validation loss against step (needs matplotlib)."""
        if not self.active:
            return None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except Exception:
            self.note("no loss plot: matplotlib is not installed (pip install matplotlib)")
            return None
        fig, ax = plt.subplots(figsize=(6, 4))
        for split in ("train", "validation"):
            pts = [(r["step"], r["loss"]) for r in self.rows if r.get("split") == split and "loss" in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o" if split == "validation" else None, label=split)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(self.dir.name)
        ax.legend()
        fig.tight_layout()
        path = self.dir / "loss.png"
        tmp = self.dir / ".loss.png.tmp"
        fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        return path

    def close(self, *, plot: bool = True) -> None:
        if not self.active:
            return
        self.flush_csv()
        self.fh.close()
        if plot:
            self.plot()
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.mlflow is not None:
            self.mlflow.end_run()
            self.mlflow = None
