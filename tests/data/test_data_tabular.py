"""CSV / .npy / .npz loaders and their error messages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnnspec.data import DataError, collate
from rnnspec.data.tabular import load_csv, load_npy, load_npz, load_tabular

CSV = """id,t,a,b,label
s1,2,1.5,2.0,1
s2,1,0.0,1.0,0
s1,1,0.5,1.0,1
s2,2,3.0,4.0,0
s2,3,5.0,6.0,0
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_groups_rows_into_sequences_ordered_by_time(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", CSV)
    exs = load_csv(p, label="label", sequence_id="id", time="t", num_classes=2)
    assert [ex.extras["sequence_id"] for ex in exs] == ["s1", "s2"]
    assert exs[0].x.tolist() == [[0.5, 1.0], [1.5, 2.0]]
    assert exs[1].x.tolist() == [[0.0, 1.0], [3.0, 4.0], [5.0, 6.0]]
    assert exs[0].y.dtype == torch.int64 and exs[0].y.item() == 1 and exs[1].y.item() == 0
    b = collate(exs)
    assert b.y.tolist() == [1, 0] and b.lengths.tolist() == [2, 3]


def test_csv_per_step_regression_and_whole_file_sequence(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", CSV)
    (ex,) = load_csv(p, features=["a"], label="b")
    assert ex.x.shape == (5, 1) and ex.y.shape == (5, 1) and ex.y.dtype == torch.float32
    assert ex.y_is_per_step()
    steps = load_csv(p, features=["a", "b"], label="label", sequence_id="id", target="step", num_classes=2)
    assert steps[1].y.tolist() == [0, 0, 0]


def test_csv_class_names(tmp_path: Path) -> None:
    p = _write(tmp_path, "c.csv", "x,kind\n1,cat\n2,dog\n")
    (ex,) = load_csv(p, label="kind", classes=["cat", "dog"])
    assert ex.y.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"c.csv:3: label 'dog' .* not one of the classes 'cat', 'dogs' \(did you mean 'dogs'\?\)"):
        load_csv(p, label="kind", classes=["cat", "dogs"])


def test_csv_missing_column_lists_columns_and_suggests(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", CSV)
    with pytest.raises(DataError) as info:
        load_csv(p, label="lable")
    msg = str(info.value)
    assert str(p) in msg and "no label column 'lable'" in msg and "did you mean 'label'" in msg
    assert "'id', 't', 'a', 'b', 'label'" in msg
    with pytest.raises(DataError, match="no feature column 'c'"):
        load_csv(p, features=["a", "c"])


def test_csv_label_out_of_range(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", CSV.replace("s2,2,3.0,4.0,0", "s2,2,3.0,4.0,7"))
    with pytest.raises(DataError, match=r"d.csv:5: label 7 in column 'label' is out of range for num_classes=2 \(expected 0..1\)"):
        load_csv(p, label="label", sequence_id="id", target="step", num_classes=2)
    q = _write(tmp_path, "e.csv", "x,y\n1,0.5\n")
    with pytest.raises(DataError, match="not an integer class id"):
        load_csv(q, label="y", num_classes=3)


def test_csv_label_varying_within_a_sequence(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.csv", CSV.replace("s2,2,3.0,4.0,0", "s2,2,3.0,4.0,1"))
    with pytest.raises(DataError, match=r"varies within sequence 's2' \(lines 3..6\); use target='step'"):
        load_csv(p, label="label", sequence_id="id", num_classes=2)


def test_csv_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file is empty"):
        load_csv(_write(tmp_path, "empty.csv", ""))
    with pytest.raises(DataError, match="no data rows after the header"):
        load_csv(_write(tmp_path, "head.csv", "a,b\n"))
    with pytest.raises(DataError, match=r"text.csv:3: column 'b': 'high' is not a number"):
        load_csv(_write(tmp_path, "text.csv", "a,b\n1,2\n3,high\n"))
    with pytest.raises(DataError, match=r"gap.csv:2: column 'a': is empty"):
        load_csv(_write(tmp_path, "gap.csv", "a,b\n,2\n"))
    with pytest.raises(DataError, match=r"ragged.csv:3: row has 3 fields, the header has 2"):
        load_csv(_write(tmp_path, "ragged.csv", "a,b\n1,2\n1,2,3\n"))
    with pytest.raises(DataError, match="repeats column name"):
        load_csv(_write(tmp_path, "dupe.csv", "a,a\n1,2\n"))
    with pytest.raises(DataError, match="not a finite number"):
        load_csv(_write(tmp_path, "nan.csv", "a\nnan\n"))
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "absent.csv")


def test_npy_fixed_and_token_arrays(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(4, 6, 3))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([0, 2, 1, 2]))
    exs = load_npy(tmp_path / "x.npy", labels=tmp_path / "y.npy", num_classes=3)
    assert len(exs) == 4 and exs[0].x.dtype == torch.float32 and exs[0].x.shape == (6, 3)
    assert np.allclose(exs[2].x.numpy(), x[2]) and exs[3].y.item() == 2
    np.save(tmp_path / "tok.npy", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32))
    toks = load_npy(tmp_path / "tok.npy")
    assert toks[1].x.dtype == torch.int64 and toks[1].x.tolist() == [4, 5, 6] and toks[1].y is None
    with pytest.raises(DataError, match=r"label 5 is out of range for num_classes=3"):
        np.save(tmp_path / "bad.npy", np.array([0, 5, 1, 2]))
        load_npy(tmp_path / "x.npy", labels=tmp_path / "bad.npy", num_classes=3)


def test_npy_object_arrays_need_allow_pickle(tmp_path: Path) -> None:
    seqs = np.empty(3, dtype=object)
    for i, T in enumerate([2, 5, 3]):
        seqs[i] = np.ones((T, 2), dtype=np.float32) * i
    np.save(tmp_path / "var.npy", seqs, allow_pickle=True)
    with pytest.raises(DataError, match="allow_pickle=True only if you trust this file"):
        load_npy(tmp_path / "var.npy")
    exs = load_npy(tmp_path / "var.npy", allow_pickle=True)
    assert [ex.length for ex in exs] == [2, 5, 3]
    assert collate(exs).x.shape == (3, 5, 2)


def test_npy_wrong_dtype_and_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DataError, match=r"has dtype <U1; expected integers, floats or booleans"):
        load_npy(tmp_path / "s.npy")
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(DataError, match=r"shape \(5,\); expected \[N, T, features\]"):
        load_npy(tmp_path / "flat.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match="not a valid NumPy file"):
        load_npy(tmp_path / "junk.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match="empty.npy: file is empty"):
        load_npy(tmp_path / "empty.npy")


def test_npz_with_lengths_and_per_step_targets(tmp_path: Path) -> None:
    x = np.arange(2 * 4 * 2, dtype=np.float64).reshape(2, 4, 2)
    y = np.array([[1, 2, 0, 0], [3, 4, 5, 6]])
    np.savez(tmp_path / "d.npz", x=x, y=y, lengths=np.array([2, 4]))
    exs = load_npz(tmp_path / "d.npz", num_classes=7)
    assert [ex.length for ex in exs] == [2, 4]
    assert exs[0].y.tolist() == [1, 2] and exs[0].y_is_per_step()
    b = collate(exs, y_pad_value=-100)
    assert b.y.tolist() == [[1, 2, -100, -100], [3, 4, 5, 6]]
    np.savez(tmp_path / "r.npz", inputs=x, targets=np.array([[0.5], [1.5]]))
    reg = load_npz(tmp_path / "r.npz", x="inputs", y="targets")
    assert reg[1].y.tolist() == [1.5] and not reg[1].y_is_per_step()


def test_npz_errors(tmp_path: Path) -> None:
    x = np.zeros((2, 3, 1))
    np.savez(tmp_path / "d.npz", x=x, labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"no target array 'y'.*the archive has 'x', 'labels'; pass y=None"):
        load_npz(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"no target array 'label' \(did you mean 'labels'\?\)"):
        load_npz(tmp_path / "d.npz", y="label")
    assert load_npz(tmp_path / "d.npz", y=None)[0].y is None
    np.savez(tmp_path / "l.npz", x=x, y=np.array([0, 1]), lengths=np.array([3, 4]))
    with pytest.raises(DataError, match=r"\['lengths'\]\[1\] = 4 is outside 1..3"):
        load_npz(tmp_path / "l.npz")
    np.savez(tmp_path / "n.npz", x=x, y=np.array([0, 9]))
    with pytest.raises(DataError, match=r"label 9 is out of range for num_classes=3"):
        load_npz(tmp_path / "n.npz", num_classes=3)
    np.savez(tmp_path / "m.npz", x=x, y=np.array([0, 1, 1]))
    with pytest.raises(DataError, match=r"shape \(3,\), but there are 2 sequences"):
        load_npz(tmp_path / "m.npz")


def test_load_tabular_dispatches_on_suffix(tmp_path: Path) -> None:
    p = _write(tmp_path, "d.tsv", "a\tb\n1\t2\n")
    (ex,) = load_tabular(p, label="b")
    assert ex.x.tolist() == [[1.0]]
    with pytest.raises(DataError, match="unsupported data file type '.parquet'"):
        load_tabular(tmp_path / "d.parquet")
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 1)))
    with pytest.raises(DataError, match="option 'label' does not apply to .npy files"):
        load_tabular(tmp_path / "x.npy", label="y")
