"""A folder of files, one sequence per file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnnspec.data import DataError, collate, train_validation_test
from rnnspec.data.folder import load_folder
from rnnspec.data.text import Vocab


def _npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)


def test_npy_folder_with_class_subfolders(tmp_path: Path) -> None:
    _npy(tmp_path / "music" / "b.npy", np.ones((4, 2)))
    _npy(tmp_path / "speech" / "a.npy", np.zeros((3, 2)))
    _npy(tmp_path / "music" / "a.npy", np.full((2, 2), 2.0))
    (tmp_path / "music" / ".hidden.npy").write_bytes(b"junk")
    (tmp_path / "README.md").write_text("not data")
    data = load_folder(tmp_path)
    assert data.classes == ["music", "speech"]
    assert [f.relative_to(tmp_path).as_posix() for f in data.files] == ["music/a.npy", "music/b.npy", "speech/a.npy"]
    assert [int(ex.y) for ex in data.examples] == [0, 0, 1]
    assert [ex.length for ex in data.examples] == [2, 4, 3]
    assert data.examples[0].x.dtype == torch.float32 and data.vocab is None
    b = collate(data.examples)
    assert b.x.shape == (3, 4, 2) and b.extras["file"][2].endswith("a.npy")
    fixed = load_folder(tmp_path, classes=["speech", "music"])
    assert [int(ex.y) for ex in fixed.examples] == [1, 1, 0]
    split = train_validation_test(data.examples, validation=0.34, test=0.0, seed=0)
    assert len(split.train) + len(split.validation) == 3


def test_txt_folder_encodes_with_a_vocab(tmp_path: Path) -> None:
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    (tmp_path / "pos" / "1.txt").write_text("good fun", encoding="utf-8")
    (tmp_path / "neg" / "1.txt").write_text("bad", encoding="utf-8")
    data = load_folder(tmp_path, level="word")
    assert data.classes == ["neg", "pos"] and data.vocab is not None
    assert data.vocab.decode(data.examples[1].x) == "good fun"
    given = Vocab.build("good", "word")
    again = load_folder(tmp_path, level="word", vocab=given)
    assert again.examples[0].x.tolist() == [given.unk_index]
    with pytest.raises(DataError, match="is word-level but level='char'"):
        load_folder(tmp_path, vocab=given)


def test_csv_folder_unlabelled_with_header_and_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("t,v,w\n0,1.5,2\n1,2.5,3\n")
    (tmp_path / "b.csv").write_text("t,v,w\n0,9,9\n")
    data = load_folder(tmp_path, columns=["v", "w"])
    assert data.classes is None and all(ex.y is None for ex in data.examples)
    assert data.examples[0].x.tolist() == [[1.5, 2.0], [2.5, 3.0]]
    with pytest.raises(DataError, match=r"no column 'vv' \(did you mean 'v'\?\)"):
        load_folder(tmp_path, columns=["vv"])
    (tmp_path / "c.csv").write_text("t,v,w\n0,x,1\n")
    with pytest.raises(DataError, match=r"c.csv: row 2 column v: 'x' is not a number"):
        load_folder(tmp_path)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no .csv/.npy/.txt files found"):
        load_folder(tmp_path)
    _npy(tmp_path / "x" / "a.npy", np.zeros((2, 3)))
    (tmp_path / "x" / "b.txt").write_text("hi")
    with pytest.raises(DataError, match="mixes '.npy', '.txt' files"):
        load_folder(tmp_path)
    data = load_folder(tmp_path, suffixes=["npy"])
    assert len(data.examples) == 1
    _npy(tmp_path / "loose.npy", np.zeros((2, 3)))
    with pytest.raises(DataError, match="loose.npy: is not inside a class subfolder"):
        load_folder(tmp_path, suffixes=[".npy"], labels="subdirs")
    assert load_folder(tmp_path, suffixes=[".npy"]).classes is None  # auto -> unlabelled
    _npy(tmp_path / "x" / "c.npy", np.zeros((2, 4)))
    with pytest.raises(DataError, match=r"c.npy: per-step shape \(4,\)"):
        load_folder(tmp_path, suffixes=[".npy"], labels="none")
    _npy(tmp_path / "cls" / "cat" / "a.npy", np.zeros((2, 1)))
    with pytest.raises(DataError, match=r"cat: folder is not one of the classes 'cats' \(did you mean 'cats'\?\)"):
        load_folder(tmp_path / "cls", labels="subdirs", classes=["cats"])
