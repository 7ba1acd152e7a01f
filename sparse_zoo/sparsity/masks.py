"""Masks as bool buffers beside the weights they mask.

A masked module carries ``weight_mask`` (bool, same shape as ``weight``) registered
as a buffer, so the mask is part of ``state_dict()``, moves with ``.to()`` and is
saved with the weights. ``weight`` stays an ordinary parameter (no
parametrizations) so timm's key names, head resets and stem adaptation keep working.
The invariant every tool keeps: a masked weight is exactly zero outside its mask.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

MASK_SUFFIX = "_mask"
MASKABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class MaskConfig:
    """Which layers get masks.

    ``dense_first`` / ``dense_classifier`` keep the stem conv / the classifier dense
    (their weights still count in the global budget). ``overrides`` maps fnmatch
    patterns over module names to a fixed density (1.0 keeps a layer dense);
    ``exclude`` patterns leave layers out of masking and out of the budget.
    """

    dense_first: bool = False
    dense_classifier: bool = False
    overrides: dict[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()


def _module_name_of(model: nn.Module, key: str) -> str | None:
    """Resolve a pretrained_cfg entry such as ``'conv1'`` or ``'fc'`` to a module name."""
    names = dict(model.named_modules())
    for cand in (key, key.rsplit(".weight", 1)[0]):
        if cand in names:
            return cand
    return None


def first_and_classifier(model: nn.Module) -> tuple[str | None, list[str]]:
    """The stem conv and the classifier layers, from timm's pretrained_cfg when present."""
    layers = [n for n, m in model.named_modules() if isinstance(m, MASKABLE_TYPES)]
    cfg = getattr(model, "pretrained_cfg", None) or {}
    first = _module_name_of(model, cfg["first_conv"]) if cfg.get("first_conv") else None
    classifier = cfg.get("classifier")
    if isinstance(classifier, str):
        classifier = [classifier]
    heads = [h for h in (_module_name_of(model, c) for c in classifier or []) if h]
    if first is None and layers:
        first = layers[0]
    if not heads and layers:
        heads = [layers[-1]]
    return first, heads


def maskable_layers(model: nn.Module, config: MaskConfig | None = None) -> dict[str, float | None]:
    """Every Conv1d/2d/3d and Linear layer that takes part in the sparsity budget.

    Returns ``{module_name: fixed_density_or_None}``; ``None`` means the density is
    chosen by the distribution, a number means it is fixed (dense = 1.0).
    """
    config = config or MaskConfig()
    first, heads = first_and_classifier(model)
    out: dict[str, float | None] = {}
    for name, module in model.named_modules():
        if not isinstance(module, MASKABLE_TYPES) or module.weight is None:
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in config.exclude):
            continue
        fixed = None
        if (config.dense_first and name == first) or (config.dense_classifier and name in heads):
            fixed = 1.0
        for pattern, density in config.overrides.items():
            if fnmatch.fnmatchcase(name, pattern):
                if not 0.0 < float(density) <= 1.0:
                    raise ValueError(f"override {pattern!r}: density {density} is outside (0, 1]")
                fixed = float(density)
        out[name] = fixed
    return out


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask with exactly ``k`` True at the largest ``scores``; ties go to the lower flat index.

    Linear-time selection (``kthvalue``) instead of a full sort: the k-th largest
    score is the threshold and everything at or above it is kept; only when
    threshold-valued entries overflow ``k`` are the ones with the highest flat
    indices dropped again (the same result as a stable descending sort).
    ``scores`` must not contain NaN.
    """
    flat = scores.reshape(-1)
    n = flat.numel()
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is outside [0, {n}]")
    if k == 0 or k == n:
        return torch.full(scores.shape, k == n, dtype=torch.bool, device=flat.device)
    threshold = flat.kthvalue(n - k + 1).values
    mask = flat >= threshold
    extra = int(mask.sum()) - k
    if extra:
        ties = torch.nonzero(flat == threshold).squeeze(1)
        mask[ties[ties.numel() - extra:]] = False
    return mask.view(scores.shape)


def has_mask(module: nn.Module, param: str = "weight") -> bool:
    return isinstance(getattr(module, param + MASK_SUFFIX, None), torch.Tensor)


def masked_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) for every module that carries a ``weight_mask`` buffer, in model order."""
    for name, module in model.named_modules():
        if has_mask(module):
            yield name, module


def set_mask(module: nn.Module, mask: torch.Tensor, param: str = "weight") -> None:
    """Register (or replace in place) the bool mask of ``module.<param>`` and zero the weight outside it."""
    weight = getattr(module, param)
    if tuple(mask.shape) != tuple(weight.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit {param} of shape {tuple(weight.shape)}")
    mask = mask.to(device=weight.device, dtype=torch.bool)
    name = param + MASK_SUFFIX
    if has_mask(module, param):
        getattr(module, name).copy_(mask)
    else:
        module.register_buffer(name, mask.clone())
    with torch.no_grad():
        weight.mul_(getattr(module, name))


def remove_masks(model: nn.Module) -> None:
    """Drop every mask buffer (the weights keep their zeros)."""
    for _, module in list(masked_modules(model)):
        del module._buffers["weight" + MASK_SUFFIX]


@torch.no_grad()
def apply_masks(model: nn.Module) -> None:
    """Zero every masked weight outside its mask (restores the invariant after an optimizer step)."""
    for _, module in masked_modules(model):
        module.weight.mul_(module.weight_mask)


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{module_name: mask}`` (the buffers themselves, not copies)."""
    return {name: module.weight_mask for name, module in masked_modules(model)}


def check_masks(model: nn.Module) -> None:
    """Raise ValueError naming the first tensor that breaks the mask invariant."""
    for name, module in masked_modules(model):
        mask, weight = module.weight_mask, module.weight
        if mask.dtype != torch.bool or mask.shape != weight.shape:
            raise ValueError(f"{name}.weight_mask: expected bool of shape {tuple(weight.shape)}, "
                             f"got {mask.dtype} of shape {tuple(mask.shape)}")
        outside = int(torch.count_nonzero(weight.detach()[~mask]))
        if outside:
            raise ValueError(f"{name}.weight has {outside} nonzero values outside {name}.weight_mask")


def mask_gradients(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Zero gradients outside the masks, so any optimizer keeps the model exactly as sparse.

    For fine-tuning with frozen masks: with zero weights and zero gradients outside the
    mask, SGD (momentum, coupled or decoupled weight decay), Adam and AdamW never
    move a pruned weight. Returns the hook handles (``h.remove()`` to undo).
    """
    handles = []
    for _, module in masked_modules(model):
        handles.append(module.weight.register_hook(lambda g, m=module: g * m.weight_mask))
    return handles
