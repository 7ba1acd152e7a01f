"""AC/DC: alternating compressed / decompressed training (Peste et al. 2021).

Dense warm-up for ``warmup_fraction`` of training, then sparse and dense phases of
``delta_t`` steps each (starting sparse), and one final sparse phase over the last
``final_fraction`` of training, so the run ends sparse. Entering a sparse phase
keeps each layer's largest-magnitude weights (exact per-layer counts of the
distribution); entering a dense phase re-activates every weight, the pruned ones
restarting from zero with zeroed optimizer state. In dense phases the masks are
all True. A phase switch on a step with non-finite gradients waits for the next step.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .base import Engine, Grads, ScheduleOptions, Setup
from .schedules import acdc_sparse


@dataclass(frozen=True)
class ACDCOptions(ScheduleOptions):
    warmup_fraction: float = 0.1
    final_fraction: float = 0.15

    def validate(self, setup: Setup) -> None:
        super().validate(setup)
        if not (0.0 <= self.warmup_fraction and 0.0 < self.final_fraction
                and self.warmup_fraction + self.final_fraction <= 1.0):
            raise ValueError(f"warmup_fraction {self.warmup_fraction} >= 0 and final_fraction "
                             f"{self.final_fraction} > 0 must sum to at most 1")


class ACDC(Engine):
    name = "acdc"
    Options = ACDCOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sparse_phase = False
        super().__init__(*args, **kwargs)
        self._sparse_phase = self.is_sparse(0)

    @property
    def phase_bounds(self) -> tuple[int, int]:
        total = self.setup.total_steps
        return round(self.options.warmup_fraction * total), total - round(self.options.final_fraction * total)

    def check_options(self) -> None:
        if self.phase_bounds[1] < 1:
            raise ValueError("final_fraction leaves no step for training before the final sparse phase")

    def is_sparse(self, step: int) -> bool:
        """Whether training after ``step`` runs sparse."""
        warmup_end, final_start = self.phase_bounds
        return acdc_sparse(step, warmup_end, final_start, self.setup.delta_t)

    def density_at(self, step: int) -> float:
        return self.setup.density if self.is_sparse(step) else 1.0

    def wants_update(self, step: int) -> bool:
        return self.is_sparse(step) != self._sparse_phase

    @torch.no_grad()
    def update(self, step: int, grads: Grads) -> None:
        sparse = self.is_sparse(step)
        if sparse:
            super().update(step, grads)  # targets (k, k): magnitude pruning, no growth
        else:
            for module in self.layers.values():
                self.set_layer_mask(module, torch.ones_like(module.weight_mask))
        self._sparse_phase = sparse

    def targets(self, step: int) -> dict[str, tuple[int, int]]:
        return {n: (k, k) for n, k in self.planned_counts(step).items()}

    def extra_state(self) -> dict[str, Any]:
        return {"sparse_phase": self._sparse_phase}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self._sparse_phase = bool(state.get("sparse_phase", self.is_sparse(self.step_count)))
