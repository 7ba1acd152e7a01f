"""The end of a run: the final mask-aware model in the run directory, as the zoo publishes it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .recipes import Recipe


def export(model: nn.Module, recipe: Recipe, out: Path, data_config: dict[str, Any], results: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (readable by ``sparse_zoo.hub.load_model``)."""
    from sparse_zoo import hub
    hub.save_pretrained(model, out, results=results)
