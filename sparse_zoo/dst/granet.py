"""GraNet: gradual magnitude pruning with zero-cost neuroregeneration (Liu et al. 2021).

Starts at ``initial_density`` (0.8, the paper's A.3.2 CIFAR setting) and at each
update prunes by magnitude to d_t = d_f + (d_i - d_f)(1 - (t - t0) / (n dT))^3,
where t0 = ``prune_start`` x total steps and n dT = ``prune_fraction`` x total
steps (half of training by default); in the same update a fraction p(t) of the
remaining weights is dropped and regrown, so fewer connections are regrown than
removed while d_t falls, and the budget stays fixed once it reaches the target.
``granet_g`` regrows by gradient magnitude (the original), ``granet_r`` at random.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Engine, ScheduleOptions, Setup, gradient_growth
from .schedules import cubic_density


@dataclass(frozen=True)
class GraNetOptions(ScheduleOptions):
    initial_density: float = 0.8
    prune_start: float = 0.0
    prune_fraction: float = 0.5

    def validate(self, setup: Setup) -> None:
        super().validate(setup)
        if not setup.density <= self.initial_density <= 1.0:
            raise ValueError(f"initial_density {self.initial_density} must lie in [target density "
                             f"{setup.density:.4g}, 1]: GraNet starts denser than its target")
        if not 0.0 <= self.prune_start < 1.0 or not 0.0 < self.prune_fraction <= 1.0:
            raise ValueError(f"prune_start {self.prune_start} must be in [0, 1) and prune_fraction "
                             f"{self.prune_fraction} in (0, 1]")


class GraNetRandom(Engine):
    name = "granet_r"
    Options = GraNetOptions

    @property
    def prune_window(self) -> tuple[int, int]:
        """(t0, n dT) in steps."""
        total = self.setup.total_steps
        return round(self.options.prune_start * total), round(self.options.prune_fraction * total)

    def check_options(self) -> None:
        start, span = self.prune_window
        if start + span > self.last_update:
            raise ValueError(
                f"GraNet's pruning ends at step {start + span}, after the last topology update (step "
                f"{self.last_update}); lower prune_start + prune_fraction below end_fraction "
                f"{self.options.end_fraction} or raise total_steps")

    def density_at(self, step: int) -> float:
        start, span = self.prune_window
        return cubic_density(step, self.options.initial_density, self.setup.density, start, span)


class GraNetGradient(GraNetRandom):
    name = "granet_g"
    needs_gradients = True
    grow_score = staticmethod(gradient_growth)
