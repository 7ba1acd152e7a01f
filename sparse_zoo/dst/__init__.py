"""Dynamic Sparse Training behind one API: ``create(method, model, optimizer, ...)``.

    engine = sparse_zoo.dst.create("rigl", model, optimizer, sparsity=0.9,
                                   distribution="erk", delta_t=100, total_steps=len(loader) * epochs)
    for x, y in loader:
        loss_fn(model(x), y).backward()
        optimizer.step()
        engine.step()          # after optimizer.step(), before zero_grad (see base.py)
        optimizer.zero_grad()

Methods live in a registry (``register_method``); ``methods()`` lists them. Masks
are ``weight_mask`` buffers (``sparse_zoo.sparsity``), so a checkpoint of the model
carries them; ``engine.state_dict()`` adds the step and the schedule settings.
Under DDP, create the engine on the bare model before wrapping it.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..sparsity.masks import MaskConfig
from .acdc import ACDC, ACDCOptions
from .base import EXISTING_MASKS, Engine, ScheduleOptions, Setup
from .granet import GraNetGradient, GraNetOptions, GraNetRandom
from .mest import MESTGradient, MESTOptions, MESTRandom
from .rigl import SET, RigL
from .static import Dense, Static

METHODS: dict[str, type[Engine]] = {}


def register_method(cls: type[Engine]) -> type[Engine]:
    """Add an engine class under its ``name`` (usable as a decorator)."""
    METHODS[cls.name] = cls
    return cls


for _cls in (Dense, Static, SET, RigL, MESTRandom, MESTGradient, GraNetRandom, GraNetGradient, ACDC):
    register_method(_cls)


def methods() -> list[str]:
    """Names accepted by :func:`create`."""
    return list(METHODS)


def method_options(method: str) -> dict[str, object]:
    """The options a method accepts, with their defaults."""
    cls = _lookup(method)
    return {f.name: f.default for f in dataclasses.fields(cls.Options)}


def _lookup(method: str) -> type[Engine]:
    if method not in METHODS:
        raise ValueError(f"unknown DST method {method!r}; valid: {', '.join(METHODS)}")
    return METHODS[method]


def create(method: str, model: nn.Module, optimizer: torch.optim.Optimizer | None, *, sparsity: float,
           distribution: str = "uniform", delta_t: int, total_steps: int, seed: int = 0,
           mask_config: MaskConfig | None = None, existing_masks: str = "keep",
           **options: object) -> Engine:
    """Register masks on ``model`` and return the engine that trains them.

    ``sparsity`` is the target fraction of zero weights over the maskable layers
    (``1 - b``); ``options`` are the method's (``method_options(method)`` lists
    them). A model that already carries masks (a zoo variant) keeps them with
    ``existing_masks='keep'`` when each layer's count equals the method's starting
    count (layers without a mask get a random one); otherwise a ValueError says
    so. ``existing_masks='redraw'`` replaces them. Every argument is checked before
    the model changes.
    """
    cls = _lookup(method)
    setup = Setup(sparsity, distribution, delta_t, total_steps, seed, mask_config or MaskConfig(), existing_masks)
    setup.validate()
    setup = dataclasses.replace(setup, sparsity=float(sparsity), delta_t=int(delta_t), total_steps=int(total_steps),
                                seed=int(seed))  # plain numbers in saved states (numpy scalars are not)
    valid = [f.name for f in dataclasses.fields(cls.Options)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for DST method {method!r}; valid: {', '.join(valid)}")
    opts = cls.Options(**options)
    opts.validate(setup)
    return cls(model, optimizer, setup, opts)


__all__ = [
    "ACDC", "ACDCOptions", "Dense", "EXISTING_MASKS", "Engine", "GraNetGradient", "GraNetOptions", "GraNetRandom",
    "MESTGradient", "MESTOptions", "MESTRandom", "METHODS", "RigL", "SET", "ScheduleOptions", "Setup", "Static",
    "create", "method_options", "methods", "register_method",
]
