"""ImageNet-C-bar corruptions (Mintun et al. 2021), vectorised over pixels and the batch.

Each reference transform (``imagenet_c_bar/corrupt.py`` of
facebookresearch/augmentation-corruption) takes a float severity in (0, 10]; the
benchmark uses five of them per corruption, listed in ``imagenet_c_bar.csv``. Our
levels 1-5 are those five values in order (table key 224). CIFAR-10-C-bar
(``cifar10_c_bar.csv``) shares five of the ten corruptions; their CIFAR severities
are the table for 32 px. Size-dependent parameters use the image side
(``max(H, W)``), as the reference's ``im_size``; the reference only handles square
images.

The reference loops over pixels in Python; here every formula is evaluated on the
whole (B, H, W) grid at once in float32. Its random draws (``np.random`` and
``RandomState(seed)`` tables such as ray lengths, noise phases, Perlin permutations)
come from the per-sample ``Stream`` instead, with the same distributions. Parameter
sampling is split from rendering (``*_params`` functions) so tests can render the
same draws with an independent per-pixel computation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import ops
from .registry import register
from .rng import Stream

GREY = 128.0 / 255.0  # checkerboard_cutout's fill
_LUMA = (0.2126, 0.7152, 0.0722)


def _level(s: float, maxval: float) -> float:
    """The reference's ``float_parameter(level, maxval)``."""
    return s * maxval / 10.0


def _side(x: torch.Tensor) -> int:
    return max(x.shape[-2:])


def _grid(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, H, W) float row and column coordinates."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return ys.unsqueeze(0), xs.unsqueeze(0)


def _col(t: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1) for broadcasting against (B, H, W) grids."""
    return t.reshape(-1, 1, 1)


# --------------------------------------------------------------------------- spectral noises

def _spectral_noise(rng: Stream, size: int, power: torch.Tensor) -> torch.Tensor:
    """(B, size, size) noise of the reference's ``gen_noise``: |spectrum| = ``power``, random phases.

    The phases fill the left half and are mirrored (``phases[::-1, ::-1]``) into the
    right half; the spectrum is rolled by size // 2, inverse-FFT'd, its real part
    kept and divided by its standard deviation.
    """
    half = size // 2
    phases = rng.uniform(size, half, low=0.0, high=2 * math.pi)
    if size % 2 == 0:
        phases = torch.cat((phases, phases.flip(1, 2)), dim=2)
    else:
        centre = rng.uniform(half, 1, low=0.0, high=2 * math.pi)
        centre = torch.cat((centre, centre.new_zeros(len(rng), 1, 1), centre.flip(1)), dim=1)
        phases = torch.cat((phases, centre, phases.flip(1, 2)), dim=2)
    # rolled before torch.polar, not after: the same values, and rolling complex tensors is 20x slower
    shift = (half, half)
    spectrum = torch.polar(power.roll(shift, dims=(-2, -1)).expand_as(phases), phases.roll(shift, dims=(1, 2)))
    noise = torch.fft.ifft2(spectrum).real
    return noise / noise.std(dim=(1, 2), keepdim=True, correction=0)


def _radius_from_centre(size: int, device: torch.device) -> torch.Tensor:
    ys, xs = _grid(size, size, device)
    return torch.sqrt((xs - size / 2) ** 2 + (ys - size / 2) ** 2)


@register("blue_noise_sample", tables={32: [0.7, 1.4, 2.1, 3.5, 4.2], 224: [0.8, 1.6, 2.4, 4.0, 5.6]},
          notes="zeroes the pixels where unit-std blue noise is below 0.3 * severity - 2.5")
def blue_noise_sample(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    h, w = x.shape[-2:]
    size = _side(x)
    noise = _spectral_noise(rng, size, _radius_from_centre(size, x.device))[:, None, :h, :w]
    return x * (noise > _level(s, 3.0) - 2.5)


@register("brownish_noise", tables={32: [2.5, 4.0, 5.5, 6.5, 7.0], 224: [1.0, 2.0, 3.0, 4.0, 5.0]},
          notes="adds unit-std 1/(f^2 + 1) noise per channel, scaled by 6.4 * severity / 255")
def brownish_noise(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    b, c, h, w = x.shape
    size = _side(x)
    power = 1.0 / (_radius_from_centre(size, x.device) ** 2 + 1.0)
    noise = torch.stack([_spectral_noise(rng, size, power) for _ in range(c)], dim=1)[..., :h, :w]
    return x + _level(s, 64.0) / 255.0 * noise


# --------------------------------------------------------------------------- procedural patterns

def single_frequency_params(rng: Stream, s: float) -> dict[str, torch.Tensor | float]:
    magnitude = rng.uniform(1, low=-math.pi, high=math.pi)[:, 0]
    other = (rng.uniform(1)[:, 0] * 2 - 1) * magnitude.abs()
    swap = rng.uniform(1)[:, 0] < 0.5  # np.random.permutation(2)
    freq_x = torch.where(swap, other, magnitude)
    freq_y = torch.where(swap, magnitude, other)
    phase = rng.uniform(1, low=0.0, high=2 * math.pi)[:, 0]
    return {"freq_x": freq_x, "freq_y": freq_y, "phase": phase, "amplitude": _level(s, 196.0) / 255.0}


@register("single_frequency_greyscale", tables={224: [1.0, 1.5, 2.0, 4.5, 5.0]},
          notes="adds a grey plane wave sin(fx x + fy y + phase) of amplitude 19.6 * severity / 255")
def single_frequency_greyscale(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    p = single_frequency_params(rng, s)
    ys, xs = _grid(*x.shape[-2:], x.device)
    wave = torch.sin(xs * _col(p["freq_x"]) + ys * _col(p["freq_y"]) + _col(p["phase"]))
    return x + p["amplitude"] * wave.unsqueeze(1)


@register("cocentric_sine_waves", tables={224: [3.0, 5.0, 8.0, 9.0, 10.0]},
          notes="adds wobbly concentric rings (sawtooth in radius) of amplitude 12.8 * severity / 255")
def cocentric_sine_waves(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    size = _side(x)
    offset = rng.uniform(2, low=0.0, high=size)
    freq = rng.uniform(1, low=0.0, high=10.0)[:, 0]
    amplitude = rng.uniform(1, low=0.0, high=size / 10)[:, 0]
    ring_width = rng.uniform(1, low=0.0, high=size / 10)[:, 0]
    ys, xs = _grid(*x.shape[-2:], x.device)
    dx, dy = xs - _col(offset[:, 0]), ys - _col(offset[:, 1])
    angle = torch.atan2(dx, dy) * _col(freq)
    distance = torch.sqrt(dx ** 2 + dy ** 2) + torch.sin(angle) * _col(amplitude)
    rings = torch.remainder(distance, _col(ring_width)) / _col(ring_width) - 0.5
    return x + _level(s, 128.0) / 255.0 * rings.unsqueeze(1)


def plasma_params(rng: Stream, size: int) -> dict[str, torch.Tensor]:
    return {"time": rng.uniform(1, low=0.0, high=6 * math.pi)[:, 0],
            "iterations": rng.integers(4, 7, 1)[:, 0],
            "sharpness": rng.uniform(1, low=0.5, high=1.0)[:, 0],
            "scale": rng.uniform(1, low=0.075, high=0.2)[:, 0] * size}


def plasma(params: dict[str, torch.Tensor], h: int, w: int) -> torch.Tensor:
    """(B, 3, H, W) colour plasma in [-1, 1] of the reference's shader-style kernel.

    Not the diamond-square fractal of fog. The reference's ``i[3]`` term starts at 0
    and is only ever multiplied, so it stays 0 and is dropped.
    """
    time, iterations = _col(params["time"]), _col(params["iterations"])
    sharpness, scale = _col(params["sharpness"]), _col(params["scale"])
    ys, xs = _grid(h, w, time.device)
    px, py = xs / scale, ys / scale
    freq, div1, div2 = 1.0, 1.0, torch.ones_like(sharpness)
    for step in range(6):
        r0 = torch.cos(py * freq + time / div1) / div2
        r1 = torch.sin(px * freq + time / div1) / div2
        active = iterations > step
        px = torch.where(active, px + r0 - 0.3 * r1, px)
        py = torch.where(active, py + r1 + 0.3 * r0, py)
        freq, div1, div2 = freq * 1.93, div1 * 1.15, div2 * (2.25 - sharpness)
    return torch.stack((torch.sin(px - time), torch.sin((px + py + torch.sin(time)) * 0.5),
                        torch.sin(py + time)), dim=1)


@register("plasma_noise", tables={224: [4.75, 7.0, 8.5, 9.25, 10.0]},
          notes="blends with an iterated-trigonometric colour plasma, weight 6.4 * severity / 255")
def plasma_noise(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    noise = plasma(plasma_params(rng, _side(x)), *x.shape[-2:])
    if x.shape[1] == 1:
        noise = noise.mean(dim=1, keepdim=True)
    weight = _level(s, 64.0) / 255.0
    return (1 - weight) * x + weight * noise


# --------------------------------------------------------------------------- perlin

_PERLIN_B = 256
_PERLIN_N = 16 * 256


def perlin_tables(rng: Stream) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample permutation (B, 256) and unit gradients (B, 256, 2) of ``PerlinNoiseGenerator``.

    The reference shuffles with ``j = randint % 256`` for i = 255 .. 0 (every j, not
    j <= i): a biased shuffle that we replay exactly. Its gradients are random
    integer vectors in [-256, 255]^2 / 256, normalised; a zero vector (NaN in the
    reference, p = 2^-18 per vector) stays zero here.
    """
    g = (rng.integers(0, 2 * _PERLIN_B, _PERLIN_B, 2) - _PERLIN_B).float() / _PERLIN_B
    g = g / g.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    swaps = rng.integers(0, _PERLIN_B, _PERLIN_B).cpu().numpy()
    # 256 sequential swaps of small rows: numpy on the host, 10x faster than as torch ops
    perm = np.tile(np.arange(_PERLIN_B), (len(rng), 1))
    rows = np.arange(len(rng))
    for i in range(_PERLIN_B - 1, -1, -1):
        j = swaps[:, i]
        perm[:, i], perm[rows, j] = perm[rows, j], perm[:, i].copy()
    return torch.from_numpy(perm).to(rng.device), g


def perlin_lattice(perm: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(B, 2, 256, 256) gradient ``g[p[p[i] + j]]`` at every lattice point (i, j) (``p[k] == p[k % 256]``)."""
    b = perm.shape[0]
    index = (perm.unsqueeze(2) + torch.arange(_PERLIN_B, device=perm.device)) % _PERLIN_B
    corner = perm.gather(1, index.flatten(1))
    return torch.stack((g[..., 0].gather(1, corner), g[..., 1].gather(1, corner)), 1).view(b, 2, _PERLIN_B, _PERLIN_B)


def perlin_noise_2d(lattice: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, N, M): the reference's ``noise(x[n], y[m])`` on the grid of coordinates ``x`` (N,) by ``y`` (M,).

    On a grid the lattice cell of a pixel is (cell of its row, cell of its column),
    so the corner gradients are picked by row and column indices, not per pixel.
    """
    def split(t):
        t = t + _PERLIN_N
        cell = torch.floor(t)
        b0 = cell.long() % _PERLIN_B
        return b0, (b0 + 1) % _PERLIN_B, t - cell

    bx0, bx1, rx0 = split(x)
    by0, by1, ry0 = split(y)
    rx0, ry0 = rx0.view(1, -1, 1), ry0.view(1, 1, -1)
    rx1, ry1 = rx0 - 1.0, ry0 - 1.0

    def dot(bx, by, rx, ry):
        grad = lattice.index_select(3, by).index_select(2, bx)  # 1.4x faster than lattice[:, :, bx, by]
        return rx * grad[:, 0] + ry * grad[:, 1]

    sx, sy = rx0 * rx0 * (3.0 - 2.0 * rx0), ry0 * ry0 * (3.0 - 2.0 * ry0)
    u, v = dot(bx0, by0, rx0, ry0), dot(bx1, by0, rx1, ry0)
    a = u + sx * (v - u)
    u, v = dot(bx0, by1, rx0, ry1), dot(bx1, by1, rx1, ry1)
    b = u + sx * (v - u)
    return 1.5 * (a + sy * (b - a))


@register("perlin_noise", tables={224: [4.6, 5.2, 5.8, 7.6, 8.8]},
          notes="blends with grey Perlin turbulence (5 octaves, period 32 px at 224), weight 0.05 * severity")
def perlin_noise(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    b, _, h, w = x.shape
    lattice = perlin_lattice(*perlin_tables(rng))
    period = 32 * _side(x) / 224
    # the reference calls noise(row, col): its "x" is the row coordinate
    rows = torch.arange(h, device=x.device, dtype=torch.float32) / period
    cols = torch.arange(w, device=x.device, dtype=torch.float32) / period
    turbulence, f = 0.0, 1.0
    while f <= 16.0:
        turbulence = turbulence + perlin_noise_2d(lattice, f * rows, f * cols).abs() / f
        f *= 2
    value = (0.5 * turbulence + 0.5).clamp(0.0, 1.0).unsqueeze(1)
    alpha = _level(s, 0.5)
    return (1 - alpha) * x + alpha * value


# --------------------------------------------------------------------------- checkerboard

def checkerboard_params(rng: Stream, s: float, size: int) -> dict[str, torch.Tensor | float | int]:
    """Angle, square side and the (B, G, G) 'cut' grid: a square is cut with probability s / 10."""
    angle = rng.uniform(1, low=0.0, high=2 * math.pi)[:, 0]
    scale = (rng.uniform(1, low=0.1, high=0.25)[:, 0] * size).clamp_min(1.0)
    cells = int(4 * size // max(0.1 * size, 1.0)) + 1
    cut = rng.uniform(cells, cells) < _level(s, 1.0)
    return {"angle": angle, "scale": scale, "grid": cut, "cells": torch.floor(4 * size / scale).long()}


@register("checkerboard_cutout", tables={32: [1.0, 2.0, 3.0, 4.0, 5.0], 224: [2.0, 3.0, 4.0, 5.0, 6.0]},
          notes="greys out a random subset (severity / 10) of one colour of a rotated checkerboard")
def checkerboard_cutout(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    p = checkerboard_params(rng, s, _side(x))
    ys, xs = _grid(*x.shape[-2:], x.device)
    cos, sin, scale = _col(torch.cos(p["angle"])), _col(torch.sin(p["angle"])), _col(p["scale"])
    nx = (cos * ys + sin * xs) / scale
    ny = (-sin * ys + cos * xs) / scale
    same_colour = torch.floor(nx).remainder(2) == torch.floor(ny).remainder(2)
    # grid[int(nx), int(ny)]: truncation towards zero, negative indices wrap (Python indexing)
    cells = _col(p["cells"])
    ix, iy = torch.trunc(nx).long(), torch.trunc(ny).long()
    ix, iy = torch.where(ix < 0, ix + cells, ix), torch.where(iy < 0, iy + cells, iy)
    grid = p["grid"]
    cut = grid.flatten(1).gather(1, (ix * grid.shape[-1] + iy).flatten(1)).view_as(nx)
    return torch.where((same_colour & cut).unsqueeze(1), GREY, x)


# --------------------------------------------------------------------------- sparkles

def _ray_falloff(ys: torch.Tensor, xs: torch.Tensor, centre: torch.Tensor, lengths: torch.Tensor,
                 rays: torch.Tensor, exponent: float) -> torch.Tensor:
    """The reference sparkle kernel's blend weight f, clipped to [0, 1], on a (B, H, W) grid.

    ``lengths`` (B, R) holds each sample's ray lengths, of which the first ``rays`` (B,) are used.
    """
    dy, dx = ys - _col(centre[:, 0]), xs - _col(centre[:, 1])
    d = (torch.atan2(dx, dy) + math.pi) / (2 * math.pi) * _col(rays.float())
    i = torch.floor(d)
    f = d - i
    i = i.long().flatten(1)
    n = rays.view(-1, 1)
    start = lengths.gather(1, i % n).view_as(f)
    stop = lengths.gather(1, (i + 1) % n).view_as(f)
    length = start + f * (stop - start)
    gain = (length ** 2 / (dx ** 2 + dy ** 2 + 1e-4)) ** exponent
    return ((1 - (f - 0.5) ** 2) * gain).clamp(0.0, 1.0)


def sparkles_params(rng: Stream, s: float, size: int) -> dict[str, torch.Tensor]:
    centres = rng.uniform(5, 2, low=0.0, high=size)
    radius = _level(s, 0.1) * size
    rays = rng.integers(50, 200, 5)
    lengths = (radius + 0.25 * radius * rng.normal(5, 199)).clamp_min(1.0)
    return {"centres": centres, "rays": rays, "lengths": lengths}


@register("sparkles", tables={32: [0.7, 3.5, 5.6, 6.3, 7.0], 224: [1.0, 2.0, 3.0, 5.0, 6.0]},
          notes="five white star bursts with 50-199 rays of radius 0.01 * severity * side")
def sparkles(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    p = sparkles_params(rng, s, _side(x))
    ys, xs = _grid(*x.shape[-2:], x.device)
    for k in range(5):  # applied one after the other, as in the reference
        f = _ray_falloff(ys, xs, p["centres"][:, k], p["lengths"][:, k], p["rays"][:, k], 1.0).unsqueeze(1)
        x = x + f * (1.0 - x)
    return x


def inverse_sparkles_params(rng: Stream, s: float, size: int) -> dict[str, torch.Tensor | float]:
    centre = rng.uniform(2, low=0.25 * size, high=0.75 * size)
    radius = 0.25 * size
    rays = rng.integers(50, 200, 1)[:, 0]
    lengths = radius + 0.25 * radius * rng.normal(199)
    return {"centre": centre, "rays": rays, "lengths": lengths, "exponent": _level(s, 65.0) / 50.0}


@register("inverse_sparkles", tables={32: [1.0, 1.5, 2.5, 4.5, 5.0], 224: [1.0, 2.0, 4.0, 9.0, 10.0]},
          notes="whites out everything but a star-shaped window of radius side / 4")
def inverse_sparkles(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    p = inverse_sparkles_params(rng, s, _side(x))
    ys, xs = _grid(*x.shape[-2:], x.device)
    f = _ray_falloff(ys, xs, p["centre"], p["lengths"], p["rays"], p["exponent"]).unsqueeze(1)
    return 1.0 + f * (x - 1.0)


# --------------------------------------------------------------------------- caustic refraction

def caustics(time: torch.Tensor, size: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H, W) caustic light pattern of the reference's ``caustic_noise_kernel``."""
    ys, xs = _grid(h, w, time.device)
    p0 = torch.remainder(ys / _col(size), 1.0) * 6.28318530718 - 250
    p1 = torch.remainder(xs / _col(size), 1.0) * 6.28318530718 - 250
    i0, i1, c, t0, inten = p0, p1, 1.0, _col(time), 0.005
    for n in range(5):
        t = t0 * (1.0 - 3.5 / (n + 1))
        i0, i1 = (p0 + torch.cos(t - i0) + torch.sin(t + i1), p1 + torch.sin(t - i1) + torch.cos(t + i0))
        length = torch.sqrt((p0 / (torch.sin(i0 + t) / inten)) ** 2 + (p1 / (torch.cos(i1 + t) / inten)) ** 2)
        c = c + 1.0 / length
    c = 1.17 - (c / 5.0) ** 1.4
    return (c.abs() ** 8.0).clamp(0.0, 1.0)


def refraction_offsets(grad_rows: torch.Tensor, grad_cols: torch.Tensor, eta: float,
                       lens_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Row/column displacements of the reference's ``refract([0, 0, 1], n, eta) * lens_scale``.

    ``n`` is the unit normal of (grad_rows, grad_cols, 1). The reference builds a
    rotation matrix and inverts it; in closed form the refracted ray's in-plane part
    is ``n_xy * (sqrt(1 - |n_xy|^2 / eta^2) - n_z / eta)``; nearly flat normals
    (``n_z >= 1 - 1e-3``) pass straight through. Rounded to 3 decimals as the reference.
    """
    norm = torch.sqrt(grad_rows ** 2 + grad_cols ** 2 + 1.0)
    nz = 1.0 / norm
    rho2 = (grad_rows ** 2 + grad_cols ** 2) / norm ** 2
    factor = torch.sqrt(1.0 - rho2 / eta ** 2) - nz / eta
    factor = torch.where(nz >= 1.0 - 1e-3, 0.0, factor) * lens_scale
    return (torch.round(grad_rows / norm * factor * 1000.0) / 1000.0,
            torch.round(grad_cols / norm * factor * 1000.0) / 1000.0)


@register("caustic_refraction", tables={224: [2.35, 3.2, 4.9, 6.6, 9.15]},
          notes="refracts the image through a caustic 'water surface' of height = its luma, and lights it")
def caustic_refraction(x: torch.Tensor, s: float, rng: Stream) -> torch.Tensor:
    b, c, h, w = x.shape
    side = _side(x)
    time = rng.uniform(1, low=0.5, high=2.0)[:, 0]
    size = rng.uniform(1, low=0.75, high=1.25)[:, 0] * side
    eta, lens_scale, lighting = 4.0, _level(s, 0.5 * side), _level(s, 2.0)
    # luma of the (grey) caustics, smoothed with scipy's gaussian_filter(sigma=1)
    surface = ops.gaussian_blur(caustics(time, size, h, w).unsqueeze(1) * sum(_LUMA), 1.0, mode="reflect")[:, 0]
    padded = F.pad(surface, (1, 1, 1, 1))  # zero outside, as luma_at_offset
    grad_rows = padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]   # east - west (along rows)
    grad_cols = padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]   # south - north (along columns)
    shift_rows, shift_cols = refraction_offsets(grad_rows, grad_cols, eta, lens_scale)
    ys, xs = _grid(h, w, x.device)
    out = ops.remap(x, ys + shift_rows, xs + shift_cols, mode="constant")  # zero outside, as the reference
    light = (padded[:, 1:-1, :-2] - padded[:, 1:-1, 2:] + padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) * lighting
    return (out + light.unsqueeze(1)).clamp(0.0, 1.0)
