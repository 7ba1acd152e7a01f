"""ImageMagick's motion blur (``MotionBlurImage`` in MagickCore/effect.c) reproduced in torch.

ImageNet-C's motion_blur and snow call Wand's ``motion_blur(radius, sigma, angle)``.
ImageMagick builds a one-sided 1-D Gaussian of ``width = 2 * ceil(radius) + 1`` taps
(``GetOptimalKernelWidth1D``), ``k[i] ~ exp(-i^2 / (2 sigma^2))`` normalised to sum 1,
and samples tap ``i`` at the integer offset
``(ox, oy) = (ceil(i cos(angle) - 0.5), ceil(i sin(angle) - 0.5))`` from the output pixel
(x to the right, y down); pixels outside the image repeat the edge (the default
"edge" virtual-pixel method). So a bright point leaves a fading streak towards
``angle + 180`` degrees. Everything here is a pure function of its arguments.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_EPSILON = 1.0e-12      # MagickEpsilon
_QUANTUM_SCALE = 1.0 / 65535.0  # QuantumScale of the Q16 builds that Wand uses


def kernel_width(radius: float, sigma: float) -> int:
    """Number of taps, as ImageMagick's ``GetOptimalKernelWidth1D``.

    ``radius > 0`` gives ``2 * ceil(radius) + 1``; ``radius == 0`` grows the width
    until the Gaussian's edge tap falls below one 16-bit quantum.
    """
    if radius > _EPSILON:
        return int(2.0 * math.ceil(radius) + 1.0)
    gamma = abs(sigma)
    if gamma <= _EPSILON:
        return 3
    alpha = 1.0 / (2.0 * gamma * gamma)
    beta = 1.0 / (math.sqrt(2.0 * math.pi) * gamma)
    width = 5
    while True:
        j = (width - 1) // 2
        normalize = sum(math.exp(-(i * i) * alpha) * beta for i in range(-j, j + 1))
        value = math.exp(-(j * j) * alpha) * beta / normalize
        if value < _QUANTUM_SCALE or value < _EPSILON:
            return width - 2
        width += 2


def kernel(width: int, sigma: float) -> torch.Tensor:
    """The ``width`` one-sided Gaussian weights (float64, sum 1) of ``GetMotionBlurKernel``."""
    sigma = max(abs(sigma), _EPSILON)
    i = torch.arange(width, dtype=torch.float64)
    k = torch.exp(-(i * i) / (2.0 * sigma * sigma))
    return k / k.sum()


def offsets(width: int, angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer tap offsets ``(oy, ox)``, each (B, width), for per-sample angles in degrees."""
    a = torch.deg2rad(angle.to(torch.float64)).reshape(-1, 1)
    i = torch.arange(width, dtype=torch.float64, device=a.device)
    ox = torch.ceil(i * torch.cos(a) - 0.5)
    oy = torch.ceil(i * torch.sin(a) - 0.5)
    return oy.long(), ox.long()


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` (B, C, H, W) along its own ``angle`` (B,) in degrees."""
    width = kernel_width(radius, sigma)
    weights = kernel(width, sigma).tolist()
    oy, ox = offsets(width, angle.to(x.device))
    pad = width - 1
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    shift_sum = _shift_sum_loop if x.device.type == "cpu" else _shift_sum_gather
    return shift_sum(padded, oy + pad, ox + pad, weights, x.shape[-2], x.shape[-1])


def _shift_sum_loop(padded: torch.Tensor, top: torch.Tensor, left: torch.Tensor, weights: list[float],
                    h: int, w: int) -> torch.Tensor:
    """Sum of weighted per-sample crops, one slice-add each: the fastest form on CPU."""
    out = padded.new_zeros(padded.shape[0], padded.shape[1], h, w)
    for b, (tops, lefts) in enumerate(zip(top.tolist(), left.tolist())):
        src, dst = padded[b], out[b]
        for t, l, k in zip(tops, lefts, weights):
            dst.add_(src[:, t:t + h, l:l + w], alpha=k)
    return out


def _shift_sum_gather(padded: torch.Tensor, top: torch.Tensor, left: torch.Tensor, weights: list[float],
                      h: int, w: int) -> torch.Tensor:
    """Same sum with one batched gather per tap: few kernel launches, for GPUs."""
    b, c, hp, wp = padded.shape
    flat = padded.reshape(b, c, hp * wp)
    rows = torch.arange(h, device=padded.device).view(-1, 1) * wp
    base = (rows + torch.arange(w, device=padded.device)).view(1, 1, -1)
    start = top * wp + left
    out = padded.new_zeros(b, c, h * w)
    for i, k in enumerate(weights):
        index = (base + start[:, i].view(b, 1, 1)).expand(b, c, h * w)
        out.add_(flat.gather(2, index), alpha=k)
    return out.view(b, c, h, w)
