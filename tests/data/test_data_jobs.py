"""The generators of the product's jobs (anomalies in time series, video
tagging, image captions) and the metrics they are judged by: deterministic
per seed, labels that agree with what was drawn, metrics against hand-worked
cases and brute-force references."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rnnspec.data import synthetic as S
from rnnspec.data.anomaly import anomalous_series, make_anomaly
from rnnspec.data.batch import make_rng
from rnnspec.data.captions import CAPTION_COLOURS, CAPTION_SIZES, CAPTION_WORDS, EOS_ID, make_captions, shape_pixels
from rnnspec.data.errors import DataError
from rnnspec.data.video import VIDEO_TAGS, make_video, shape_mask
from rnnspec.train.anomaly import Gaussian, error_vectors, precision_recall_f1, roc_auc
from rnnspec.train.losses import Objective, Prepared


def _same(a: list, b: list) -> bool:
    return all(torch.equal(x.x, y.x) and torch.equal(x.y, y.y) for x, y in zip(a, b)) and len(a) == len(b)


@pytest.mark.parametrize("name", ["anomaly", "video", "captions"])
def test_job_tasks_are_registered_and_deterministic(name: str) -> None:
    a = S.make_task(name, 6, seed=5)
    assert _same(a, S.make_task(name, 6, seed=5))
    assert not _same(a, S.make_task(name, 6, seed=6))
    assert _same(a[:3], S.make_task(name, 3, seed=5))  # example i depends on (seed, i) only


# ---------------------------------------------------------------- anomalies

def test_anomalies_change_the_series_only_inside_their_windows() -> None:
    n = 200
    for seed in range(5):
        clean = anomalous_series(n, make_rng(seed, 0), [])
        spike = anomalous_series(n, make_rng(seed, 0), [("spike", 50, 51)])
        shift = anomalous_series(n, make_rng(seed, 0), [("level_shift", 80, 92)])
        freq = anomalous_series(n, make_rng(seed, 0), [("frequency", 120, 140)])
        amp = np.abs(clean).max() / 1.3
        d = np.abs(spike - clean)
        assert d[50] >= 1.9 * amp * 0.99 and np.all(np.delete(d, 50) == 0)
        d = np.abs(shift - clean)
        assert np.all(d[80:92] > 0.5 * amp) and np.all(d[:80] == 0) and np.all(d[92:] == 0)
        d = np.abs(freq - clean)
        assert np.all(d[:121] == 0) and d[121:140].max() > 0.3 * amp  # continuous at the start, then bends


def test_anomaly_labels_masks_and_targets_agree() -> None:
    exs = make_anomaly(10, seed=1, length=120, horizon=3, warmup=10, guard=5)
    assert sum(bool(ex.extras["events"]) for ex in exs) == 5  # anomalous: 0.5, exactly
    for ex in exs:
        x, y, lab = ex.x[:, 0], ex.y, ex.extras["anomaly"]
        assert x.shape == (120,) and y.shape == (120, 3)
        for j in range(3):  # y[t, j] is x[t + 1 + j]
            assert torch.equal(y[: 120 - 1 - j, j], x[1 + j :])
        want = torch.zeros(120, dtype=torch.bool)
        for kind, a, b in ex.extras["events"]:
            assert kind in ("spike", "level_shift", "frequency") and a >= 10
            want[a:b] = True
        assert torch.equal(lab, want)
        m = ex.extras["loss_mask"]
        assert not m[:10].any() and torch.equal(ex.extras["scored"], torch.arange(120) >= 10)
        for t in torch.nonzero(m).flatten().tolist():  # fitted steps see and predict normal points only
            assert not lab[max(0, t - 5) : t + 4].any()
        if not ex.extras["events"]:
            assert m[10:].all()


def test_anomaly_spikes_stand_out_of_their_neighbours() -> None:
    for ex in make_anomaly(40, seed=2, kinds=["spike"]):
        x = ex.x[:, 0]
        for _, a, _ in ex.extras["events"]:
            assert abs(float(x[a] - (x[a - 1] + x[a + 1]) / 2)) > 0.6


def test_anomaly_bad_parameters() -> None:
    with pytest.raises(DataError, match="kinds.*'spikes'.*did you mean 'spike'"):
        make_anomaly(2, seed=0, kinds=["spikes"])
    with pytest.raises(DataError, match="'length'"):
        make_anomaly(2, seed=0, length=30)
    with pytest.raises(DataError, match="'anomalous'"):
        make_anomaly(2, seed=0, anomalous=1.5)


# ---------------------------------------------------------------- video

def test_video_tags_match_the_drawn_shapes_and_motion() -> None:
    exs = make_video(60, seed=3, size=16, frames=8, noise=0.1)
    for ex in exs:
        objs = ex.extras["objects"]
        tags = {VIDEO_TAGS[k] for k in torch.nonzero(ex.y[-1]).flatten().tolist()}
        assert tags == {o[0] for o in objs} | {o[1] for o in objs}
        assert torch.equal(ex.y, ex.y[-1].expand_as(ex.y))
        assert ex.extras["loss_mask"].tolist() == [False] * 7 + [True]
        frames = ex.x.view(8, 16, 16)
        on = frames > 0.95
        assert ex.x.min() >= 0 and ex.x.max() <= 1
        for f in (0, 7):  # every object is drawn where it should be
            for shape, d, r, c in objs:
                dr, dc = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}[d]
                m = torch.from_numpy(shape_mask(shape))
                h, w = m.shape
                rr, cc = r + f * dr, c + f * dc
                assert 0 <= rr and rr + h <= 16 and 0 <= cc and cc + w <= 16
                assert on[f, rr : rr + h, cc : cc + w][m].all()
        if len(objs) == 1:  # the bright pixels' centre moves 7 pixels the tagged way
            (shape, d, _, _), = objs
            cen = [torch.nonzero(on[f]).float().mean(0) for f in (0, 7)]
            dr, dc = (cen[1] - cen[0]).tolist()
            want = {"left": (0, -7), "right": (0, 7), "up": (-7, 0), "down": (7, 0)}[d]
            assert abs(dr - want[0]) < 0.5 and abs(dc - want[1]) < 0.5
    counts = torch.stack([ex.y[-1] for ex in exs]).sum(0)
    assert (counts > 0).all()  # every tag occurs


def test_video_bad_parameters() -> None:
    with pytest.raises(DataError, match="'size'"):
        make_video(2, seed=0, size=10, frames=8)
    with pytest.raises(DataError, match="'max_objects'"):
        make_video(2, seed=0, max_objects=4)


# ---------------------------------------------------------------- captions

def test_captions_describe_the_drawn_scene() -> None:
    exs = make_captions(80, seed=4, size=20, noise=0.05)
    colours = {name: np.array(rgb) for name, rgb in CAPTION_COLOURS.items()}
    for ex in exs:
        cap = ex.extras["caption"]
        ids = ex.y.tolist()
        assert ids[-1] == EOS_ID and " ".join(CAPTION_WORDS[i] for i in ids[:-1]) == cap
        img = ex.x.numpy().reshape(20, 20, 3)
        hard = (img > 0.5).astype(float)
        words = cap.split()
        objs = [words[1:4]] if len(words) == 4 else [words[1:4], words[-3:]]
        # each mentioned colour is drawn, and nothing else
        drawn = {name for name, rgb in colours.items() if (np.abs(hard - rgb).sum(-1) == 0).any()}
        assert drawn == {o[1] for o in objs}, cap
        if len(objs) == 1:
            size, colour, shape = objs[0]
            n = int((np.abs(hard - colours[colour]).sum(-1) == 0).sum())
            assert n == int(shape_pixels(shape, CAPTION_SIZES[size]).sum()), cap
        elif objs[0][1] != objs[1][1]:  # the first is left of / above the second
            where = [np.argwhere(np.abs(hard - colours[o[1]]).sum(-1) == 0) for o in objs]
            axis = 1 if "left" in words else 0
            assert where[0][:, axis].max() < where[1][:, axis].min(), cap
    assert len({ex.extras["caption"] for ex in exs}) > 50  # a scene of 1,176 possible captions


def test_caption_bad_parameters() -> None:
    with pytest.raises(DataError, match="'max_objects'"):
        make_captions(2, seed=0, max_objects=3)
    with pytest.raises(DataError, match="'size'"):
        make_captions(2, seed=0, size=12)


# ---------------------------------------------------------------- metrics

def test_roc_auc_hand_worked_and_brute_force() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 1]) == pytest.approx(0.5)  # ties count one half
    assert roc_auc([1, 2, 3], [0, 0, 1]) == 1.0 and roc_auc([3, 2, 1], [0, 0, 1]) == 0.0
    assert np.isnan(roc_auc([1, 2], [0, 0]))
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, 50).astype(float)  # many ties
    y = rng.random(50) < 0.3
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a, b in itertools.product(s[y], s[~y])]
    assert roc_auc(s, y) == pytest.approx(np.mean(pairs))


def test_precision_recall_f1_and_error_vectors() -> None:
    p, r, f = precision_recall_f1(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 0, 1], bool))
    assert (p, r, f) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert precision_recall_f1(np.zeros(3, bool), np.array([1, 0, 0], bool)) == (0.0, 0.0, 0.0)
    # horizon 2: row s predicts points s+1, s+2; point p's errors come from rows p-1 (j=0) and p-2 (j=1)
    target = np.array([[1, 2], [2, 3], [3, 4], [4, 5]], float)
    pred = target - np.array([[10, 20], [11, 21], [12, 22], [13, 23]], float)
    e = error_vectors(pred, target)
    assert e.tolist() == [[11, 20], [12, 21]]  # points 2 and 3


def test_gaussian_score_is_the_squared_standard_score_in_one_dimension() -> None:
    e = np.array([[0.1], [0.3], [-0.2], [0.0], [0.4]])
    g = Gaussian(e)
    z = (np.array([1.0, -1.0]) - e.mean()) / e.std(ddof=1)
    assert g.score(np.array([[1.0], [-1.0]])) == pytest.approx(z**2, rel=1e-6)


def test_multi_label_micro_f1_and_seq2seq_exact() -> None:
    tag = Objective("tag", "bce", per_step=True, every_step_output=True, num_outputs=3, multi_label=True)
    out = torch.tensor([[[2.0, -1.0, 1.0], [5.0, 5.0, 5.0]], [[-1.0, 3.0, -2.0], [0.0, 0.0, 0.0]]])  # [B=2, T=2, 3]
    y = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, False], [True, False]])  # the first step of each only
    p = Prepared(x=torch.zeros(2, 2, 1), lengths=None, y=y, mask=mask, count=6.0, size=2, steps=2)
    _, stats = tag.score(out, p)
    res = tag.summarize({"loss_sum": 0.0, "count": 6.0, **{k: float(v) for k, v in stats.items()}})
    # predicted {0, 2} vs {0}; {1} vs {1, 2}: tp 2, fp 1, fn 1
    assert res["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1)) and res["bit_errors"] == pytest.approx(1.0)
    s2s = Objective("seq2seq", "cross_entropy", per_step=False, every_step_output=True, num_outputs=4)
    logits = torch.full((3, 3, 4), -5.0)
    best = torch.tensor([[1, 2, 3], [1, 2, 0], [3, 3, 3]])
    logits.scatter_(2, best.unsqueeze(-1), 5.0)
    tgt = torch.tensor([[1, 2, 3], [1, 2, 2], [3, 1, 0]])
    tl = torch.tensor([3, 2, 2])  # the second is right on its 2 tokens; the third is wrong at token 2
    p = s2s.prepare(type("B", (), {"x": torch.zeros(3, 3), "y": tgt, "lengths": torch.tensor([3, 3, 3]),
                                   "batch_first": True, "per_step": False, "extras": {"target_lengths": tl}})(), True)
    _, stats = s2s.score(logits, p)
    res = s2s.summarize({"loss_sum": 0.0, "count": p.count, **{k: float(v) for k, v in stats.items()}})
    assert res["exact"] == pytest.approx(2 / 3) and res["accuracy"] == pytest.approx(6 / 7)
    assert s2s.mode("exact") == "max" and tag.mode("f1") == "max" and Objective.mode("auc") == "max"
