"""Multi-process training: ``torchrun --nproc-per-node N -m rnnspec train spec.yaml``.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup` joins the group (gloo on CPU, nccl on CUDA)
and the trainer wraps the network in
:class:`torch.nn.parallel.DistributedDataParallel`.  Every rank computes
the same global batch order and takes its shard of each batch (examples
``rank::world``; for the contiguous LM stream, a block of rows), so N
processes with a global batch of B train like one process with batch B.
Only rank 0 writes the run directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    enabled: bool = False
    owns_group: bool = False

    @property
    def main(self) -> bool:
        """Whether this process writes logs, checkpoints and the run directory."""
        return self.rank == 0


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    if pref == "cpu" or (pref == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but no CUDA device is available")
    return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))


def setup(device_pref: str = "auto") -> Dist:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=pick_device(device_pref))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local)
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        owns = True
    return Dist(rank=rank, world=world, local_rank=local, device=device, enabled=True, owns_group=owns)


def cleanup(d: Dist, finished: bool = False) -> None:
    """Leave the process group.  After a finished run every process first
    waits for the others: a rank tearing gloo down while another still
    talks to it aborted that one ("terminate called without an active
    exception", seen once in CI after a resumed run had finished).  After
    an error there is no barrier: the others may never arrive."""
    if d.enabled and d.owns_group and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def gather_rows(state: Any, d: Dist, dim: int = 1) -> Any:
    """All ranks' shards of a recurrent state (rows = batch dimension ``dim``),
    concatenated in rank order: the state of the whole global batch."""
    if not d.enabled or state is None:
        return state
    if isinstance(state, torch.Tensor):
        parts = [torch.empty_like(state) for _ in range(d.world)]
        dist.all_gather(parts, state.contiguous())
        return torch.cat(parts, dim)
    return type(state)(gather_rows(s, d, dim) for s in state) if isinstance(state, tuple) else [gather_rows(s, d, dim) for s in state]


def shard_rows(state: Any, d: Dist, dim: int = 1) -> Any:
    """This rank's block of rows of a whole-batch state (inverse of :func:`gather_rows`)."""
    if not d.enabled or state is None:
        return state
    if isinstance(state, torch.Tensor):
        n = state.shape[dim] // d.world
        return state.narrow(dim, d.rank * n, n).clone()
    return type(state)(shard_rows(s, d, dim) for s in state) if isinstance(state, tuple) else [shard_rows(s, d, dim) for s in state]


def broadcast_object(obj: Optional[Any], d: Dist) -> Any:
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
