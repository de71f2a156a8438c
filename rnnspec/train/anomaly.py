"""Anomaly detection from a predictor's errors (``train.anomaly``).

Malhotra, Vig, Shroff & Agarwal 2015, "Long Short Term Memory Networks for
Anomaly Detection in Time Series" (ESANN), Section 2:

* a predictor trained on normal behaviour predicts, at each step ``t``, the
  next ``l`` values (here: a per-step ``regress`` net whose output at step
  ``t`` is ``x_{t+1..t+l}``);
* each point ``x_p`` (``p >= l``) is predicted ``l`` times; its error vector is
  ``e_p = (x_p - xhat_p^{(p-1)}, ..., x_p - xhat_p^{(p-l)})``, where
  ``xhat_p^{(s)}`` is the prediction of ``x_p`` made at step ``s``;
* the error vectors of normal points of a validation set are modelled as a
  multivariate Gaussian ``N(mu, Sigma)``; a point's anomaly score is the
  negative log-likelihood of its error vector, here (equivalently, up to
  constants) its squared Mahalanobis distance
  ``(e_p - mu)^T Sigma^{-1} (e_p - mu)``;
* a point is anomalous when its score exceeds a threshold ``tau``.  The paper
  picks ``tau`` to maximise the F-score on labelled validation anomalies;
  here ``tau`` is the ``quantile`` (spec: ``train.anomaly.quantile``) of the
  validation split's normal scores, which needs no anomalies to pick it.

Reported (``rnnspec train``/``eval``, any split): ``auc`` (ROC AUC of the
score against the per-point labels, threshold-free), and ``precision``,
``recall``, ``f1`` of the flagged points at ``tau``.  Points are scored where
the data's ``extras["scored"]`` is true (past a warm-up); the labels are
``extras["anomaly"]`` (see :mod:`rnnspec.data.anomaly`).  These metrics use
every series of the split (``eval_batches`` does not cut them).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from rnnspec.data.batch import Example, collate
from rnnspec.errors import SpecError
from rnnspec.spec.model import Spec


def roc_auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive
    scores above a random negative, ties counting one half (the
    Mann-Whitney U statistic over ``P * N``).  NaN without both classes."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based, ties get their mean rank
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def precision_recall_f1(flagged: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Of the flagged points, the share that are anomalies; of the anomalies,
    the share flagged; their harmonic mean (each 0 when undefined)."""
    f, y = np.asarray(flagged, dtype=bool), np.asarray(labels, dtype=bool)
    tp = float((f & y).sum())
    p = tp / float(f.sum()) if f.any() else 0.0
    r = tp / float(y.sum()) if y.any() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def error_vectors(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``[T - l, l]`` error vectors of points ``l .. T-1`` from a series'
    predictions and targets ``[T, l]`` (row ``s`` holds the values ``s+1..s+l``)."""
    err = target - pred
    T, l = err.shape
    if T <= l:
        return np.zeros((0, l))
    return np.stack([err[l - 1 - j : T - 1 - j, j] for j in range(l)], 1)


@torch.no_grad()
def point_errors(net: nn.Module, items: Sequence[Example], *, batch: int, batch_first: bool,
                 device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Error vectors ``[N, l]`` of every scored point of ``items`` and their labels ``[N]``."""
    errs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for start in range(0, len(items), batch):
        part = [items[i] for i in range(start, min(start + batch, len(items)))]
        b = collate([Example(ex.x) for ex in part], batch_first=True)
        x = b.x.to(device)
        out, _ = net(x if batch_first else x.transpose(0, 1), None, b.lengths)
        out = out.float()
        if not batch_first:
            out = out.transpose(0, 1)
        out = out.cpu().numpy()
        for i, ex in enumerate(part):
            T = ex.length
            y = ex.y.reshape(T, -1).numpy().astype(np.float64)  # type: ignore[union-attr]
            e = error_vectors(out[i, :T].reshape(T, -1).astype(np.float64), y)
            l = y.shape[1]
            scored = ex.extras.get("scored")
            keep = np.ones(T, dtype=bool) if scored is None else np.asarray(scored, dtype=bool)
            keep = keep[l:]
            errs.append(e[keep])
            labels.append(np.asarray(ex.extras["anomaly"], dtype=bool)[l:][keep])
    if not errs:
        return np.zeros((0, 1)), np.zeros(0, dtype=bool)
    return np.concatenate(errs), np.concatenate(labels)


class Gaussian:
    """``N(mu, Sigma)`` of normal error vectors; ``score`` is the squared
    Mahalanobis distance (the negative log-density up to constants)."""

    def __init__(self, errors: np.ndarray) -> None:
        e = np.asarray(errors, dtype=np.float64)
        if len(e) < 2:
            raise ValueError("fitting the error distribution needs at least two normal points")
        self.mu = e.mean(0)
        cov = np.atleast_2d(np.cov(e, rowvar=False))
        self.precision = np.linalg.inv(cov + 1e-9 * np.eye(cov.shape[0]) * max(np.trace(cov), 1e-12))

    def score(self, errors: np.ndarray) -> np.ndarray:
        d = np.asarray(errors, dtype=np.float64) - self.mu
        return np.einsum("ni,ij,nj->n", d, self.precision, d)


def anomaly_metrics(net: nn.Module, data: Any, split: str, *, quantile: float, batch: int, batch_first: bool,
                    device: torch.device) -> dict[str, float]:
    """``auc``, ``precision``, ``recall``, ``f1`` of ``split`` (see the module doc)."""
    was = net.training
    net.eval()
    kw = dict(batch=batch, batch_first=batch_first, device=device)
    val_e, val_y = point_errors(net, data.split("validation"), **kw)  # type: ignore[arg-type]
    e, y = (val_e, val_y) if split == "validation" else point_errors(net, data.split(split), **kw)  # type: ignore[arg-type]
    net.train(was)
    model = Gaussian(val_e[~val_y])
    tau = float(np.quantile(model.score(val_e[~val_y]), quantile))
    s = model.score(e)
    p, r, f = precision_recall_f1(s > tau, y)
    return {"auc": roc_auc(s, y), "precision": p, "recall": r, "f1": f}


def attach(spec: Spec, data: Any) -> None:
    """Check that ``train.anomaly`` fits the objective and the data, and hand it to the objective."""
    t = spec.train
    assert t is not None and t.anomaly is not None
    where = spec._where.value(("train", "anomaly")) if spec._where is not None else None
    obj = data.objective
    if obj.name != "regress" or not obj.per_step:
        raise SpecError("anomaly detection scores a per-step predictor: use objective regress with a target per step "
                        f"(this spec trains {obj.name!r}{'' if obj.per_step else ' per sequence'})", where)
    if data.kind != "examples" or not all("anomaly" in ex.extras for ex in data.train):
        raise SpecError("the data have no per-step anomaly labels (extras 'anomaly'); use data {task: anomaly}", where)
    if data.validation is None:
        raise SpecError("anomaly detection fits its error model and threshold on the validation split, but there is "
                        "none (data.split + data.test is 1)", where)
    normal = sum(int((~torch.as_tensor(ex.extras["anomaly"], dtype=torch.bool)).sum()) for ex in data.validation)
    if normal < 2:
        raise SpecError("the validation split has too few normal points to fit the error model", where)
    obj.anomaly = t.anomaly


__all__ = ["roc_auc", "precision_recall_f1", "error_vectors", "point_errors", "Gaussian", "anomaly_metrics", "attach"]
