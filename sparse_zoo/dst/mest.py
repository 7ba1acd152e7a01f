"""MEST with Elastic Mutation and a Soft Memory Bound (Yuan et al. 2021).

The model starts at density b + b_s (``soft_bound`` is relative: b_s = 0.1 b by
default, the paper's A.3.2 setting). At each update the layer is pruned to
(1 - p(t)) of its budget at b (removing the soft-bound surplus and a mutation
fraction p(t)) and regrown to b + b_s(t). b_s(t) = b_s (1 - t / T)^power decays
to exactly 0 at the last update step T (``soft_bound_power`` 1: linear, since
the paper says only "polynomial"), so training ends at density b.
``mest_g`` scores removal by |w| + ``grad_coeff`` |grad| as in MEST and grows by
gradient magnitude; ``mest_r`` removes by |w| and grows at random.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Engine, Grads, ScheduleOptions, Setup, gradient_growth, magnitude
from .schedules import soft_bound


@dataclass(frozen=True)
class MESTOptions(ScheduleOptions):
    soft_bound: float = 0.1
    soft_bound_power: float = 1.0
    grad_coeff: float = 1.0

    def validate(self, setup: Setup) -> None:
        super().validate(setup)
        if self.soft_bound < 0 or setup.density * (1 + self.soft_bound) > 1.0:
            raise ValueError(f"soft_bound {self.soft_bound} must be >= 0 with (1 + soft_bound) x density "
                             f"<= 1 (density {setup.density})")
        if not self.soft_bound_power > 0:
            raise ValueError(f"soft_bound_power must be > 0, got {self.soft_bound_power}")
        if self.grad_coeff < 0:
            raise ValueError(f"grad_coeff must be >= 0, got {self.grad_coeff}")


class MESTRandom(Engine):
    name = "mest_r"
    Options = MESTOptions

    def density_at(self, step: int) -> float:
        b = self.setup.density
        return b + soft_bound(step, self.options.soft_bound * b, self.last_update, self.options.soft_bound_power)

    def targets(self, step: int) -> dict[str, tuple[int, int]]:
        budget, total = self.counts(self.setup.density), self.planned_counts(step)
        return {n: (k - round(self.drop(step) * k), total[n]) for n, k in budget.items()}


class MESTGradient(MESTRandom):
    name = "mest_g"
    needs_gradients = True
    grow_score = staticmethod(gradient_growth)

    def drop_score(self, name: str, module: nn.Module, grads: Grads) -> torch.Tensor:
        grad = grads.get(name)
        score = magnitude(module)
        return score if grad is None else score + self.options.grad_coeff * grad.abs().float()
