"""ImageNet-C noise corruptions (Hendrycks & Dietterich 2019).

Tables: ``make_cifar_c.py`` (32 px), ``make_tinyimagenet_c.py`` (64 px) and
``make_imagenet_c.py`` (224 px); other sizes use the closest table (see
``registry.Corruption.table_for``). Every draw is per element (channels included),
as in the reference's numpy calls.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import ops
from .registry import register, register_uint8
from .rng import Stream, tensor_cache

# Elements per call on CPU (see ``register``): the draws' temporaries are 4-byte, so
# 2^18 runs 1.1-1.3x faster at 224 px (measured against 2^17 and 2^19).
_CHUNK = 1 << 18


@register("gaussian_noise", tables={32: (.04, .06, .08, .09, .10), 64: (.04, .08, .12, .15, .18),
                                    224: (.08, .12, .18, .26, .38)}, compile=True, cpu_chunk=_CHUNK)
def gaussian_noise(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """Additive N(0, std^2) noise."""
    return x + std * rng.normal(*x.shape[1:])


@register_uint8("gaussian_noise", compile=True)
def gaussian_noise_uint8(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """``gaussian_noise`` of uint8 batches: one alias-table draw per element (see ``_normal_alias_table``)."""
    return ops.alias_levels(rng, x, _normal_alias_table(float(std), False, x.device), torch.uint8)


@register("shot_noise", tables={32: (500, 250, 100, 75, 50), 64: (250, 100, 50, 30, 15),
                                224: (60, 25, 12, 5, 3)}, compile=True, cpu_chunk=_CHUNK)
def shot_noise(x: torch.Tensor, photons: float, rng: Stream) -> torch.Tensor:
    """Photon noise: Poisson(x * photons) / photons (exact Poisson draws).

    Images on the 8-bit grid (k / 255) take the table sampler ``ops.poisson_levels``,
    like uint8 batches, and give the same values. Others split each rate at the grid
    level below it, Poisson(a + r) = Poisson(a) + Poisson(r): the table draws the
    level's count and ``ops.poisson`` only the small rest r (< photons / 255), mostly
    zeros: 2x faster at 224 px than ``ops.poisson`` on the whole rate.
    """
    scaled = x * 255.0
    levels = scaled.round()
    if torch.equal(levels / 255.0, x):
        return ops.poisson_levels(rng, levels.to(torch.int32), photons).to(x.dtype).div_(photons)
    below = scaled.floor_().clamp_(0.0, 255.0)
    rest = (x * photons).sub_(below.div(255.0).mul_(photons)).clamp_(min=0.0)  # minus the table's float32 rate
    counts = ops.poisson_levels(rng, below.to(torch.int32), photons).to(x.dtype)
    return counts.add_(ops.poisson(rng, rest)).div_(photons)


@register_uint8("shot_noise", compile=True)
def shot_noise_uint8(x: torch.Tensor, photons: float, rng: Stream) -> torch.Tensor:
    """``shot_noise`` of uint8 batches: the counts mapped to 8 bits as ``apply`` maps the float result."""
    counts = ops.poisson_levels(rng, x, photons)
    lut = _counts_to_uint8(photons, x.device)
    return lut.index_select(0, counts.clamp_(max=math.ceil(photons)).reshape(-1)).reshape(x.shape)


@register("impulse_noise", tables={32: (.01, .02, .03, .05, .07), 64: (.01, .02, .05, .08, .14),
                                   224: (.03, .06, .09, .17, .27)}, compile=True, cpu_chunk=_CHUNK)
def impulse_noise(x: torch.Tensor, amount: float, rng: Stream) -> torch.Tensor:
    """Salt-and-pepper noise as ``skimage.util.random_noise(mode='s&p', amount=amount)``.

    Each element flips with probability ``amount``, to 1 or 0 with equal odds (the
    per-element Bernoulli form of scikit-image >= 0.19; older versions drew a fixed
    number of coordinates with replacement). One uniform decides both: below
    amount / 2 is salt, from amount / 2 to amount pepper.
    """
    u = rng.uniform(*x.shape[1:])
    return torch.where(u <= amount, (u <= amount / 2).to(x.dtype), x)


@register_uint8("impulse_noise")
def impulse_noise_uint8(x: torch.Tensor, amount: float, rng: Stream) -> torch.Tensor:
    """``impulse_noise`` of uint8 batches: the same draws and flips in integers (salt is 255).

    The float path's uniform is u = (k + 0.5) / 2^23 exactly, compared with float32
    thresholds, so u <= t exactly when k <= floor(t * 2^23 - 0.5). The flips are two
    byte masks, x & keep | salt: 5x faster than masked_fill on uint8.
    """
    flip, salt = (math.floor(float(np.float32(t)) * (1 << 23) - 0.5) for t in (amount, amount / 2))

    def masks(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # 255 where kept / where salt, else 0
        return (ops.compare(torch.gt, k, flip, torch.uint8).neg_(),
                ops.compare(torch.le, k, salt, torch.uint8).neg_())
    keep, salt_mask = rng.map_uniform_ints(masks, 2, *x.shape[1:]).unbind(1)
    return (x & keep).bitwise_or_(salt_mask)


@register("speckle_noise", tables={32: (.06, .1, .12, .16, .2), 64: (.15, .2, .25, .3, .35),
                                   224: (.15, .2, .35, .45, .6)}, compile=True, cpu_chunk=_CHUNK)
def speckle_noise(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """Multiplicative noise x + x * N(0, std^2)."""
    return x + x * (std * rng.normal(*x.shape[1:]))


@register_uint8("speckle_noise", compile=True)
def speckle_noise_uint8(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """``speckle_noise`` of uint8 batches: one alias-table draw per element (see ``_normal_alias_table``)."""
    return ops.alias_levels(rng, x, _normal_alias_table(float(std), True, x.device), torch.uint8)


@tensor_cache(maxsize=32)
def _normal_alias_table(std: float, speckle: bool, device: torch.device) -> torch.Tensor:
    """Alias table of the 8-bit outputs of additive (x + std z) or speckle (x + x std z) noise, per input level.

    The float path on a uint8 batch gives out = trunc(255 clip(v, 0, 1)), so
    out <= j exactly when v < (j + 1) / 255: a normal CDF in float64, quantised to
    2^-23 (``ops.cdf_level_weights``). Same distribution as the float path, through
    other draws: a uint8 batch and its float copy get different realisations.
    """
    x = (torch.arange(256, dtype=torch.float32) / 255.0).double()[:, None]
    edges = torch.arange(1, 257, dtype=torch.float64) / 255.0
    z = (edges / x - 1.0) / std if speckle else (edges - x) / std  # speckle at level 0: inf, all mass at 0
    return ops.alias_table(ops.cdf_level_weights(torch.special.ndtr(z))).to(device)


@tensor_cache(maxsize=32)
def _counts_to_uint8(photons: float, device: torch.device) -> torch.Tensor:
    """uint8 value of count k: k / photons clipped to 1, times 255, truncated (``apply``'s float-to-uint8)."""
    return (torch.arange(math.ceil(photons) + 1, dtype=torch.float32) / photons).clamp_(0.0, 1.0).mul_(255.0) \
        .to(device, torch.uint8)
