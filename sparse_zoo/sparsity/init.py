"""Turning a dense model into a masked one."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .distributions import layer_counts, layer_densities
from .masks import MaskConfig, maskable_layers, set_mask, topk_mask

ScoreFn = Callable[[str, nn.Module, torch.Generator], torch.Tensor]


def random_scores(name: str, module: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """Uniform random scores: a random topology with an exact nonzero count (SET/RigL init)."""
    return torch.rand(module.weight.shape, generator=generator)


def magnitude_scores(name: str, module: nn.Module, generator: torch.Generator) -> torch.Tensor:
    """Keep the largest-magnitude weights (one-shot magnitude pruning)."""
    return module.weight.detach().abs().float().cpu()


def plan(model: nn.Module, sparsity: float, distribution: str = "uniform",
         config: MaskConfig | None = None, **options) -> dict[str, int]:
    """Exact nonzero count per maskable layer for a global ``sparsity`` (no model change)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity {sparsity} is outside [0, 1)")
    layers = maskable_layers(model, config)
    modules = dict(model.named_modules())
    shapes = {n: tuple(modules[n].weight.shape) for n in layers}
    fixed = {n: d for n, d in layers.items() if d is not None}
    densities = layer_densities(distribution, shapes, fixed, 1.0 - sparsity, **options)
    return layer_counts(shapes, densities, fixed, 1.0 - sparsity)


@torch.no_grad()
def sparsify(model: nn.Module, sparsity: float, distribution: str = "uniform",
             config: MaskConfig | None = None, *, seed: int = 0,
             scores: ScoreFn = random_scores, **options) -> dict[str, int]:
    """Register a ``weight_mask`` on every maskable layer that is not dense, zero the rest.

    Layers whose count equals their size get no mask. The masks are drawn on the CPU
    from one generator seeded with ``seed`` in model order, so the same call gives the
    same masks on any device. Returns the nonzero counts per layer.
    """
    counts = plan(model, sparsity, distribution, config, **options)
    modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(seed)
    for name, k in counts.items():
        module = modules[name]
        if k == module.weight.numel():
            continue
        set_mask(module, topk_mask(scores(name, module, generator), k))
    return counts
