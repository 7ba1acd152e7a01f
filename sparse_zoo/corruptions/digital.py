"""ImageNet-C digital corruptions (Hendrycks & Dietterich 2019).

Tables from the reference scripts at 32, 64 and 224 px; other sizes use the closest
table (lengths in pixels as given; pixelate scales the image's own size).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from . import ops
from .registry import register, register_uint8
from .rng import Stream


@register("brightness", tables={32: (.05, .1, .15, .2, .3), 64: (.1, .2, .3, .4, .5),
                                224: (.1, .2, .3, .4, .5)}, compile=True,
          cpu_chunk=1 << 20)  # 1.2x faster at 224 px than 2^19 (fewer calls of its ~30 ops)
def brightness(x: torch.Tensor, shift: float, rng: Stream) -> torch.Tensor:
    """HSV value + shift, clipped to 1 (``skimage.color`` round trip).

    Hue and saturation stay fixed, so every channel scales by v' / v: the round trip
    reduces to that ratio (grey v' where v = 0) and skips the HSV conversion.
    """
    v = x.amax(1, keepdim=True)
    v_new = (v + shift).clamp(max=1.0)
    return torch.where(v > 0, x * (v_new / v.clamp(min=1e-12)), v_new.expand_as(x))


@register("contrast", tables={32: (.75, .5, .4, .3, .15), 64: (.4, .3, .2, .1, .05),
                              224: (.4, .3, .2, .1, .05)}, compile=True)
def contrast(x: torch.Tensor, factor: float, rng: Stream) -> torch.Tensor:
    """Scale each channel's deviation from its spatial mean by ``factor``."""
    means = x.mean((2, 3), keepdim=True)
    return (x - means).mul_(factor).add_(means)  # in place: 1.3x faster on CPU, the same values


class Saturation(NamedTuple):
    scale: float
    shift: float


@register("saturate", tables={
    32: (Saturation(0.3, 0), Saturation(0.1, 0), Saturation(1.5, 0), Saturation(2, 0.1), Saturation(2.5, 0.2)),
    64: (Saturation(0.3, 0), Saturation(0.1, 0), Saturation(2, 0), Saturation(5, 0.1), Saturation(30, 0.2)),
    224: (Saturation(0.3, 0), Saturation(0.1, 0), Saturation(2, 0), Saturation(5, 0.1), Saturation(20, 0.2))},
    compile=True)
def saturate(x: torch.Tensor, p: Saturation, rng: Stream) -> torch.Tensor:
    """HSV saturation * scale + shift, clipped to [0, 1] (``skimage.color`` round trip).

    Hue and value stay fixed, and each channel is v - v s f(hue) with f in [0, 1], so
    the round trip reduces to scaling every channel's distance below v by s' / s. Grey
    pixels (s = 0) get skimage's hue 0, red: (v, v - v s', v - v s').
    """
    if x.shape[1] != 3:
        raise ValueError(f"saturate needs RGB images (C = 3), got C = {x.shape[1]}")
    v = x.amax(1, keepdim=True)
    delta = v - x.amin(1, keepdim=True)
    s = delta / v.clamp(min=1e-12)
    s_new = (s * p.scale + p.shift).clamp_(0.0, 1.0)
    # in place (1.25x faster on CPU, the same values): v - (v - x) s' / s, which is v on grey pixels (x = v) ...
    out = (v - x).mul_(s_new / s.clamp(min=1e-12))
    out = torch.sub(v, out, out=out)
    # ... where green and blue lose v s' (a 0 / 1 mask, not torch.where: faster)
    out[:, 1:].sub_((v * s_new).mul_(ops.compare(torch.le, delta, 0.0)))
    return out


@register("jpeg_compression", tables={32: (80, 65, 58, 50, 40), 64: (65, 58, 50, 40, 25),
                                      224: (25, 18, 15, 10, 7)},
          cpu_chunk=None)  # whole batches: per-image codec calls, spread over threads
def jpeg_compression(x: torch.Tensor, quality: int, rng: Stream) -> torch.Tensor:
    """A JPEG round trip at ``quality`` (PIL's ``save(..., 'JPEG', quality=q)`` settings)."""
    return ops.jpeg(x, quality)


@register_uint8("jpeg_compression")
def jpeg_compression_uint8(x: torch.Tensor, quality: int, rng: Stream) -> torch.Tensor:
    """``jpeg_compression`` on uint8 batches, straight into the codec."""
    return ops.jpeg_uint8(x, quality).to(x.device)


@register("pixelate", tables={32: (.95, .9, .85, .75, .65), 64: (.9, .8, .7, .6, .5),
                              224: (.6, .5, .4, .3, .25)},
          cpu_chunk=1 << 21)  # per-call index work: 1.4x faster at 224 px than 2^19
def pixelate(x: torch.Tensor, scale: float, rng: Stream) -> torch.Tensor:
    """PIL BOX resize of the 8-bit image to ``int(size * scale)`` and back (uint8 rounding after each pass)."""
    h, w = x.shape[-2:]
    small = ops.pil_resize(x, (int(h * scale), int(w * scale)), "box")
    return ops.pil_resize(small, (h, w), "box")


@register_uint8("pixelate")
def pixelate_uint8(x: torch.Tensor, scale: float, rng: Stream) -> torch.Tensor:
    """``pixelate`` on uint8 batches with Pillow's own fixed-point arithmetic (no float round trip)."""
    h, w = x.shape[-2:]
    small = ops.pil_box_resize_uint8(x, (int(h * scale), int(w * scale)))
    return ops.pil_box_resize_uint8(small, (h, w))


class Elastic(NamedTuple):
    alpha: float  # displacement scale (px)
    sigma: float  # smoothing of the displacement field (px)
    affine: float  # jitter of the affine control points (px)


def _elastic_table(unit: float, rows: tuple[tuple[float, float, float], ...]) -> tuple[Elastic, ...]:
    return tuple(Elastic(unit * a, unit * s, unit * f) for a, s, f in rows)


@register("elastic_transform", tables={
    32: _elastic_table(32, ((0, 0, .08), (.05, .2, .07), (.08, .06, .06), (.1, .04, .05), (.1, .03, .03))),
    64: _elastic_table(64, ((0, 0, .08), (.05, .3, .06), (.1, .08, .06), (.1, .03, .03), (.16, .03, .02))),
    # the ImageNet script multiplies by 244 (not 224) on purpose: "nothing is incorrect"
    224: _elastic_table(244, ((2, .7, .1), (2, .08, .2), (.05, .01, .02), (.07, .01, .02), (.12, .01, .02)))},
    cpu_chunk=1 << 20)  # 1.3-1.5x faster at 224 px than 2^19
def elastic_transform(x: torch.Tensor, p: Elastic, rng: Stream) -> torch.Tensor:
    """Random affine warp (``cv2.warpAffine``, BORDER_REFLECT_101), then a smooth random displacement field.

    The field is uniform(-1, 1) noise smoothed by ``skimage.filters.gaussian(sigma,
    mode='reflect', truncate=3)`` times ``alpha``, sampled like
    ``scipy.ndimage.map_coordinates(order=1, mode='reflect')``.
    """
    b, _, h, w = x.shape
    center = torch.tensor([h // 2, w // 2], dtype=torch.float64)  # the reference's (row, col) used as (x, y)
    size = min(h, w) // 3
    src = torch.stack((center + size, torch.stack((center[0] + size, center[1] - size)), center - size))
    src = src.to(x.device).expand(b, 3, 2)
    dst = src + rng.uniform(3, 2, low=-p.affine, high=p.affine).to(torch.float64)
    x = ops.warp_affine(x, ops.affine_from_points(src, dst), "mirror")
    kernel = ops.gaussian_kernel1d(p.sigma, truncate=3.0)
    dx, dy = (p.alpha * ops.separable_filter(rng.uniform(1, h, w, low=-1.0, high=1.0), kernel, mode="reflect")
              for _ in range(2))
    rows, cols = ops.pixel_grid(b, h, w, x.device)
    return ops.remap(x, rows + dy[:, 0], cols + dx[:, 0], "reflect")
