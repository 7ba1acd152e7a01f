"""Helpers shared by the zoo's architecture modules."""
from __future__ import annotations

from collections.abc import Iterable


def scale_channels(channels: int | Iterable[int], width: float) -> int | tuple[int, ...]:
    """Channel counts times a width multiplier, rounded, at least 1 (tiny models for tests and demos)."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if isinstance(channels, int):
        return max(1, round(channels * width))
    return tuple(max(1, round(c * width)) for c in channels)
