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


@pytest.fixture
def run_standalone(tmp_path):  # noqa: ANN201 - returns the runner
    """Run a module written by ``rnnspec compile -o`` into ``tmp_path`` in a
    fresh interpreter where importing rnnspec fails: the module must stand
    alone.  ``run(module, state_dict, inputs, body)`` loads the weights into
    ``module.Model()`` as ``m``, the inputs as ``inp``, runs ``body`` (which
    sets ``out``) and returns ``out``; ``env`` adds environment variables
    (``TRITON_INTERPRET=1`` runs the module's Triton kernels on the CPU)."""
    import subprocess
    import sys

    def run(module: str, state_dict: dict, inputs: object, body: str, env: dict | None = None) -> object:
        torch.save(state_dict, tmp_path / "weights.pt")
        torch.save(inputs, tmp_path / "inputs.pt")
        script = "\n".join([
            "import sys",
            "sys.modules['rnnspec'] = None  # importing rnnspec now fails",
            f"sys.path.insert(0, {str(tmp_path)!r})",
            f"import torch, {module}",
            f"m = {module}.Model()",
            f"m.load_state_dict(torch.load({str(tmp_path / 'weights.pt')!r}))",
            f"inp = torch.load({str(tmp_path / 'inputs.pt')!r})",
            body,
            f"torch.save(out, {str(tmp_path / 'out.pt')!r})",
        ])
        # TRITON_INTERPRET (set above for in-process kernel tests) would make the
        # module's embedded kernels run: only where a test asks for it (``env``)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRITON_INTERPRET")} | (env or {})
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return torch.load(tmp_path / "out.pt")

    return run
