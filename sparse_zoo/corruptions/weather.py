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
from . import ops
from .motion import motion_blur as _magick_motion_blur
from .registry import register
from .rng import Stream


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
}, cpu_chunk=1 << 21,  # the plasma's many small steps cost per call: 2x faster at 224 px than 2^19
   notes="(fog strength, plasma wibble decay); the plasma map is the next power of two >= the image side, "
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
         "(see corruptions.frost)",
         cpu_chunk=1 << 20)  # 1.1-1.4x faster at 224 px than 2^19
def frost(x: torch.Tensor, p: tuple[float, float, float], rng: Stream, *,
          textures_dir: str | None = None) -> torch.Tensor:
    """``c0 * x + c1 * texture crop``; ``textures_dir`` (or ``$SPARSE_ZOO_FROST_DIR``) overrides the textures."""
    image_weight, frost_weight, scale = p
    bank = frost_textures.textures(frost_textures.frost_dir(textures_dir), scale, str(x.device))
    layer = frost_textures.random_crops(bank, rng, x.shape[-2], x.shape[-1])
    if x.shape[1] == 1:
        layer = ops.rgb_to_gray(layer)
    return torch.mul(x, image_weight).add_(layer.mul_(frost_weight))  # in place: 1.3x faster, the same sums


# --------------------------------------------------------------------------- snow

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
    # the reference zooms into a full-size normal layer; only its centre is read, so only that is drawn
    layer = ops.zoom_centre(rng.normal(1, *ops.zoom_crop_size(h, w, zoom), mean=loc, std=scale), zoom, (h, w))
    layer = ops.zero_below(layer, threshold)
    layer = torch.floor(layer.clamp(0.0, 1.0) * 255.0) / 255.0  # the reference stores the layer as uint8 ...
    layer = _magick_motion_blur(layer, radius, sigma, rng.uniform(1, low=-135.0, high=-45.0)[:, 0])
    layer = ops.quantize(layer)  # ... and ImageMagick writes it back as 8-bit PNG
    x = weight * x + (1 - weight) * torch.maximum(x, ops.rgb_to_gray(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-2, -1)


# --------------------------------------------------------------------------- spatter

_TG22 = 13573  # OpenCV Canny's tan(22.5 deg) in Q15
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_BOX3 = torch.full((3, 3), 1.0 / 9.0)
_EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
_WATER = (175 / 255.0, 238 / 255.0, 238 / 255.0)  # pale turquoise
_MUD = (63 / 255.0, 42 / 255.0, 20 / 255.0)


def _filter3x3(x: torch.Tensor, kernel: torch.Tensor, border: str = "reflect") -> torch.Tensor:
    """``cv2.filter2D`` with a 3x3 kernel as a sum of shifted slices (a 1-channel conv2d is slow on CPU).

    ``border`` is a torch pad mode: 'reflect' is OpenCV's default BORDER_REFLECT_101,
    'replicate' its BORDER_REPLICATE.
    """
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode=border)
    out = torch.zeros_like(x)
    for (i, j), k in zip(((i, j) for i in range(3) for j in range(3)), kernel.flatten().tolist()):
        if k:
            out.add_(padded[..., i:i + h, j:j + w], alpha=k)
    return out


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """3x3 (8-connected) binary dilation of a (B, 1, H, W) bool mask, separably."""
    m = F.pad(mask, (1, 1, 1, 1))
    m = m[..., :, :-2] | m[..., :, 1:-1] | m[..., :, 2:]
    return m[..., :-2, :] | m[..., 1:-1, :] | m[..., 2:, :]


def canny(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """``cv2.Canny(x, low, high)`` of (B, 1, H, W) 8-bit values (0..255): bool edge map.

    OpenCV's algorithm: 3x3 Sobel (replicated border), L1 magnitude, its
    non-maximum suppression (Q15 sector tests, asymmetric > / >= comparisons,
    zero outside the image), then hysteresis: weak pixels (> low) joined to strong
    ones (> high) by 8-connected paths of weak pixels.
    """
    dx = _filter3x3(x, _SOBEL_X, "replicate")
    dy = _filter3x3(x, _SOBEL_X.T, "replicate")
    mag = dx.abs() + dy.abs()
    m = F.pad(mag, (1, 1, 1, 1))

    def at(r: int, c: int) -> torch.Tensor:  # neighbour at row offset r, column offset c
        return m[..., 1 + r:m.shape[-2] - 1 + r, 1 + c:m.shape[-1] - 1 + c]

    ax, ay = dx.abs() * _TG22, dy.abs() * 32768.0
    horizontal = ay < ax
    vertical = ay > ax + dx.abs() * 65536.0
    anti = (dx < 0) != (dy < 0)  # OpenCV's s = -1
    diag = torch.where(anti, (mag > at(-1, 1)) & (mag > at(1, -1)), (mag > at(-1, -1)) & (mag > at(1, 1)))
    peak = torch.where(horizontal, (mag > at(0, -1)) & (mag >= at(0, 1)),
                       torch.where(vertical, (mag > at(-1, 0)) & (mag >= at(1, 0)), diag))
    weak = peak & (mag > low)
    edges = weak & (mag > high)
    while True:
        grown = _dilate(edges) & weak
        if torch.equal(grown, edges):
            return edges
        edges = grown


def distance_to(edges: torch.Tensor, cap: float) -> torch.Tensor:
    """Euclidean distance from every pixel to the nearest ``True`` of (B, 1, H, W) ``edges``, capped at ``cap``.

    Exact (separable: column distances by running max/min, then a window of
    +-cap columns); ``cv2.distanceTransform(DIST_L2, 5)`` approximates the same
    distance with a 5x5 chamfer mask (within ~2 %).
    """
    h, w = edges.shape[-2:]
    edges = edges.transpose(-1, -2).contiguous()  # (B, 1, W, H): scans along the last dim are ~3x faster
    rows = torch.arange(h, device=edges.device, dtype=torch.float32)
    far = float(h + w + cap)
    above = rows - torch.where(edges, rows, -far).cummax(dim=-1).values
    below = torch.where(edges, rows, 2 * far).flip(-1).cummin(dim=-1).values.flip(-1) - rows
    g2 = torch.minimum(above, below).clamp_(max=cap + 1).square_()
    reach = int(math.ceil(cap))
    g2 = F.pad(g2, (0, 0, reach, reach), value=(cap + 1) ** 2)
    d2 = g2[..., reach:reach + w, :].clone()
    side = torch.empty_like(d2)
    for dx in range(1, reach + 1):  # in place: this loop is most of spatter's time
        torch.minimum(g2[..., reach - dx:reach - dx + w, :], g2[..., reach + dx:reach + dx + w, :], out=side)
        torch.minimum(d2, side.add_(dx * dx), out=d2)
    return d2.sqrt_().clamp_(max=cap).transpose(-1, -2).contiguous()


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """``cv2.equalizeHist`` of each (1, H, W) image of 8-bit values (0..255), as floats 0..255."""
    b = x.shape[0]
    values = x.reshape(b, -1).long()
    hist = torch.zeros(b, 256, dtype=torch.long, device=x.device).scatter_add_(1, values, torch.ones_like(values))
    total = values.shape[1]
    first = (hist > 0).long().argmax(dim=1, keepdim=True)
    first_count = hist.gather(1, first)
    scale = 255.0 / (total - first_count).clamp_min(1).float()
    cumulative = hist.cumsum(1) - hist.cumsum(1).gather(1, first)
    lut = torch.round((cumulative.float() * scale).float()).clamp(0, 255)
    lut = torch.where(first_count == total, first.float(), lut)  # a constant image stays as it is
    return lut.gather(1, values).float().view_as(x)


@register("spatter", tables={
    32: [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
    64: [(0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
         (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)],
    224: [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
          (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)],
}, notes="(liquid mean, std, blur sigma, threshold, water intensity | mud blur sigma, 0 water | 1 mud)",
         cpu_chunk=1 << 20)  # its ~150 small ops per call: 1.2-1.4x faster at 224 px than 2^19
def spatter(x: torch.Tensor, p: tuple[float, ...], rng: Stream) -> torch.Tensor:
    """Water drops (shaded with the reference's OpenCV edge/distance/emboss chain) or mud splashes.

    A liquid layer with no drops leaves the image unchanged (the reference divides 0 by 0 there).
    """
    loc, scale, sigma, threshold, strength, mud = p
    b, c, h, w = x.shape
    liquid = ops.gaussian_blur(rng.normal(1, h, w, mean=loc, std=scale), sigma)
    liquid = ops.zero_below(liquid, threshold)
    if mud:
        m = ops.gaussian_blur((liquid > threshold).float(), strength)
        m = ops.zero_below(m, 0.8)
        return x * (1 - m) + m * x.new_tensor(_MUD[:c] if c == 3 else (sum(_MUD) / 3,)).view(1, c, 1, 1)
    levels = torch.floor((liquid * 255.0).clamp(0, 255))          # astype(np.uint8)
    dist = distance_to(canny(levels, 50.0, 150.0), 20.0)          # distanceTransform + THRESH_TRUNC at 20
    dist = torch.floor(_filter3x3(dist, _BOX3))                 # cv2.blur (float) then astype(np.uint8)
    dist = equalize_hist(dist)
    dist = torch.round(_filter3x3(dist, _EMBOSS)).clamp(0, 255)  # filter2D to CV_8U saturates
    dist = torch.round(_filter3x3(dist, _BOX3))                 # cv2.blur of uint8 rounds
    m = liquid * dist
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * strength
    colour = x.new_tensor(_WATER if c == 3 else (sum(_WATER) / 3,)).view(1, c, 1, 1)
    return x + m * colour
