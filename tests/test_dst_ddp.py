"""Two gloo processes on the CPU: masks agree on every rank after every step, for every method."""
from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import sparse_zoo.dst as dst
from sparse_zoo.sparsity import check_masks, masks

STEPS, DT = 10, 2


def _flat_masks(model: nn.Module) -> torch.Tensor:
    found = masks(model)
    return torch.cat([m.flatten() for m in found.values()]).to(torch.uint8) if found else torch.zeros(1, dtype=torch.uint8)


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    results = {}
    for method in dst.methods():
        torch.manual_seed(0)  # same initial weights on every rank, as DDP expects
        model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                              nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 5))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        engine = dst.create(method, model, opt, sparsity=0.7, distribution="erk", delta_t=DT,
                            total_steps=STEPS, seed=7)
        ddp = DistributedDataParallel(model, broadcast_buffers=False)  # masks must agree without help
        first = _flat_masks(model)
        equal, changed = True, False
        gen = torch.Generator().manual_seed(100 + rank)  # every rank sees other data
        for _ in range(STEPS):
            x, y = torch.randn(4, 3, 4, 4, generator=gen), torch.randint(0, 5, (4,), generator=gen)
            nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
            changed |= engine.step()
            opt.zero_grad()
            flat = _flat_masks(model)
            gathered = [torch.empty_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            equal &= all(torch.equal(gathered[0], g) for g in gathered)
        check_masks(model)
        results[method] = {"equal": equal, "changed": changed, "moved": not torch.equal(first, _flat_masks(model))}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


def test_masks_identical_across_two_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        results = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert list(results) == dst.methods()
        for method, r in results.items():
            assert r["equal"], (rank, method)
            assert r["changed"] == (method not in ("dense", "static")), (rank, method)
            assert r["moved"] == (method not in ("dense", "static")), (rank, method)
