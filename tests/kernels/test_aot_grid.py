"""The dispatcher's choices for every standard-library cell across the
issue's grid (hidden 64..1024 x batch 1, 16, 64), decided and compiled ahead
of time for H100 (sm_90) and A100 (sm_80) with no GPU: whatever it would
launch fits the target's shared memory and spills nothing, except the
configurations named below with the bytes they spill; where no kernel can
run a cell, the dispatcher says why and the torch backend runs the layer.

Batch only sets how many batch tiles (of 16) run side by side; the kernels
are the same for every batch (compiled once, kernels/aot.py memoizes them),
but a split must keep tiles x programs within the multiprocessor count, so
batch 1, 16 and 64 are all checked.
"""
from __future__ import annotations

import pytest

from _kernel_cases import library_ir

triton = pytest.importorskip("triton")

from rnnspec.kernels import aot, codegen  # noqa: E402
from rnnspec.spec.loader import standard_library  # noqa: E402

HIDDEN = (64, 128, 256, 512, 768, 1024)
BATCHES = (1, 16, 64)
CELLS = sorted(standard_library())

# Cells the kernels cannot express at all (the reason --explain prints).
NO_KERNEL = {"second_order": "outer(...)"}

# Cells whose products read a value computed within the step (Jordan's
# V @ h', RMLP's W2 @ h1'): one program per batch tile only, so their size is
# bounded; the largest hidden size on the kernels in float32 (measured; a
# regression that makes a size stop fitting, or start spilling, fails here).
SINGLE_ONLY_LARGEST = {
    ("jordan", "sm_90"): 128, ("jordan", "sm_80"): 128,
    ("rmlp", "sm_90"): 64, ("rmlp", "sm_80"): 64,
}

# (cell, hidden, target) -> bytes spilled by the configuration the dispatcher
# accepts because none fits without spilling (within aot.SPILL_LIMIT).
ACCEPTED_SPILLS: dict[tuple[str, int, str], int] = {
    ("jordan", 128, "sm_90"): 416, ("jordan", 128, "sm_80"): 296,
}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["sm_90", "sm_80"])
@pytest.mark.parametrize("cell", CELLS)
def test_dispatcher_choices_fit_and_do_not_spill(cell: str, target: str) -> None:
    seen = []
    for hidden in HIDDEN:
        ir = library_ir(cell, input_size=hidden, hidden=hidden)
        for batch in BATCHES:
            r = aot.plan_for_target(ir, batch, target)
            seen.append((hidden, batch, r["choice"], r.get("programs"), r.get("spills")))
            if r["choice"] == "torch":
                assert r["why"], (cell, hidden, batch, target)
                continue
            assert r["fits"], (cell, hidden, batch, target, r)
            assert r["forward"]["shared"] <= r["shared_limit"] and r["backward"]["shared"] <= r["shared_limit"]
            assert max(r["forward"]["registers"], r["backward"]["registers"]) <= aot.MAX_REGISTERS
            if r["spills"]:
                # accepted only where nothing fits without spilling, and named here with its figure
                assert "accepted" in r["why"], r
                assert ACCEPTED_SPILLS.get((cell, hidden, target)) == r["spills"], (cell, hidden, target, r["spills"])
            if r["choice"] == "stream":
                assert r["weights"] == "streamed" and "L2" in r["why"]
    on_kernels = {h for h, b, choice, _, _ in seen if choice != "torch" and b == 16}
    if cell in NO_KERNEL:
        assert not on_kernels, seen
        why = aot.plan_for_target(library_ir(cell, input_size=64, hidden=64), 16, target)["why"]
        assert NO_KERNEL[cell] in why, why
    elif codegen.split_reasons(library_ir(cell)):
        assert max(on_kernels) >= SINGLE_ONLY_LARGEST[(cell, target)], seen
    else:
        # the split kernels, streamed where the weights do not fit on chip, take every size
        assert all(choice != "torch" for _, _, choice, _, _ in seen), seen
    named = {(c, h) for c, h, t in ACCEPTED_SPILLS if c == cell and t == target}
    assert named <= {(cell, h) for h, _, _, _, s in seen if s}, "a named spill no longer happens: update the table"


def test_streamed_split_is_the_answer_for_large_weights() -> None:
    """LSTM at hidden 1024 holds 16 MiB of float32 recurrent weights: no
    number of programs keeps them on chip, the streamed split runs it."""
    ir = library_ir("lstm", input_size=64, hidden=1024)
    assert codegen.split_plan(ir, 64).weight_floats * 4 > aot.SHARED_LIMIT[90]
    assert aot.stream_programs(ir, tiles=1, sms=132) == 64  # 16 units each
    assert aot.stream_programs(ir, tiles=16, sms=132) == 8  # batch 256: 16 tiles share the GPU
    assert aot.stream_programs(library_ir("lstm", hidden=40), tiles=1, sms=132) == 2  # at least 16 units a program
