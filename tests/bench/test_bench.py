"""rnnspec bench runs end to end on a tiny size and returns well-formed rows."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

from rnnspec.bench import cli
from rnnspec.bench.bench import ROW_KEYS, format_table, run_bench


def test_rows_have_the_expected_keys():
    rows = run_bench("lstm", batch=2, hidden=8, steps=3, dtype="float32", backends=["torch", "triton"],
                     device="cpu", repeats=1, compile=False)
    impls = [r["impl"] for r in rows]
    assert impls == ["rnnspec[torch] (eager loop)", "rnnspec[triton]", "torch.nn.LSTM"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert (r["cell"], r["batch"], r["hidden"], r["steps"], r["dtype"], r["device"]) == ("lstm", 2, 8, 3, "float32", "cpu")
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 2
    for r in ok:
        assert r["fwd_tokens_per_s"] > 0 and r["train_tokens_per_s"] > 0
        assert r["fwd_ms_per_step"] > 0 and r["train_ms_per_step"] > 0
        assert r["peak_mem_mb"] > 0 and r["mem_kind"] == "saved for backward"
    triton_row = rows[1]
    assert triton_row["status"] == "skipped" and "CUDA" in triton_row["note"]
    text = format_table(rows)
    assert "torch.nn.LSTM" in text and "fwd tok/s" in text and "skipped" in text


def test_cell_without_torch_equivalent():
    rows = run_bench("indrnn", batch=2, hidden=4, steps=2, backends=["torch"], device="cpu", repeats=1, compile=False)
    assert [r["impl"] for r in rows] == ["rnnspec[torch] (eager loop)"]
    assert rows[0]["status"] == "ok"


def test_unknown_cell_is_a_spec_error():
    from rnnspec.errors import SpecError

    with pytest.raises(SpecError, match="unknown cell 'lstn'.*lstm"):
        run_bench("lstn", batch=1, hidden=4, steps=1, device="cpu", repeats=1, compile=False)


def test_cli_writes_json(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["gru", "--batch", "2", "--hidden", "4,6", "--steps", "2", "--repeats", "1",
                              "--device", "cpu", "--json", str(out), "--no-compile"])
    assert cli.main(args) == 0
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 4 and {r["hidden"] for r in data["rows"]} == {4, 6}
    assert "torch.nn.GRU" in capsys.readouterr().out


def test_cli_rejects_bad_lists():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch", "0"])
