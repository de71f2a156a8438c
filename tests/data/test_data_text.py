"""Text corpora: tokenization, vocabularies, chunking, file errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.data import BatchIterator, DataError
from rnnspec.data.text import (
    EOS,
    UNK,
    ContiguousBatches,
    LanguageModelChunks,
    Vocab,
    builtin_corpus,
    language_model_data,
    read_text,
    tokenize,
)


def test_tokenize_levels() -> None:
    assert tokenize("ab\nc", "char") == ["a", "b", "\n", "c"]
    assert tokenize("the cat\nsat  down\n", "word") == ["the", "cat", EOS, "sat", "down", EOS]
    assert tokenize("no newline", "word") == ["no", "newline"]
    with pytest.raises(DataError, match="did you mean 'word'"):
        tokenize("x", "wrd")


def test_vocab_build_is_deterministic_and_maps_unseen_to_unk() -> None:
    v = Vocab.build("abracadabra", "char")
    assert v.tokens[:2] == ("<pad>", UNK) and v.pad_index == 0 and v.unk_index == 1
    assert v.tokens[2:] == ("a", "b", "r", "c", "d")  # by frequency, ties alphabetical
    ids = v.encode("abz")
    assert ids.dtype == torch.int64 and ids.tolist() == [2, 3, 1]
    assert v.decode(ids) == "ab" + UNK
    w = Vocab.build(["the cat sat\n", "the dog"], "word", min_freq=2)
    assert w.tokens == ("<pad>", UNK, EOS, "the")
    assert w.encode("the cat").tolist() == [3, 1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["alpha", "beta", "gamma", "\n"]), max_size=20))
def test_word_decode_inverts_encode(words: list[str]) -> None:
    text = ""
    for w in words:
        text += w if w == "\n" or not text or text.endswith("\n") else " " + w
    v = Vocab.build(text, "word")
    assert v.decode(v.encode(text)) == text


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
def test_char_decode_inverts_encode(text: str) -> None:
    v = Vocab.build(text, "char")
    assert v.decode(v.encode(text)) == text


def test_vocab_save_load_roundtrip(tmp_path: Path) -> None:
    v = Vocab.build("héllo wörld ✓\n", "char")
    path = tmp_path / "vocab.json"
    v.save(path)
    loaded = Vocab.load(path)
    assert loaded == v and loaded.encode("wörld").tolist() == v.encode("wörld").tolist()
    w = Vocab.build("a b\nc", "word")
    w.save(tmp_path / "w.json")
    assert Vocab.load(tmp_path / "w.json").level == "word"


def test_vocab_load_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match=f"{missing}: no such file"):
        Vocab.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=f"{bad}:1:2: invalid JSON"):
        Vocab.load(bad)
    other = tmp_path / "other.json"
    other.write_text('{"tokens": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match=f"{other}: not an rnnspec vocabulary"):
        Vocab.load(other)
    dup = tmp_path / "dup.json"
    dup.write_text('{"format": "rnnspec-vocab", "version": 1, "level": "char", "tokens": ["<pad>", "<unk>", "a", "a"]}')
    with pytest.raises(DataError, match=f"{dup}: vocabulary has the token 'a' twice"):
        Vocab.load(dup)


def test_read_text_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{tmp_path / 'missing.txt'}: no such file"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_text(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=f"{empty}: file is empty"):
        read_text(empty)
    assert read_text(empty, allow_empty=True) == ""
    latin = tmp_path / "latin.txt"
    latin.write_bytes("first line\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{latin}: not valid utf-8 text \(byte 0xe9 at offset 14, line 2\)"):
        read_text(latin)
    assert read_text(latin, encoding="latin-1").endswith("café\n")


def test_chunks_are_shifted_views_that_cover_the_corpus() -> None:
    ids = torch.arange(23)
    chunks = LanguageModelChunks(ids, 5)
    assert len(chunks) == 5  # 22 predictable positions -> 4 full chunks + 1 of 2
    assert [c.length for c in chunks] == [5, 5, 5, 5, 2]
    assert torch.equal(torch.cat([c.x for c in chunks]), ids[:-1])
    assert torch.equal(torch.cat([c.y for c in chunks]), ids[1:])
    assert all(c.x.untyped_storage().data_ptr() == ids.untyped_storage().data_ptr() for c in chunks)
    assert chunks[-1].x.tolist() == [20, 21]
    assert len(LanguageModelChunks(ids, 5, drop_last=True)) == 4
    with pytest.raises(DataError, match="at least 2 tokens"):
        LanguageModelChunks(torch.tensor([1]), 5)
    batch = next(iter(BatchIterator(chunks, 3, seed=0)))
    assert batch.per_step and batch.x.shape == batch.y.shape


def test_contiguous_batches_continue_each_stream() -> None:
    ids = torch.arange(41)
    batches = ContiguousBatches(ids, batch_size=4, seq_len=3)  # streams of 10 tokens
    assert len(batches) == 3
    rows = torch.cat([b.x for b in batches], dim=1)
    assert torch.equal(rows, ids[:40].view(4, 10)[:, :9])
    for b in batches:
        assert torch.equal(b.y, b.x + 1)
        assert b.lengths.tolist() == [b.x.shape[1]] * 4
    tm = ContiguousBatches(ids, 4, 3, batch_first=False)[0]
    assert tm.x.shape == (3, 4)


def test_language_model_data_builds_the_vocab_from_train_only() -> None:
    text = "aaaa bbbb " * 20 + "zzzz"
    data = language_model_data(text, level="char", seq_len=8, validation=0.0, test=0.02)
    assert data.validation is None
    assert "z" not in data.vocab  # only in the test part
    test_ids = data.test.ids
    assert (test_ids == data.vocab.unk_index).any()
    assert data.train.ids.numel() + test_ids.numel() == len(text)
    with pytest.raises(DataError, match="validation split"):
        language_model_data("abc", validation=0.1, test=0.0)
    with pytest.raises(DataError, match="is char-level"):
        language_model_data(text, level="word", vocab=data.vocab)


def test_builtin_corpus_pipeline() -> None:
    text = builtin_corpus("pydoc_topics")
    assert 300_000 < len(text) < 700_000
    assert text == builtin_corpus()
    data = language_model_data(text, level="char", seq_len=128)
    assert data.train.num_tokens + data.validation.num_tokens + data.test.num_tokens == len(text)
    ex = data.train[10]
    assert data.vocab.decode(ex.x) == text[1280 : 1280 + 128]
    with pytest.raises(DataError, match="did you mean 'pydoc_topics'"):
        builtin_corpus("pydoc_topic")


@pytest.mark.slow
def test_a_full_epoch_of_the_builtin_corpus_reconstructs_it() -> None:
    data = language_model_data(builtin_corpus(), level="word", seq_len=35, validation=0.0, test=0.0)
    it = BatchIterator(data.train, 20, seed=0, bucket=5)
    rows: list[torch.Tensor] = []
    for batch in it:
        assert batch.per_step and torch.equal(batch.x[:, 1:][batch.step_mask[:, 1:]], batch.y[:, :-1][batch.step_mask[:, 1:]])
        rows += [row[:n] for row, n in zip(batch.x, batch.lengths.tolist())]
    assert len(rows) == len(data.train)
    # every chunk seen once: sorting the chunks by content gives back the corpus, token for token
    expected = sorted(tuple(c.x.tolist()) for c in data.train)
    assert sorted(tuple(r.tolist()) for r in rows) == expected
    assert sum(len(r) for r in rows) == data.train.num_tokens - 1
