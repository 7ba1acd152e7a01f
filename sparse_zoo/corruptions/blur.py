"""ImageNet-C blur corruptions (Hendrycks & Dietterich 2019); motion blur lives in ``weather``.

Tables from the reference scripts at 32, 64 and 224 px; other sizes use the closest
table, with the blur sizes taken as given in pixels.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch

from . import ops
from .registry import CPU_CHUNK, register
from .rng import Stream


@register("gaussian_blur", tables={32: (.4, .6, .7, .8, 1.), 64: (.5, .75, 1., 1.25, 1.5),
                                   224: (1., 2., 3., 4., 6.)})
def gaussian_blur(x: torch.Tensor, sigma: float, rng: Stream) -> torch.Tensor:
    """``skimage.filters.gaussian(x, sigma)``: truncate 4, 'nearest' border."""
    return ops.gaussian_blur(x, sigma)


class Defocus(NamedTuple):
    radius: float
    alias_blur: float


@functools.lru_cache(maxsize=64)
def _defocus_kernel(p: Defocus) -> torch.Tensor:
    """The reference's anti-aliased disk (``ops.disk_kernel``) without its grid's all-zero margin; cached, read-only."""
    kernel = ops.disk_kernel(p.radius, p.alias_blur)
    nonzero = kernel.abs().sum(0).nonzero()
    lo, hi = int(nonzero.min()), int(nonzero.max())
    half = max(kernel.shape[0] // 2 - lo, hi - kernel.shape[0] // 2)
    c = kernel.shape[0] // 2
    return kernel[c - half:c + half + 1, c - half:c + half + 1]


def _defocus_chunk(p: Defocus) -> int:
    """Eight 224 px images per CPU call where ``filter2d`` convolves directly, else the default chunk.

    The depthwise convolution vectorises over planes (24 per call ran 2x faster than
    9); the FFT of larger kernels was fastest on a few images at a time.
    """
    return 8 * 3 * 224 * 224 if _defocus_kernel(p).numel() <= ops.DIRECT_TAPS else CPU_CHUNK


@register("defocus_blur", tables={
    32: (Defocus(0.3, 0.4), Defocus(0.4, 0.5), Defocus(0.5, 0.6), Defocus(1, 0.2), Defocus(1.5, 0.1)),
    64: (Defocus(0.5, 0.6), Defocus(1, 0.1), Defocus(1.5, 0.1), Defocus(2.5, 0.01), Defocus(3, 0.1)),
    224: (Defocus(3, 0.1), Defocus(4, 0.5), Defocus(6, 0.5), Defocus(8, 0.5), Defocus(10, 0.5))},
    cpu_chunk=_defocus_chunk)
def defocus_blur(x: torch.Tensor, p: Defocus, rng: Stream) -> torch.Tensor:
    """``cv2.filter2D`` with the anti-aliased disk kernel (``ops.disk_kernel``), BORDER_REFLECT_101."""
    return ops.filter2d(x, _defocus_kernel(p), "mirror")


def _zooms(stop: float, step: float) -> tuple[float, ...]:
    """The reference's ``np.arange(1, stop, step)`` (float64, the same values and count)."""
    return tuple(np.arange(1, stop, step).tolist())


@register("zoom_blur", tables={
    32: tuple(_zooms(s, .01) for s in (1.06, 1.11, 1.16, 1.21, 1.26)),
    64: tuple(_zooms(s, .01) for s in (1.06, 1.11, 1.16, 1.21, 1.26)),
    224: (_zooms(1.11, .01), _zooms(1.16, .01), _zooms(1.21, .02), _zooms(1.26, .02), _zooms(1.31, .03))},
    cpu_chunk=1 << 21)  # more planes per call vectorise better: 1.7x faster at 224 px than 2^19
def zoom_blur(x: torch.Tensor, zooms: tuple[float, ...], rng: Stream) -> torch.Tensor:
    """Mean of the image and its central zooms (``clipped_zoom``, bilinear like scipy's order-1 zoom)."""
    # samples and channels as the channels of one channels-last image: the bilinear kernel then
    # vectorises over all B*C planes (3x faster on CPU than B images of 3 channels each, and
    # 3x faster than the zooms fused by torch.compile, so zoom blur is not compiled)
    b, c, h, w = x.shape
    x = x.reshape(1, b * c, h, w).contiguous(memory_format=torch.channels_last)
    out = x.clone()
    for z in zooms:
        out += ops.clipped_zoom(x, z)
    return (out / (len(zooms) + 1)).contiguous().view(b, c, h, w)


class Glass(NamedTuple):
    sigma: float
    max_delta: int
    iterations: int


@register("glass_blur", tables={
    32: (Glass(0.05, 1, 1), Glass(0.25, 1, 1), Glass(0.4, 1, 1), Glass(0.25, 1, 2), Glass(0.4, 1, 2)),
    64: (Glass(0.1, 1, 1), Glass(0.5, 1, 1), Glass(0.6, 1, 2), Glass(0.7, 2, 1), Glass(0.9, 2, 2)),
    224: (Glass(0.7, 1, 2), Glass(0.9, 2, 1), Glass(1, 2, 3), Glass(1.1, 3, 2), Glass(1.5, 4, 2))},
    cpu_chunk=None)  # whole batches: the swap wavefronts cost per call, not per image
def glass_blur(x: torch.Tensor, p: Glass, rng: Stream) -> torch.Tensor:
    """Gaussian blur, 8-bit truncation, local pixel swaps, Gaussian blur again.

    The reference swaps pixels in a sequential raster loop (bottom-right to top-left),
    each pixel with a random neighbour at offset in [-max_delta, max_delta). ``shuffle``
    runs the very same sequence of swaps, grouped into wavefronts of swaps that touch
    disjoint pixels, so the result equals the sequential loop for the same offsets; only
    the random numbers differ (ours come from the counter-based stream, not numpy's).
    """
    x = torch.floor(ops.gaussian_blur(x, p.sigma) * 255.0) / 255.0  # np.uint8(... * 255)
    b, c, h, w = x.shape
    order = torch.arange(h * w, device=x.device).expand(b, h * w)
    for _ in range(p.iterations):
        offsets = rng.integers(-p.max_delta, p.max_delta, 2, h, w)
        order = shuffle(order, offsets[:, 0] * w + offsets[:, 1], h, w, p.max_delta)
    x = x.flatten(2).gather(2, order.unsqueeze(1).expand(b, c, h * w)).view(b, c, h, w)
    return ops.gaussian_blur(x, p.sigma)


def shuffle(order: torch.Tensor, offsets: torch.Tensor, h: int, w: int, delta: int) -> torch.Tensor:
    """One pass of the reference's pixel-swap loop on (B, H*W) pixel indices.

    Sequential loop: ``for row in H-delta..delta+1: for col in W-delta..delta+1: swap
    (row, col) with (row, col) + offset``. Two swaps can only interact if their rows
    and columns are less than 2*delta apart, so giving the swap at (row, col) the time
    ``2*delta*(H-delta-row) + (W-delta-col)`` orders every interacting pair as the loop
    does, while swaps sharing a time touch disjoint pixels and run at once.

    The loop over ~1000-2000 time steps is bound by per-op cost, so it runs on a
    pixel-major (H*W, B) copy, where a step's swaps of all samples touch a few runs of
    memory, with the flat indices of every step computed in advance.
    """
    rows = torch.arange(h - delta, delta, -1, device=order.device)
    cols = torch.arange(w - delta, delta, -1, device=order.device)
    if rows.numel() == 0 or cols.numel() == 0:
        return order
    time = 2 * delta * (h - delta - rows).unsqueeze(1) + (w - delta - cols).unsqueeze(0)
    pos = (rows.unsqueeze(1) * w + cols.unsqueeze(0)).flatten()
    time, perm = time.flatten().sort(stable=True)
    pos = pos[perm]
    b = order.shape[0]
    ends_p = pos.unsqueeze(1) * b + torch.arange(b, device=order.device)  # (n, B) into the (H*W, B) layout
    # rows of the pixel-major offsets: 1.6x faster than picking from the transposed view
    ends_q = offsets.flatten(1).t().contiguous().index_select(0, pos).mul_(b).add_(ends_p).view(-1)
    sizes = (torch.unique_consecutive(time, return_counts=True)[1] * b).tolist()
    flat = order.t().contiguous().view(-1)
    for p, q in zip(ends_p.view(-1).split(sizes), ends_q.split(sizes)):
        at_p = flat.gather(0, p)
        flat.scatter_(0, p, flat.gather(0, q)).scatter_(0, q, at_p)  # gather/scatter_: the fastest 1-D pair
    return flat.view(-1, b).t().contiguous()
