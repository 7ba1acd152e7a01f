"""ImageNet-C noise corruptions (Hendrycks & Dietterich 2019).

Tables: ``make_cifar_c.py`` (32 px), ``make_tinyimagenet_c.py`` (64 px) and
``make_imagenet_c.py`` (224 px); other sizes use the closest table (see
``registry.Corruption.table_for``). Every draw is per element (channels included),
as in the reference's numpy calls.
"""
from __future__ import annotations

import torch

from . import ops
from .registry import register
from .rng import Stream


@register("gaussian_noise", tables={32: (.04, .06, .08, .09, .10), 64: (.04, .08, .12, .15, .18),
                                    224: (.08, .12, .18, .26, .38)})
def gaussian_noise(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """Additive N(0, std^2) noise."""
    return x + std * rng.normal(*x.shape[1:])


@register("shot_noise", tables={32: (500, 250, 100, 75, 50), 64: (250, 100, 50, 30, 15),
                                224: (60, 25, 12, 5, 3)})
def shot_noise(x: torch.Tensor, photons: float, rng: Stream) -> torch.Tensor:
    """Photon noise: Poisson(x * photons) / photons (exact Poisson draws, see ``ops.poisson``)."""
    return ops.poisson(rng, x * photons) / photons


@register("impulse_noise", tables={32: (.01, .02, .03, .05, .07), 64: (.01, .02, .05, .08, .14),
                                   224: (.03, .06, .09, .17, .27)})
def impulse_noise(x: torch.Tensor, amount: float, rng: Stream) -> torch.Tensor:
    """Salt-and-pepper noise as ``skimage.util.random_noise(mode='s&p', amount=amount)``.

    Each element flips with probability ``amount``, to 1 or 0 with equal odds (the
    per-element Bernoulli form of scikit-image >= 0.19; older versions drew a fixed
    number of coordinates with replacement). One uniform decides both: below
    amount / 2 is salt, from amount / 2 to amount pepper.
    """
    u = rng.uniform(*x.shape[1:])
    return torch.where(u <= amount, (u <= amount / 2).to(x.dtype), x)


@register("speckle_noise", tables={32: (.06, .1, .12, .16, .2), 64: (.15, .2, .25, .3, .35),
                                   224: (.15, .2, .35, .45, .6)})
def speckle_noise(x: torch.Tensor, std: float, rng: Stream) -> torch.Tensor:
    """Multiplicative noise x + x * N(0, std^2)."""
    return x + x * (std * rng.normal(*x.shape[1:]))
