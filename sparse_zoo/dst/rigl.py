"""Fixed-budget DST: SET (Mocanu et al. 2018) and RigL (Evci et al. 2020).

Both drop the smallest-magnitude fraction p(t) of each layer's active weights and
regrow as many; they differ only in the grow score (random vs dense-gradient
magnitude), so RigL is SET with another ``grow_score``.
"""
from __future__ import annotations

from .base import Engine, gradient_growth


class SET(Engine):
    name = "set"


class RigL(SET):
    name = "rigl"
    needs_gradients = True
    grow_score = staticmethod(gradient_growth)
