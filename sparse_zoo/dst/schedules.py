"""Pure schedules of DST: every value is a function of the step alone.

Keeping them pure (no hidden counters) is what makes resume and multi-process
training exact: a restored engine only needs its step to know where it is.
Steps count completed optimizer steps, starting at 1 for the first
``engine.step()``; step 0 is the state right after ``create()``.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

Decay = Callable[[float, int, int, float], float]
DECAYS: dict[str, Decay] = {}


def register_decay(name: str) -> Callable[[Decay], Decay]:
    def wrap(fn: Decay) -> Decay:
        DECAYS[name] = fn
        return fn
    return wrap


def _progress(step: int, horizon: int) -> float:
    return min(max(step / horizon, 0.0), 1.0) if horizon > 0 else 1.0


@register_decay("cosine")
def cosine_decay(p: float, step: int, horizon: int, power: float = 1.0) -> float:
    """RigL's schedule (Evci et al. 2020): p/2 (1 + cos(pi t / T)), T = the end of topology updates."""
    return 0.5 * p * (1.0 + math.cos(math.pi * _progress(step, horizon)))


@register_decay("polynomial")
def polynomial_decay(p: float, step: int, horizon: int, power: float = 0.01) -> float:
    """The paper's schedule (arXiv 2410.03030, A.3 footnote 3): p (1 - t / T)^power, T = total steps."""
    return p * (1.0 - _progress(step, horizon)) ** power


@register_decay("constant")
def constant(p: float, step: int, horizon: int, power: float = 1.0) -> float:
    return p


@dataclass(frozen=True)
class DropSchedule:
    """Fraction of a layer's active weights removed (and regrown) at an update.

    ``cosine`` decays to 0 at ``end_step`` (the last step that may update, as in
    RigL); ``polynomial`` decays over all ``total_steps`` as in the paper's footnote,
    with exponent ``power`` (0.01 there, so it stays close to ``fraction``).
    """

    fraction: float
    kind: str
    end_step: int
    total_steps: int
    power: float

    def __call__(self, step: int) -> float:
        horizon = self.end_step if self.kind == "cosine" else self.total_steps
        return DECAYS[self.kind](self.fraction, step, horizon, self.power)


def end_step(total_steps: int, end_fraction: float) -> int:
    """The last step at which the topology may change."""
    return int(end_fraction * total_steps)


def is_update_step(step: int, delta_t: int, last: int) -> bool:
    """Topology updates happen every ``delta_t`` steps, up to and including ``last``."""
    return 0 < step <= last and step % delta_t == 0


def last_update_step(delta_t: int, last: int) -> int:
    return (last // delta_t) * delta_t


def cubic_density(step: int, initial: float, final: float, start: int, span: int) -> float:
    """GraNet / Zhu & Gupta gradual pruning: d_f + (d_i - d_f)(1 - (t - t0) / (n dT))^3."""
    return final + (initial - final) * (1.0 - _progress(step - start, span)) ** 3


def soft_bound(step: int, bound: float, horizon: int, power: float) -> float:
    """MEST's soft memory bound b_s (1 - t / T)^power: b_s at step 0, exactly 0 from ``horizon`` on."""
    return bound * (1.0 - _progress(step, horizon)) ** power


def acdc_sparse(step: int, warmup_end: int, final_start: int, phase: int) -> bool:
    """AC/DC phases: dense warm-up, then sparse and dense phases of ``phase`` steps, sparse from ``final_start``."""
    if step >= final_start:
        return True
    if step < warmup_end:
        return False
    return ((step - warmup_end) // phase) % 2 == 0


def step_seed(seed: int, step: int) -> int:
    """A 63-bit seed from (seed, step): every process draws the same random regrowth at a step."""
    digest = hashlib.blake2b(f"sparse-zoo-dst:{seed}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
