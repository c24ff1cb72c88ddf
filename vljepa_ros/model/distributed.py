"""torch.distributed for `vljepa-ros train` under torchrun: process group set-up and gathers that keep gradients.

torchrun (or any launcher) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them the
run is one process and nothing here touches torch.distributed. The backend is nccl for a CUDA device when CUDA
is available, else gloo (CPU). On CUDA each process takes the GPU of its LOCAL_RANK.

Gradients of a gathered tensor: GatherRows sums, in backward, every rank's gradient of the gathered copy into
the local rows (torch.distributed.nn.functional.all_gather does the same but is deprecated in torch 2.13; an
all_reduce works on every backend). When every rank computes the same global loss L, the local
rows thus receive world_size x dL/d(rows), and DDP's gradient averaging (divide by world_size) leaves exactly
the gradient of one process holding the whole global batch.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import VLJepaError

_LOG = logging.getLogger(__name__)
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedSetupError(VLJepaError):
    """The torchrun environment is incomplete or the process group cannot be created."""


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process, no process group
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE_PROCESS = DistributedContext()


def choose_backend(device: str) -> str:
    return "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return int(environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "cpu") -> DistributedContext:
    """The context of this process; creates the process group when launched with WORLD_SIZE > 1."""
    if not launched_by_torchrun():
        return DistributedContext(device=device)
    missing = [name for name in LAUNCHER_VARIABLES + ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise DistributedSetupError(f"WORLD_SIZE > 1 but {', '.join(missing)} unset: launch with torchrun")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    backend = choose_backend(device)
    if backend == "nccl":
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    except (RuntimeError, ValueError) as error:
        raise DistributedSetupError(f"cannot create the {backend} process group (rank {rank}/{world_size}): "
                                    f"{error}") from error
    _LOG.info("rank %d/%d (local %d) on %s with %s", rank, world_size, local_rank, device, backend)
    return DistributedContext(rank, world_size, local_rank, backend, device)


def shutdown(context: DistributedContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


class GatherRows(torch.autograd.Function):
    """all_gather along dim 0 whose backward hands each rank the sum over ranks of its rows' gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank, ctx.rows = rank, tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows], None, None


def gather_rows(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Every rank's (n, ...) tensor (same n on each rank) concatenated in rank order; gradients flow back."""
    if not context.distributed:
        return tensor
    return GatherRows.apply(tensor, context.rank, context.world_size)


def gather_objects(items: list, context: DistributedContext) -> list[list]:
    """Every rank's list of picklable items (e.g. answer texts), in rank order."""
    if not context.distributed:
        return [items]
    gathered: list = [None] * context.world_size
    dist.all_gather_object(gathered, items)
    return gathered
