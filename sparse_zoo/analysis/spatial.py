"""Where the nonzero weights sit: per-kernel counts and magnitudes of a conv layer (paper fig. 5)."""
from __future__ import annotations

import torch
from torch import nn


def get_layer(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules:
        convs = [n for n, m in modules.items() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
        raise ValueError(f"model has no layer {layer!r}; conv layers: {', '.join(convs[-8:])} ...")
    return modules[layer]


@torch.no_grad()
def kernel_maps(model: nn.Module, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(nonzeros, abs_sum) of each (out, in) kernel of a conv layer, as two (out, in) matrices."""
    module = get_layer(model, layer)
    weight = getattr(module, "weight", None)
    if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) or weight is None:
        raise ValueError(f"{layer!r} is a {type(module).__name__}, not a conv layer")
    flat = weight.detach().float().flatten(2)
    return (flat != 0).sum(dim=2), flat.abs().sum(dim=2)
