"""The dispatcher's choices across the issue's grid, decided and compiled
ahead of time for H100 (sm_90) and A100 (sm_80) with no GPU: whatever it
would launch fits the target's shared memory and spills nothing; where
nothing fits, it says so and the torch backend runs the layer.

Batch only sets how many batch tiles (of 16) run side by side; the kernels
are the same for every batch, but a split must keep tiles x programs within
the multiprocessor count, so batch 1, 16 and 64 are all checked.
"""
from __future__ import annotations

import pytest

from _kernel_cases import library_ir

triton = pytest.importorskip("triton")

from rnnspec.kernels import aot  # noqa: E402

HIDDEN = (64, 128, 256, 512, 768, 1024)

# The largest hidden size each cell runs on Triton kernels in float32 (measured;
# a regression that makes a size stop fitting, or start spilling, fails here).
LARGEST_FP32 = {
    ("lstm", "sm_90"): 256, ("lstm", "sm_80"): 256,
    ("gru", "sm_90"): 512, ("gru", "sm_80"): 256,
    ("elman", "sm_90"): 1024, ("elman", "sm_80"): 512,
}

# (cell, hidden, target) -> bytes spilled by the only configuration that fits.
ACCEPTED_SPILLS: dict[tuple[str, int, str], int] = {("gru", 512, "sm_90"): 80}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["sm_90", "sm_80"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_dispatcher_choices_fit_and_do_not_spill(cell: str, target: str) -> None:
    seen = []
    for hidden in HIDDEN:
        ir = library_ir(cell, input_size=hidden, hidden=hidden)
        for batch in (1, 16, 64):
            r = aot.plan_for_target(ir, batch, target)
            seen.append((hidden, batch, r["choice"], r.get("programs")))
            if r["choice"] == "torch":
                assert r["why"], (cell, hidden, batch, target)
                continue
            assert r["fits"], (cell, hidden, batch, target, r)
            if r["spills"]:
                # accepted only where nothing fits without spilling, and named here with its figure
                assert "accepted" in r["why"], r
                assert ACCEPTED_SPILLS.get((cell, hidden, target)) == r["spills"], (cell, hidden, target, r["spills"])
            assert r["forward"]["shared"] <= r["shared_limit"] and r["backward"]["shared"] <= r["shared_limit"]
    runs = {h for h, b, choice, _ in seen if choice != "torch" and b == 16}
    assert max(runs) >= LARGEST_FP32[(cell, target)], seen
