"""Optimizers by name, built from a recipe."""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import torch
from timm.optim import param_groups_weight_decay
from torch import nn

from .recipes import Recipe

OptimizerFn = Callable[[list[dict[str, Any]], Recipe], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptimizerFn] = {
    "sgd": lambda groups, r: torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov),
    "adamw": lambda groups, r: torch.optim.AdamW(groups, lr=r.lr, betas=r.betas),
}


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        close = difflib.get_close_matches(name, OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown optimizer {name!r}{hint}; valid: {', '.join(sorted(OPTIMIZERS))}")


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer; ``no_decay_norm_bias`` exempts norms, biases and other 1-d
    parameters from weight decay (DeiT), otherwise every parameter decays (the paper's CNNs)."""
    check_optimizer(recipe.optimizer)
    if recipe.no_decay_norm_bias:
        groups = param_groups_weight_decay(model, recipe.weight_decay)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": recipe.weight_decay}]
    return OPTIMIZERS[recipe.optimizer](groups, recipe)
