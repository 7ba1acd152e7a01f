"""The DST engine: owns the masks, keeps the mask invariant, rewires the topology.

Call order in the training loop (required)::

    loss.backward()
    optimizer.step()          # or scaler.step(optimizer); scaler.update()
    engine.step()             # re-applies the masks; every delta_t steps rewires
    optimizer.zero_grad()

Why this order: autograd computes the gradient of the whole weight tensor (the
weight is dense, only zero outside its mask), so at ``engine.step()`` ``.grad``
already holds the dense gradient that RigL-style growth needs. It is read only at
update steps, so non-update steps cost one in-place ``mul_`` per masked layer
(the optimizer moved pruned weights; the engine puts them back to zero).
Gradient methods raise a RuntimeError at an update step whose gradients are gone.

Mixed precision: at an update step the engine checks that the gradients are
finite; if not (a ``GradScaler`` step that found inf/NaN and skipped the
optimizer) the topology is left untouched and the update waits for the next
update step (``skipped_updates`` counts them).

Rewiring a layer: keep the ``keep`` active weights of largest drop score, then
grow among all other positions (including the just-dropped ones) until ``total``
are active. A connection dropped and regrown in the same update keeps its value
and optimizer state; a newly grown one starts at exactly zero. Every optimizer
state tensor of the weight's shape (SGD momentum, Adam moments, ...) is zeroed
where a weight was pruned or newly grown. Random growth draws from a generator
seeded by (seed, step), so every process of a DDP run draws the same; gradient
scores are averaged over processes.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from ..sparsity.distributions import DISTRIBUTIONS, layer_counts, layer_densities
from ..sparsity.init import random_scores
from ..sparsity.masks import MASK_SUFFIX, MaskConfig, has_mask, maskable_layers, set_mask, topk_mask
from .schedules import DECAYS, DropSchedule, end_step, is_update_step, last_update_step, step_seed

EXISTING_MASKS = ("keep", "redraw")
Grads = dict[str, torch.Tensor | None]


@dataclass(frozen=True)
class Setup:
    """The arguments every method shares (see :func:`sparse_zoo.dst.create`)."""

    sparsity: float
    distribution: str
    delta_t: int
    total_steps: int
    seed: int = 0
    mask_config: MaskConfig = field(default_factory=MaskConfig)
    existing_masks: str = "keep"

    def validate(self) -> None:
        if isinstance(self.sparsity, bool) or not isinstance(self.sparsity, numbers.Real) \
                or not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity {self.sparsity!r} is outside [0, 1) (0.9 keeps 10% of the weights)")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown sparsity distribution {self.distribution!r}; "
                             f"valid: {', '.join(sorted(DISTRIBUTIONS))}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name in ("delta_t", "total_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"{name} must be a positive integer (steps), got {value!r}")
        if self.existing_masks not in EXISTING_MASKS:
            raise ValueError(f"existing_masks={self.existing_masks!r}; valid: {', '.join(EXISTING_MASKS)}")
        if not isinstance(self.mask_config, MaskConfig):
            raise ValueError(f"mask_config must be a sparse_zoo.sparsity.MaskConfig, got {type(self.mask_config).__name__}")

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity


@dataclass(frozen=True)
class ScheduleOptions:
    """Drop-fraction schedule shared by all methods.

    Defaults are RigL's (Evci et al. 2020): p = 0.3, cosine decay, updates until 75%
    of training. The paper's recipes (arXiv 2410.03030, table 4) use
    ``drop_fraction=0.1, drop_schedule='polynomial'`` (exponent ``drop_power`` 0.01).
    Methods without topology updates accept and ignore them, so one option set fits
    every method.
    """

    drop_fraction: float = 0.3
    drop_schedule: str = "cosine"
    drop_power: float = 0.01
    end_fraction: float = 0.75

    def validate(self, setup: Setup) -> None:
        if not 0.0 <= self.drop_fraction <= 1.0:
            raise ValueError(f"drop_fraction {self.drop_fraction} is outside [0, 1]")
        if self.drop_schedule not in DECAYS:
            raise ValueError(f"unknown drop_schedule {self.drop_schedule!r}; valid: {', '.join(sorted(DECAYS))}")
        if not self.drop_power > 0:
            raise ValueError(f"drop_power must be > 0, got {self.drop_power}")
        if not 0.0 < self.end_fraction <= 1.0:
            raise ValueError(f"end_fraction {self.end_fraction} is outside (0, 1]")


def magnitude(module: nn.Module) -> torch.Tensor:
    """|w| as a fresh float tensor (engines fill it in place)."""
    return module.weight.detach().float().abs()


def random_growth(engine: Engine, name: str, module: nn.Module, grads: Grads,
                  generator: torch.Generator) -> torch.Tensor:
    """SET-style growth: uniform random scores (drawn on the CPU, identical on every device)."""
    return random_scores(name, module, generator).to(module.weight.device)


def gradient_growth(engine: Engine, name: str, module: nn.Module, grads: Grads,
                    generator: torch.Generator) -> torch.Tensor:
    """RigL-style growth: the magnitude of the dense gradient."""
    grad = grads.get(name)
    return torch.zeros_like(module.weight, dtype=torch.float) if grad is None else grad.float().abs()


class Engine:
    """Base engine. Subclasses set ``Options`` and override :meth:`density_at` / :meth:`targets`.

    ``updates``: whether the topology ever changes; ``needs_gradients``: whether
    updates read ``.grad``; ``masked``: whether the engine keeps masks at all.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[ScheduleOptions]] = ScheduleOptions
    updates: ClassVar[bool] = True
    needs_gradients: ClassVar[bool] = False
    masked: ClassVar[bool] = True
    grow_score = staticmethod(random_growth)

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, setup: Setup,
                 options: ScheduleOptions) -> None:
        self.model, self.optimizer, self.setup, self.options = model, optimizer, setup, options
        self.step_count = 0
        self.skipped_updates = 0
        self._factors: dict[str, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self.end_step = end_step(setup.total_steps, options.end_fraction)
        self.last_update = last_update_step(setup.delta_t, self.end_step)
        self.drop = DropSchedule(options.drop_fraction, options.drop_schedule, self.end_step,
                                 setup.total_steps, options.drop_power)
        if self.updates and self.last_update < setup.delta_t:
            raise ValueError(
                f"total_steps={setup.total_steps} is too small for delta_t={setup.delta_t} and end_fraction="
                f"{options.end_fraction}: no topology update would happen; need total_steps >= "
                f"{math.ceil(setup.delta_t / options.end_fraction)}")
        self.check_options()
        maskable = maskable_layers(model, setup.mask_config)
        if not maskable:
            raise ValueError("the model has no maskable layer (Conv1d/2d/3d or Linear weight) after excludes")
        modules = dict(model.named_modules())
        self._shapes = {n: tuple(modules[n].weight.shape) for n in maskable}
        self._fixed = {n: d for n, d in maskable.items() if d is not None}
        self.layers: dict[str, nn.Module] = (
            {n: modules[n] for n, d in maskable.items() if d != 1.0} if self.masked else {})
        self._install(self._initial_masks(modules))

    # -- plans -------------------------------------------------------------------------
    def check_options(self) -> None:
        """Method-specific checks that need the step counts (raise ValueError)."""

    def density_at(self, step: int) -> float:
        """Global density of the masked budget after the update at ``step`` (or at creation, step 0)."""
        return self.setup.density

    def counts(self, density: float) -> dict[str, int]:
        """Exact nonzero count per masked layer at a global ``density`` under the engine's distribution."""
        densities = layer_densities(self.setup.distribution, self._shapes, self._fixed, density)
        counts = layer_counts(self._shapes, densities, self._fixed, density)
        return {n: counts[n] for n in self.layers}

    def planned_counts(self, step: int) -> dict[str, int]:
        """Per-layer nonzero counts the masks hold after the update at ``step``."""
        return self.counts(self.density_at(step))

    def targets(self, step: int) -> dict[str, tuple[int, int]]:
        """Per layer (keep, total): keep ``keep`` active weights by drop score, then grow to ``total``."""
        p = self.drop(step)
        return {n: (k - round(p * k), k) for n, k in self.planned_counts(step).items()}

    def drop_score(self, name: str, module: nn.Module, grads: Grads) -> torch.Tensor:
        return magnitude(module)

    # -- masks -------------------------------------------------------------------------
    def _initial_masks(self, modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
        """Masks to install, computed without touching the model (all checks first)."""
        keep = self.setup.existing_masks == "keep"
        present = [n for n, m in modules.items() if has_mask(m)]
        stray = [n for n in present if n not in self.layers]
        if keep and stray:
            fix = "use method 'static' to train with frozen masks, or " if not self.masked else ""
            raise ValueError(
                f"the model carries masks on layers the {self.name!r} plan keeps dense or excludes "
                f"({', '.join(stray[:4])}); {fix}pass existing_masks='redraw' to replace them")
        counts = self.planned_counts(0)
        generator = torch.Generator().manual_seed(step_seed(self.setup.seed, 0))
        out = {}
        for name, module in self.layers.items():
            if keep and has_mask(module):
                mask = module.weight_mask
                if mask.dtype != torch.bool or tuple(mask.shape) != self._shapes[name]:
                    raise ValueError(f"{name}.weight_mask: expected bool of shape {self._shapes[name]}, "
                                     f"got {mask.dtype} of shape {tuple(mask.shape)}")
                if int(mask.sum()) != counts[name]:
                    raise ValueError(
                        f"{name}.weight_mask holds {int(mask.sum())} nonzeros but {self.name!r} at sparsity "
                        f"{self.setup.sparsity} with {self.setup.distribution!r} starts with {counts[name]}; "
                        "match the model's sparsity and distribution, or pass existing_masks='redraw'")
                out[name] = mask.clone()
            else:
                out[name] = topk_mask(random_scores(name, module, generator), counts[name])
        return out

    @torch.no_grad()
    def _install(self, initial: Mapping[str, torch.Tensor]) -> None:
        for _, module in self.model.named_modules():
            if has_mask(module) and not any(module is m for m in self.layers.values()):
                del module._buffers["weight" + MASK_SUFFIX]
        for name, module in self.layers.items():
            set_mask(module, initial[name])
            self._zero_state(module.weight, ~module.weight_mask)

    def _zero_state(self, param: torch.Tensor, where: torch.Tensor) -> None:
        state = self.optimizer.state.get(param) if self.optimizer is not None else None
        for value in (state or {}).values():
            if torch.is_tensor(value) and value.shape == param.shape:
                value.masked_fill_(where, 0)

    @torch.no_grad()
    def set_layer_mask(self, module: nn.Module, new: torch.Tensor) -> None:
        """Replace a mask: zero pruned weights, zero optimizer state where the mask changed."""
        old = module.weight_mask
        changed = old ^ new
        if changed.any():
            module.weight.mul_(new)
            self._zero_state(module.weight, changed)
            old.copy_(new)

    def _multiplier(self, name: str, module: nn.Module) -> torch.Tensor:
        """The mask as a factor for ``mul_``.

        On the CPU a bool factor is ~6x slower than one of the weight's dtype, so a
        converted copy is cached (one extra weight-sized tensor per layer) and rebuilt
        whenever the mask buffer is replaced or modified in place (its version
        counter moves, e.g. ``model.load_state_dict``). Accelerators use the bool mask.
        """
        mask, weight = module.weight_mask, module.weight
        if weight.device.type != "cpu":
            return mask
        cached = self._factors.get(name)
        if cached is None or cached[0] is not mask or cached[1] != mask._version or cached[2].dtype != weight.dtype:
            cached = (mask, mask._version, mask.to(weight.dtype))
            self._factors[name] = cached
        return cached[2]

    @torch.no_grad()
    def apply_masks(self) -> None:
        for name, module in self.layers.items():
            module.weight.mul_(self._multiplier(name, module))

    def nonzeros(self) -> dict[str, int]:
        """Active connections per masked layer."""
        return {n: int(m.weight_mask.sum()) for n, m in self.layers.items()}

    # -- the step ------------------------------------------------------------------------
    def wants_update(self, step: int) -> bool:
        return self.updates and is_update_step(step, self.setup.delta_t, self.last_update)

    def step(self) -> bool:
        """Advance one training step (after ``optimizer.step()``). Returns True if the topology changed."""
        self.step_count += 1
        self.apply_masks()
        if not self.wants_update(self.step_count):
            return False
        grads = self._gradients()
        if grads is None:
            self.skipped_updates += 1
            return False
        self.update(self.step_count, grads)
        return True

    @torch.no_grad()
    def update(self, step: int, grads: Grads) -> None:
        """Rewire every masked layer to :meth:`targets` (drop by score, then grow)."""
        generator = torch.Generator().manual_seed(step_seed(self.setup.seed, step))
        for name, (keep, total) in self.targets(step).items():
            module = self.layers[name]
            mask = module.weight_mask
            keep = min(keep, total, int(mask.sum()))
            kept = topk_mask(self.drop_score(name, module, grads).masked_fill_(~mask, -math.inf), keep)
            grow = self.grow_score(self, name, module, grads, generator).masked_fill_(kept, -math.inf)
            self.set_layer_mask(module, kept.logical_or_(topk_mask(grow, total - keep)))

    @torch.no_grad()
    def _gradients(self) -> Grads | None:
        """The masked layers' gradients at an update step, or None if any is not finite.

        Under torch.distributed the finite flag is agreed on by all processes, and for
        gradient methods the gradients are averaged so every process scores alike.
        """
        grads: Grads = {n: m.weight.grad for n, m in self.layers.items()}
        present = [g for g in grads.values() if g is not None]
        if self.needs_gradients and not any(bool(g.any()) for g in present):
            raise RuntimeError(
                f"{self.name!r} needs the dense gradients at update step {self.step_count}, but every "
                "masked weight's .grad is None or zero: call engine.step() after optimizer.step() and "
                "before optimizer.zero_grad()")
        # a sum is finite iff every element is (float32 sums of real gradients do not overflow)
        device = next(iter(self.layers.values())).weight.device  # NCCL reduces device tensors only
        finite = torch.tensor(float(all(bool(torch.isfinite(g.sum())) for g in present)), device=device)
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not finite.item():
            return None
        if distributed and self.needs_gradients:
            names = list(self.layers)
            flat = torch.cat([(grads[n] if grads[n] is not None else torch.zeros_like(self.layers[n].weight))
                              .reshape(-1).float() for n in names])
            dist.all_reduce(flat)
            flat /= dist.get_world_size()
            sizes = [self.layers[n].weight.numel() for n in names]
            grads = {n: chunk.view(self._shapes[n]) for n, chunk in zip(names, flat.split(sizes))}
        return grads

    # -- resume --------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """Everything that defines the run's schedule; checked on load."""
        s = self.setup
        return {"method": self.name, "sparsity": s.sparsity, "distribution": s.distribution,
                "delta_t": s.delta_t, "total_steps": s.total_steps, "seed": s.seed,
                "mask_config": dataclasses.asdict(s.mask_config), "options": dataclasses.asdict(self.options)}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Method state beyond step and masks (restored after validation)."""

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "skipped_updates": self.skipped_updates, "config": self.config(),
                "masks": {n: m.weight_mask.detach().clone().cpu() for n, m in self.layers.items()},
                "extra": self.extra_state()}

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore step, masks and method state; all checks happen before anything changes."""
        missing = {"step", "config", "masks"} - set(state)
        if missing:
            raise ValueError(f"not a DST engine state: missing {', '.join(sorted(missing))}")
        saved, mine = state["config"], self.config()
        diff = sorted(k for k in set(saved) | set(mine) if _plain(saved.get(k)) != _plain(mine.get(k)))
        if diff:
            raise ValueError("the engine state was saved with different settings: " + "; ".join(
                f"{k}: saved {saved.get(k)!r}, now {mine.get(k)!r}" for k in diff))
        masks = state["masks"]
        if set(masks) != set(self.layers):
            raise ValueError(f"mask names do not fit the model: saved {sorted(masks)}, model {sorted(self.layers)}")
        for name, mask in masks.items():
            if not torch.is_tensor(mask) or mask.dtype != torch.bool or tuple(mask.shape) != self._shapes[name]:
                got = f"{mask.dtype} of shape {tuple(mask.shape)}" if torch.is_tensor(mask) else type(mask).__name__
                raise ValueError(f"saved mask {name!r}: expected bool of shape {self._shapes[name]}, got {got}")
        self.step_count = int(state["step"])
        self.skipped_updates = int(state.get("skipped_updates", 0))
        for name, module in self.layers.items():
            module.weight_mask.copy_(masks[name])
        self.apply_masks()
        self.load_extra_state(state.get("extra", {}))

    def __repr__(self) -> str:
        s = self.setup
        return (f"{type(self).__name__}(method={self.name!r}, sparsity={s.sparsity}, distribution="
                f"{s.distribution!r}, delta_t={s.delta_t}, total_steps={s.total_steps}, step={self.step_count})")


def _plain(value: Any) -> Any:
    """Compare configs saved through JSON/YAML (tuples become lists)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
