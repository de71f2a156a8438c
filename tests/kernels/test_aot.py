"""The generated kernels compile ahead of time for H100 (sm_90) and A100
(sm_80) with Triton's own ptxas, no GPU needed, and at the sizes the
single-program design is meant for they fit shared memory and do not spill.

Measured (batch tile 16, float32, 8 warps; forward / backward):
  lstm  H=64  sm_90: 69632 / 159744 B shared, 126 / 150 registers, 0 spills
  elman H=128 sm_90: 73728 / 172032 B shared, 142 / 178 registers, 0 spills
LSTM at H=128 needs 270 KB / 582 KB of shared memory in one program: more
than a block has.  There the multi-program kernels take over:
  lstm  H=128, 4 programs per tile, sm_90:  73728 / 139264 B, 128 / 183 registers, 0 spills
  lstm  H=256, 16 programs per tile, sm_80: 81920 / 147456 B, 172 / 208 registers, 0 spills
"""
from __future__ import annotations

import os
import shutil

import pytest

from _kernel_cases import library_ir

triton = pytest.importorskip("triton")

from rnnspec.kernels import aot  # noqa: E402


def _have_tools() -> bool:
    return os.path.exists(aot._tool("cuobjdump")) and os.path.exists(aot._tool("ptxas"))


pytestmark = pytest.mark.skipif(not _have_tools(), reason="triton wheel without ptxas/cuobjdump")


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    old = os.environ.get("RNNSPEC_CACHE")
    os.environ["RNNSPEC_CACHE"] = str(tmp_path_factory.mktemp("aot"))
    yield
    if old is None:
        os.environ.pop("RNNSPEC_CACHE", None)
    else:
        os.environ["RNNSPEC_CACHE"] = old


@pytest.mark.parametrize(
    "cell, hidden, target",
    [("lstm", 64, "sm_90"), ("lstm", 64, "sm_80"), ("elman", 128, "sm_90"), ("gru", 64, "sm_80")],
)
def test_compiles_fits_and_does_not_spill(cell, hidden, target):
    ir = library_ir(cell, input_size=hidden, hidden=hidden)
    r = aot.resource_report(ir, batch=16, target=target)
    assert r["target"] == target and r["block_b"] == 16
    for which in ("forward", "backward"):
        k = r[which]
        assert 0 < k["registers"] <= aot.MAX_REGISTERS, (which, k)
        assert k["shared"] <= r["shared_limit"], (which, k)
        assert k["spills"] == 0, (which, k)
    assert r["fits"]


@pytest.mark.parametrize("cell, hidden, programs, target", [("lstm", 128, 4, "sm_90"), ("lstm", 256, 16, "sm_80")])
def test_split_kernels_compile_fit_and_do_not_spill(cell, hidden, programs, target):
    """The multi-program kernels (grid barrier included) at sizes one program
    cannot hold: 16 programs per batch tile hold LSTM H=256."""
    ir = library_ir(cell, input_size=hidden, hidden=hidden)
    r = aot.resource_report(ir, batch=16, target=target, split=programs)
    assert r["programs"] == programs
    assert r["fits"], r
    assert r["spills"] == 0, r


def test_too_large_for_one_program_is_reported():
    r = aot.resource_report(library_ir("lstm", input_size=16, hidden=128), batch=16, target="sm_90")
    assert not r["fits"]
    assert r["forward"]["shared"] > r["shared_limit"]


def test_report_table():
    r = aot.resource_report(library_ir("elman", input_size=8, hidden=32), batch=16, target="sm_90")
    text = aot.format_report([r])
    assert "elman" in text and "sm_90" in text
    assert r["forward"]["spills"] == 0 and r["backward"]["spills"] == 0


def test_cuobjdump_is_the_one_in_the_wheel():
    assert shutil.which(aot._tool("cuobjdump"))
