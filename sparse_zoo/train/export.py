"""The end of a run: the final mask-aware model in the run directory, as the zoo publishes it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from sparse_zoo.models import ZooInfo, run_info

from .recipes import Recipe


def export_info(recipe: Recipe) -> ZooInfo:
    """What the exported model is (zoo name, method, sparsity, distribution, training set).

    Called before training starts, so a recipe the zoo cannot describe fails early.
    """
    return run_info(recipe.model, recipe.method, recipe.sparsity, recipe.dataset, recipe.distribution)


def export(model: nn.Module, out: Path, info: ZooInfo, results: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (readable by ``sparse_zoo.hub.load_model``)."""
    from sparse_zoo import hub
    hub.save_pretrained(model, out, results=results, info=info)
