"""Baselines with the engine's interface: dense training and a static random sparse mask."""
from __future__ import annotations

from .base import Engine


class Dense(Engine):
    """No masks at all: ``step()`` only counts steps, so dense runs share the training loop."""

    name = "dense"
    updates = False
    masked = False


class Static(Engine):
    """A random mask with exact per-layer counts, drawn once and never changed (re-applied every step)."""

    name = "static"
    updates = False
