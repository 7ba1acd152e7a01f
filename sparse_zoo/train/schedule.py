"""Learning-rate schedules as pure functions of the optimisation step.

A schedule's whole state is the step counter, so a resumed run sets exactly the
learning rate the uninterrupted run had. ``SCHEDULES`` maps a recipe's
``lr_schedule`` to a function ``(recipe, step, steps_per_epoch) -> lr`` for the
post-warm-up part; :func:`lr_at` adds the linear warm-up.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch

from .recipes import Recipe

ScheduleFn = Callable[[Recipe, int, int], float]
SCHEDULES: dict[str, ScheduleFn] = {}


def register_schedule(name: str) -> Callable[[ScheduleFn], ScheduleFn]:
    def wrap(fn: ScheduleFn) -> ScheduleFn:
        SCHEDULES[name] = fn
        return fn
    return wrap


@register_schedule("cosine")
def cosine(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """Cosine from ``lr`` at the end of warm-up to ``min_lr`` at the last step."""
    start = round(recipe.warmup_epochs * steps_per_epoch)
    total = max(recipe.epochs * steps_per_epoch - start, 1)
    t = min(max(step - start, 0) / total, 1.0)
    return recipe.min_lr + 0.5 * (recipe.lr - recipe.min_lr) * (1.0 + math.cos(math.pi * t))


@register_schedule("step")
def step_decay(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """``lr x decay_rate ** floor(epoch / decay_epochs)`` (ResNet-50: x0.1 at epochs 30 and 60)."""
    epoch = step // steps_per_epoch
    return recipe.lr * recipe.decay_rate ** math.floor(epoch / recipe.decay_epochs)


@register_schedule("constant")
def constant(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    return recipe.lr


def check_schedule(name: str) -> None:
    if name not in SCHEDULES:
        close = difflib.get_close_matches(name, SCHEDULES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown lr_schedule {name!r}{hint}; valid: {', '.join(sorted(SCHEDULES))}")


def lr_at(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """Learning rate of optimisation step ``step`` (0-based), warm-up included."""
    check_schedule(recipe.lr_schedule)
    warmup = round(recipe.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return recipe.warmup_lr + (recipe.lr - recipe.warmup_lr) * step / warmup
    return SCHEDULES[recipe.lr_schedule](recipe, step, steps_per_epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
