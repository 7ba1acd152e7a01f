"""Training: the paper's recipes, the training loop with DST, checkpoints with exact resume, DDP.

``train(recipe, data, out)`` in Python, ``sparse-zoo train`` on the command line,
``tools/train.py`` as a script. Torch-heavy modules load on first use, so that
listing recipes stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

from .recipes import RECIPES, Recipe, apply_overrides, get_recipe, list_recipes, register_recipe

_LAZY = {"train": ".trainer", "Trainer": ".trainer", "TrainResult": ".trainer"}

__all__ = ["RECIPES", "Recipe", "TrainResult", "Trainer", "apply_overrides", "get_recipe", "list_recipes",
           "register_recipe", "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
