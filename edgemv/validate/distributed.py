"""Data-parallel evaluation with torch.distributed: every rank evaluates its share, rank 0 gets everything.

Started by ``torchrun --nproc-per-node N -m edgemv validate ...``: torchrun sets RANK / WORLD_SIZE /
MASTER_ADDR / MASTER_PORT, and :func:`setup` joins the process group (gloo on the CPU, NCCL on CUDA). Without those
variables everything runs in one process and these helpers are no-ops.

Sharding is by blocks of ``batch_size`` images, dealt round-robin: rank r evaluates blocks r, r + N, r + 2N ...
So each rank's batches are exactly the batches a single process would form (while no file is skipped), and
the per-image values merged on rank 0 in image order reproduce the single-process result.
"""

import os
from dataclasses import dataclass
from typing import Any, List

__all__ = ["DistContext", "setup", "shard_indices", "gather_to_rank0", "broadcast_from_rank0", "teardown"]


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    owns_group: bool = False  # this module initialised the process group (and tears it down)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str = "cpu") -> DistContext:
    """Join the process group torchrun describes in the environment; a single-process context otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    owns = False
    if not dist.is_initialized():
        if backend == "nccl":
            import torch

            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
        owns = True
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local,
                       backend=dist.get_backend(), owns_group=owns)


def shard_indices(n: int, block: int, ctx: DistContext) -> List[int]:
    """The item indices rank ``ctx.rank`` evaluates: blocks of ``block`` consecutive items, round-robin."""
    if not ctx.enabled:
        return list(range(n))
    out: List[int] = []
    for b, start in enumerate(range(0, n, block)):
        if b % ctx.world_size == ctx.rank:
            out.extend(range(start, min(n, start + block)))
    return out


def gather_to_rank0(obj: Any, ctx: DistContext) -> List[Any]:
    """Every rank's ``obj`` on rank 0 (in rank order); other ranks get an empty list."""
    if not ctx.enabled:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out if ctx.is_main else []


def broadcast_from_rank0(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (so all ranks exit with the same status)."""
    if not ctx.enabled:
        return obj
    import torch.distributed as dist

    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and ctx.owns_group:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
