"""ImageNet-C weather corruptions and motion blur (Hendrycks & Dietterich 2019).

Tables come from the reference generation scripts: ``make_cifar_c.py`` (32 px),
``make_tinyimagenet_c.py`` (64 px) and ``make_imagenet_c.py`` (224 px). Images of
other sizes use the table of the closest of these sizes (``registry.Corruption``),
with size-dependent pieces (the plasma map, the snow layer, crops) following the
actual image size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import frost as frost_textures
from .motion import motion_blur as _magick_motion_blur
from .registry import register
from .rng import Stream

_RGB2GRAY = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = x.new_tensor(_RGB2GRAY).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------- motion blur

@register("motion_blur", tables={
    32: [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
    64: [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
    224: [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
}, notes="ImageMagick motion blur (radius, sigma), angle ~ U(-45, 45) degrees")
def motion_blur(x: torch.Tensor, p: tuple[float, float], rng: Stream) -> torch.Tensor:
    radius, sigma = p
    angle = rng.uniform(1, low=-45.0, high=45.0)[:, 0]
    return _magick_motion_blur(x, radius, sigma, angle)


# --------------------------------------------------------------------------- fog

def plasma_fractal(rng: Stream, mapsize: int, wibbledecay: float) -> torch.Tensor:
    """(B, mapsize, mapsize) diamond-square height maps in [0, 1], the reference's ``plasma_fractal``.

    Same recursion and draws as the reference: each level adds
    ``wibble * U(-wibble, wibble)`` to the mean of the neighbours, starting from
    ``wibble = 100`` and dividing it by ``wibbledecay`` per level; each map is then
    min-max normalised. ``mapsize`` must be a power of two.
    """
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(f"plasma_fractal: mapsize must be a power of two >= 2, got {mapsize}")
    m = torch.zeros(len(rng), mapsize, mapsize, device=rng.device)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        return total / 4 + wibble * rng.uniform(*total.shape[1:], low=-wibble, high=wibble)

    while step >= 2:
        half = step // 2
        corners = m[:, ::step, ::step]
        squares = corners + corners.roll(-1, 1)
        m[:, half::step, half::step] = wibbled_mean(squares + squares.roll(-1, 2))
        centres, corners = m[:, half::step, half::step], m[:, ::step, ::step]
        m[:, ::step, half::step] = wibbled_mean(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        m[:, half::step, ::step] = wibbled_mean(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= wibbledecay
    m -= m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


@register("fog", tables={
    32: [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
    64: [(0.4, 3), (0.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
    224: [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)],
}, notes="(fog strength, plasma wibble decay); the plasma map is the next power of two >= the image side, "
         "cropped, as the reference's 32/64/256 maps")
def fog(x: torch.Tensor, p: tuple[float, float], rng: Stream) -> torch.Tensor:
    strength, decay = p
    h, w = x.shape[-2:]
    mapsize = 1 << max(1, math.ceil(math.log2(max(h, w))))
    plasma = plasma_fractal(rng, mapsize, decay)[:, None, :h, :w]
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x + strength * plasma) * max_val / (max_val + strength)


# --------------------------------------------------------------------------- frost

@register("frost", tables={
    32: [(1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2), (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)],
    64: [(1, 0.3, 0.3), (0.9, 0.4, 0.3), (0.8, 0.45, 0.3), (0.75, 0.5, 0.3), (0.7, 0.55, 0.3)],
    224: [(1, 0.4, 1.0), (0.8, 0.6, 1.0), (0.7, 0.7, 1.0), (0.65, 0.7, 1.0), (0.6, 0.75, 1.0)],
}, notes="(image weight, frost weight, texture scale); synthetic textures unless $SPARSE_ZOO_FROST_DIR is set "
         "(see corruptions.frost)")
def frost(x: torch.Tensor, p: tuple[float, float, float], rng: Stream, *,
          textures_dir: str | None = None) -> torch.Tensor:
    """``c0 * x + c1 * texture crop``; ``textures_dir`` (or ``$SPARSE_ZOO_FROST_DIR``) overrides the textures."""
    image_weight, frost_weight, scale = p
    bank = frost_textures.textures(frost_textures.frost_dir(textures_dir), scale, str(x.device))
    layer = frost_textures.random_crops(bank, rng, x.shape[-2], x.shape[-1])
    if x.shape[1] == 1:
        layer = _gray(layer)
    return image_weight * x + frost_weight * layer


# --------------------------------------------------------------------------- snow

def _clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The reference's ``clipped_zoom``: zoom the central 1/factor crop (scipy ``zoom``, order 1) back to size."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    size = (round(ch * factor), round(cw * factor))
    zoomed = F.interpolate(x[..., top:top + ch, left:left + cw], size=size, mode="bilinear", align_corners=True)
    trim_top, trim_left = (size[0] - h) // 2, (size[1] - w) // 2
    return zoomed[..., trim_top:trim_top + h, trim_left:trim_left + w]


@register("snow", tables={
    32: [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
    64: [(0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)],
    224: [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
          (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
}, notes="(flake mean, flake std, zoom, threshold, blur radius, blur sigma, image weight); "
         "flakes motion-blurred at U(-135, -45) degrees")
def snow(x: torch.Tensor, p: tuple[float, ...], rng: Stream) -> torch.Tensor:
    loc, scale, zoom, threshold, radius, sigma, weight = p
    b, _, h, w = x.shape
    layer = _clipped_zoom(rng.normal(1, h, w, mean=loc, std=scale), zoom)
    layer = torch.where(layer < threshold, 0.0, layer)
    layer = torch.floor(layer.clamp(0.0, 1.0) * 255.0) / 255.0  # the reference stores the layer as uint8 ...
    layer = _magick_motion_blur(layer, radius, sigma, rng.uniform(1, low=-135.0, high=-45.0)[:, 0])
    layer = torch.round(layer * 255.0) / 255.0  # ... and ImageMagick writes it back as 8-bit PNG
    x = weight * x + (1 - weight) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-2, -1)
