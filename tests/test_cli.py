"""The command line: exit codes, located errors, no tracebacks, dumps."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rnnspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "specs" / "examples" / "char_lm.yaml"


def test_check_valid_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLE)]) == 0
    assert "ok" in capsys.readouterr().out


def test_check_invalid_exits_two_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel:\n  input: {vector: 3}\n  layers:\n    - {cell: lstm, hiden: 4}\n")
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5:20: error: unknown key 'hiden'" in err
    assert "did you mean 'hidden'" in err
    assert "Traceback" not in err


def test_check_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rnn"
    bad.write_text("network n {\n  input vector(3)\n  layer lstm(hidden=4\n}\n")
    r = subprocess.run([sys.executable, "-m", "rnnspec", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{bad}:4:1" in r.stderr and "expected" in r.stderr


@pytest.mark.parametrize("fmt", ["yaml", "rnn"])
def test_dump_round_trips_through_the_cli(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rnnspec

    assert main(["check", str(EXAMPLE), "--dump", fmt]) == 0
    out = tmp_path / f"dumped.{fmt}"
    out.write_text(capsys.readouterr().out)
    assert rnnspec.load(out) == rnnspec.load(EXAMPLE)


def test_compile_without_output_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(EXAMPLE)]) == 2
    assert "nothing to do" in capsys.readouterr().err


def test_graph_shows_hoisting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "hoisted (one GEMM over all steps): W; in the loop: U" in out


def test_missing_file_is_a_located_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "no/such/spec.yaml"]) == 2
    assert "no/such/spec.yaml: error: no such file" in capsys.readouterr().err
