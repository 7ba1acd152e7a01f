"""Data-parallel training under ``torchrun``: process-group set-up and the few collectives we need.

Every rank builds the same model from the same seed, so DDP's initial broadcast is a
no-op check, and the DST engine (seeded by (seed, step), gradient scores all-reduced)
keeps masks identical; :func:`masks_agree` verifies that after training.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from sparse_zoo.sparsity import masks


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this module created the process group and destroys it

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment (gloo on
    CPU, nccl on CUDA); a single process without those variables needs no group."""
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Dist()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), owned=True)


def check_batch(global_batch: int, world: int) -> None:
    if global_batch % world:
        raise ValueError(f"the global batch size {global_batch} is not divisible by the {world} processes; "
                         f"set batch_size to a multiple of {world} (e.g. {global_batch - global_batch % world or world})")


def all_sum(values: list[float], ctx: Dist, device: torch.device) -> list[float]:
    """Sum numbers over ranks (float64)."""
    if not ctx.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool, ctx: Dist, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (a Ctrl-C seen by one rank stops all)."""
    return bool(all_sum([float(flag)], ctx, device)[0]) if ctx.enabled else flag


def mask_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, mask in masks(model).items():
        h.update(name.encode())
        h.update(mask.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def masks_agree(model: nn.Module, ctx: Dist) -> bool:
    """Whether every rank holds exactly the same masks."""
    if not ctx.enabled:
        return True
    digests: list[str | None] = [None] * ctx.world
    dist.all_gather_object(digests, mask_digest(model))
    return len(set(digests)) == 1


def sync_buffers(model: nn.Module, ctx: Dist) -> None:
    """Copy rank 0's floating-point and integer buffers (BatchNorm statistics) to every
    rank; masks are compared, never overwritten (see :func:`masks_agree`)."""
    if ctx.enabled:
        for buffer in model.buffers():
            if buffer.dtype != torch.bool:
                dist.broadcast(buffer, 0)


def cleanup(ctx: Dist) -> None:
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
