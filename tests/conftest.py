"""Test-wide setup.

Without a GPU, Triton kernels run under its interpreter on the CPU: that must
be set before triton is first imported, so it happens here, once.  ``gpu``
tests run only where CUDA is present.
"""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Keep CPU tests predictable and fast on the 2-core CI machine.
torch.set_num_threads(1)  # tiny tensors: threads only add synchronisation


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); CI checks kernels under TRITON_INTERPRET=1")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
