"""Pure functional torch kernels shared by the corruptions.

Every op works on float32 batches (B, C, H, W) on any device and reproduces the
numerics of the library the reference scripts call (OpenCV, scipy.ndimage,
scikit-image, Pillow, libjpeg), so each corruption can stay a short formula.

Border modes use scipy.ndimage's names:

=========  ===================  ==================  ===============
mode       pads ``abcd`` as     OpenCV              numpy.pad
=========  ===================  ==================  ===============
mirror     ``dcb|abcd|cba``     BORDER_REFLECT_101  reflect
reflect    ``dcba|abcd|dcba``   BORDER_REFLECT      symmetric
nearest    ``aaa|abcd|ddd``     BORDER_REPLICATE    edge
wrap       ``bcd|abcd|abc``     BORDER_WRAP         wrap
constant   ``000|abcd|000``     BORDER_CONSTANT     constant
=========  ===================  ==================  ===============

Linear filters are applied as matrices with the border folded in (``filter_matrix``):
one batched matmul per axis is exact for any kernel size, including kernels wider
than the image (elastic transform), and faster than a padded convolution on CPU.
"""
from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from .rng import Stream, is_compiling, sample_keys, tensor_cache

T = TypeVar("T")
U = TypeVar("U")

MODES = ("mirror", "reflect", "nearest", "wrap", "constant")


# --------------------------------------------------------------------------- borders and filters

def border_index(n: int, lo: int, hi: int, mode: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Source index of positions ``-lo .. n + hi - 1`` of a length-``n`` axis padded with ``mode``.

    Positions outside the image in ``constant`` mode map to -1.
    """
    if mode not in MODES:
        raise ValueError(f"unknown border mode {mode!r}; valid: {', '.join(MODES)}")
    i = torch.arange(-lo, n + hi, device=device)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return i.remainder(n)
    if mode == "constant":
        return torch.where((i >= 0) & (i < n), i, torch.full_like(i, -1))
    if mode == "mirror" and n == 1:
        return torch.zeros_like(i)
    period = 2 * n if mode == "reflect" else 2 * n - 2
    j = i.remainder(period)
    return torch.where(j < n, j, period - (1 if mode == "reflect" else 0) - j)


_TORCH_PAD = {"mirror": "reflect", "nearest": "replicate", "wrap": "circular", "constant": "constant"}


def pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int, mode: str = "mirror") -> torch.Tensor:
    """Pad the last two dims of ``x`` with any border mode and any width (even wider than the image).

    Widths torch's own padding supports go through ``F.pad`` (the same values, several
    times faster than gathering along the last dim on CPU).
    """
    h, w = x.shape[-2:]
    widest = max(left, right, top, bottom)
    if mode in _TORCH_PAD and x.dim() in (3, 4) and x.is_floating_point() and min(left, right, top, bottom) >= 0 \
            and (mode in ("nearest", "constant") or widest < min(h, w)):
        return F.pad(x, (left, right, top, bottom), mode=_TORCH_PAD[mode])
    rows = border_index(x.shape[-2], top, bottom, mode, x.device)
    cols = border_index(x.shape[-1], left, right, mode, x.device)
    if mode == "constant":
        x = F.pad(x, (0, 1, 0, 1))  # a zero row and column at index n
        rows, cols = rows.remainder(x.shape[-2]), cols.remainder(x.shape[-1])  # -1 (outside) to n
    return x.index_select(-2, rows).index_select(-1, cols)


def filter_matrix(n: int, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """(n, n) matrix (or (B, n, n) for a (B, K) kernel) of a 1-D correlation with the border folded in.

    Row i holds the weights of ``sum_k kernel[k] * x[i + k - K // 2]`` (the anchor of
    ``cv2.filter2D`` and ``scipy.ndimage.correlate1d``), with out-of-range taps
    redirected by ``mode``. Matrices of 1-D kernels are cached (read-only): building
    one costs more than applying it to a few images.
    """
    if kernel.dim() == 1:
        return _filter_matrix_cached(n, tuple(kernel.to(torch.float64).tolist()), mode, kernel.device)
    return _filter_matrix(n, kernel, mode)


@functools.lru_cache(maxsize=256)
def _filter_matrix_cached(n: int, kernel: tuple[float, ...], mode: str, device: torch.device) -> torch.Tensor:
    return _filter_matrix(n, torch.tensor(kernel, dtype=torch.float64, device=device), mode)


def _filter_matrix(n: int, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    batched = kernel.dim() == 2
    kernel = kernel.reshape(-1, kernel.shape[-1]).to(torch.float64)
    size = kernel.shape[-1]
    anchor = size // 2
    src = border_index(n, anchor, size - 1 - anchor, mode, kernel.device)
    rows = torch.arange(n, device=kernel.device).unsqueeze(1).expand(n, size)
    cols = src.unfold(0, size, 1)  # (n, K): source index of tap k for output i
    keep = cols >= 0
    m = torch.zeros(kernel.shape[0], n, n, dtype=torch.float64, device=kernel.device)
    for b in range(kernel.shape[0]):
        weights = kernel[b].unsqueeze(0).expand(n, size)
        m[b].index_put_((rows[keep], cols[keep]), weights[keep], accumulate=True)
    m = m.to(torch.float32)
    return m if batched else m[0]


def apply_matrices(x: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
    """``rows @ x @ cols.T`` on the last two dims; a (B, n, m) matrix acts per sample."""
    def per_sample(m: torch.Tensor) -> torch.Tensor:
        m = m.to(x.device, x.dtype)
        return m.unsqueeze(1) if m.dim() == 3 else m
    if rows is not None:
        x = torch.matmul(per_sample(rows), x)
    if cols is not None:
        x = torch.matmul(x, per_sample(cols).transpose(-1, -2))
    return x


def separable_filter(x: torch.Tensor, kernel_rows: torch.Tensor, kernel_cols: torch.Tensor | None = None,
                     mode: str = "mirror") -> torch.Tensor:
    """Correlate columns with ``kernel_rows`` (vertical pass) and rows with ``kernel_cols`` (default: the same)."""
    kernel_cols = kernel_rows if kernel_cols is None else kernel_cols
    return apply_matrices(x, filter_matrix(x.shape[-2], kernel_rows.to(x.device), mode),
                          filter_matrix(x.shape[-1], kernel_cols.to(x.device), mode))


DIRECT_TAPS = 121  # up to 11x11 a depthwise convolution beat the FFT on 2 CPU cores (at 224 px)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """``cv2.filter2D``: 2-D correlation of every channel with a (kh, kw) or per-sample (B, kh, kw) kernel.

    Kernels of more than ``DIRECT_TAPS`` taps go through an FFT of the padded image
    (exact up to float rounding); smaller ones through a depthwise convolution, one group
    per plane: on CPU 5x faster than a single-channel convolution over B*C images.
    """
    b, c, h, w = x.shape
    kernel = kernel.to(x.device, x.dtype)
    kh, kw = kernel.shape[-2:]
    xp = pad(x, kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2, mode)
    if kh * kw > DIRECT_TAPS:
        size = (_fft_size(xp.shape[-2]), _fft_size(xp.shape[-1]))
        k = kernel if kernel.dim() == 2 else kernel.unsqueeze(1)
        spectrum = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(k, s=size).conj()
        return torch.fft.irfft2(spectrum, s=size)[..., :h, :w].contiguous()
    # (B*C, 1, kh, kw): the one kernel for every plane, or each sample's for its C planes
    weight = kernel.expand(b * c, 1, kh, kw) if kernel.dim() == 2 else kernel.repeat_interleave(c, dim=0).unsqueeze(1)
    return F.conv2d(xp.reshape(1, b * c, *xp.shape[-2:]), weight, groups=b * c).reshape(b, c, h, w)


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n with a >= 2: fast FFT lengths.

    Lengths with a single factor 2 are slow for real FFTs (on 2 CPU threads 250 = 2 * 5^3
    cost 25% more than 256, and odd 243 twice as much).
    """
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1 and n % 4 == 0:
            return n
        n += 1


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage's Gaussian: radius ``int(truncate * sigma + 0.5)``, normalised to sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2) if sigma > 0 else (x == 0).to(torch.float64)
    return k / k.sum()


def cv2_gaussian_kernel1d(ksize: int, sigma: float) -> torch.Tensor:
    """``cv2.getGaussianKernel(ksize, sigma)`` for sigma > 0."""
    x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    k = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, *, truncate: float = 4.0, mode: str = "nearest") -> torch.Tensor:
    """``skimage.filters.gaussian`` over the spatial dims (its defaults: truncate 4, mode 'nearest')."""
    return separable_filter(x, gaussian_kernel1d(sigma, truncate), mode=mode)


@functools.lru_cache(maxsize=64)
def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference's anti-aliased defocus disk (``disk`` in make_imagenet_c.py); cached, read-only.

    A 0/1 disk on a grid of half-width max(8, radius), normalised to sum 1, then
    ``cv2.GaussianBlur`` with ksize 3 (5 for radius > 8) and BORDER_REFLECT_101,
    without renormalising afterwards, as the reference does. Subnormal weights (a
    small ``alias_blur`` gives corners near 1e-45) are zeroed: they change no output
    beyond float rounding, and x86 multiplies by them about 15x slower.
    """
    half, ksize = (8, 3) if radius <= 8 else (int(radius), 5)
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).to(torch.float64)
    disk = disk / disk.sum()
    k = cv2_gaussian_kernel1d(ksize, alias_blur)
    m = filter_matrix(disk.shape[0], k, "mirror").to(torch.float64)
    kernel = (m @ disk @ m.T).to(torch.float32)
    return kernel.masked_fill_(kernel.abs() < torch.finfo(torch.float32).tiny, 0.0)


# --------------------------------------------------------------------------- colour

def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma of ``cv2.cvtColor(x, COLOR_RGB2GRAY)`` (0.299 R + 0.587 G + 0.114 B)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype)
    return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True)


# --------------------------------------------------------------------------- resampling

def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """The reference's ``clipped_zoom``: zoom into the centre by ``zoom`` >= 1, keeping the size.

    It crops the central ``ceil(n / zoom)`` pixels of each axis (:func:`zoom_crop_size`)
    and zooms them with :func:`zoom_centre`. Returns a view; on CPU channels-last inputs
    with many channels (a batch as the B*C channels of one image) are fastest: the kernel
    vectorises over channels.
    """
    h, w = x.shape[-2:]
    ch, cw = zoom_crop_size(h, w, zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    return zoom_centre(x[..., top:top + ch, left:left + cw], zoom, (h, w))


def zoom_crop_size(h: int, w: int, zoom: float) -> tuple[int, int]:
    """The central crop that ``clipped_zoom`` reads: ``ceil(n / zoom)`` pixels of each axis."""
    return math.ceil(h / zoom), math.ceil(w / zoom)


def zoom_centre(crop: torch.Tensor, zoom: float, size: tuple[int, int]) -> torch.Tensor:
    """``clipped_zoom`` of an image of ``size`` given only its central crop: callers that
    draw a random layer to zoom draw just the crop.

    The crop is zoomed with ``scipy.ndimage.zoom(order=1)`` to ``round(crop * zoom)``
    pixels (bilinear with the corner pixels mapped onto each other: ``align_corners=True``)
    and the centre trimmed back out.
    """
    (ch, cw), (h, w) = crop.shape[-2:], size
    oh, ow = round(ch * zoom), round(cw * zoom)
    y = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    top, left = (oh - h) // 2, (ow - w) // 2
    return y[..., top:top + h, left:left + w]


def pil_resize_matrix(n_in: int, n_out: int, filter: str = "box") -> torch.Tensor:
    """(n_out, n_in) float32 weights of Pillow's resampling along one axis (``precompute_coeffs`` in Resample.c).

    Supported filters: 'box' (``Image.BOX``) and 'bilinear' (``Image.BILINEAR``).
    Cached: treat the result as read-only.
    """
    return _pil_weights(n_in, n_out, filter).to(torch.float32)


@functools.lru_cache(maxsize=64)
def _pil_weights(n_in: int, n_out: int, filter: str) -> torch.Tensor:
    """``pil_resize_matrix`` in float64, as Pillow computes it before its fixed-point rounding."""
    filters = {"box": (0.5, lambda t: ((t > -0.5) & (t <= 0.5)).to(torch.float64)),
               "bilinear": (1.0, lambda t: (1.0 - t.abs()).clamp(min=0.0))}
    if filter not in filters:
        raise ValueError(f"unknown resize filter {filter!r}; valid: {', '.join(filters)}")
    support, fn = filters[filter]
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support *= filterscale
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        w = fn((torch.arange(lo, hi, dtype=torch.float64) - center + 0.5) / filterscale)
        m[i, lo:hi] = w / w.sum() if w.sum() != 0 else w
    return m


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round half up to the 8-bit grid (k / 255), as storing an intermediate image as uint8 does."""
    return x.clamp(0, 1).mul_(255.0).add_(0.5).floor_().div_(255.0)


def pil_resize(x: torch.Tensor, size: tuple[int, int], filter: str = "box") -> torch.Tensor:
    """``PIL.Image.resize`` of an 8-bit image: horizontal pass, round to uint8, vertical pass, round.

    A pass whose weights pick a single source pixel (BOX upscaling) is a gather and
    keeps the values as they are.
    """
    h, w = x.shape[-2:]
    if size[1] != w:
        x = _pil_pass(x, pil_resize_matrix(w, size[1], filter).to(x.device), -1)
    if size[0] != h:
        x = _pil_pass(x, pil_resize_matrix(h, size[0], filter).to(x.device), -2)
    return x


def _pil_pass(x: torch.Tensor, m: torch.Tensor, dim: int) -> torch.Tensor:
    """One resampling pass along ``dim`` (-1 or -2), rounded to the 8-bit grid.

    A pass that picks one source pixel per output (BOX upscaling) keeps the values as
    they are; along rows it is a gather, otherwise a matmul (faster than gathering the
    few taps of each output pixel on CPU).
    """
    select = bool((m.count_nonzero(1) == 1).all()) and bool((m.max(1).values == 1).all())
    if select and dim == -2:
        return x.index_select(-2, m.argmax(1).to(x.device))
    x = apply_matrices(x, m, None) if dim == -2 else apply_matrices(x, None, m)
    return x if select else quantize(x)


_PIL_PRECISION = 22  # Pillow's PRECISION_BITS for 8-bit images (32 - 8 - 2)


@functools.lru_cache(maxsize=64)
def _pil_box_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(T, n_out) source rows and (n_out,) int32 fixed-point weight of Pillow's 8-bit BOX resampling.

    A BOX output averages a run of equally weighted pixels: its weight is
    ``int(2^22 / n + 0.5)`` as in ``normalize_coeffs_8bpc``. Runs shorter than T
    pad with index ``n_in`` (a zero row). The weight is None where every output
    copies one pixel (upscaling), and minus the shift s where every run has 2^s pixels
    (int16). Cached: read-only.
    """
    m = _pil_weights(n_in, n_out, "box")
    counts = (m != 0).sum(1)
    index = torch.full((int(counts.max()), n_out), n_in, dtype=torch.int64)
    for i in range(n_out):
        nonzero = m[i].nonzero().squeeze(1)
        index[:len(nonzero), i] = nonzero
    if int(counts.max()) == 1:
        return index, None
    if bool((counts & (counts - 1) == 0).all()):  # runs of 2^s: (sum + 2^(s-1)) >> s exactly, in int16
        longest = int(counts.max())
        if int(counts.min()) * 2 == longest and bool(((counts == longest) | (counts * 2 == longest)).all()):
            # runs of n and 2n: listing each pixel of the short runs twice doubles their sum
            # and count, the same rounded average, one shift for all and no zero pixel
            short = counts < longest
            index[:, short] = index[:longest // 2, short].repeat(2, 1)
            counts = torch.full_like(counts, longest)
        return index, -counts.log2().round().to(torch.int16)
    weight = (m.max(1).values * (1 << _PIL_PRECISION) + 0.5).trunc().to(torch.int32)
    return index, weight


def pil_box_resize_uint8(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``PIL.Image.resize(size, Image.BOX)`` of a uint8 batch, bit for bit (Pillow's fixed point, horizontal first).

    Works in the batch's memory layout (NCHW or channels-last, kept in the result) on
    a (N, H, W * K) view: columns are picked with ``gather`` on an expanded index and
    rows with ``index_select``, the fast forms of each on CPU; runs of one length that
    tile the line (integer factors) are strided slices instead.
    """
    b, c, h, w = x.shape
    channels_last = c > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    k = c if channels_last else 1
    y = (x.permute(0, 2, 3, 1) if channels_last else x.contiguous()).reshape(-1, h, w * k)
    if size[1] != w:
        y = _pil_box_pass(y, *_pil_box_taps(w, size[1]), k)
    if size[0] != h:
        y = _pil_box_pass(y, *_pil_box_taps(h, size[0]), 0)
    if channels_last:
        return y.view(b, size[0], size[1], c).permute(0, 3, 1, 2)
    return y.view(b, c, *size)


def _pil_box_pass(y: torch.Tensor, index: torch.Tensor, weight: torch.Tensor | None, k: int) -> torch.Tensor:
    """One BOX pass on (N, rows, cols * k): over columns of k interleaved channels, or over rows (k = 0).

    Each output is the run's sum (int16) times its weight, plus a half, shifted down.
    """
    run = index.shape[0]
    if weight is not None and weight.dtype == torch.int16 and torch.equal(
            index, torch.arange(index.numel()).view(-1, run).T):  # runs of 2^s tiling the line: strided views
        v = y.view(*y.shape[:-1], -1, run, k) if k else y.view(y.shape[0], -1, run, y.shape[-1])
        total = v.select(-2 if k else 2, 0).to(torch.int16)
        for t in range(1, run):
            total += v.select(-2 if k else 2, t)
        shift = run.bit_length() - 1
        total = total.add_((1 << shift) >> 1).bitwise_right_shift_(shift).to(torch.uint8)
        return total.flatten(-2) if k else total
    index = index.to(y.device)
    if k:  # column j, channel i sits at j * k + i
        index = (index[..., None] * k + torch.arange(k, device=y.device)).flatten(1)
    if weight is not None and int(index.max()) >= (y.shape[-1] // k if k else y.shape[1]):
        y = F.pad(y, (0, k) if k else (0, 0, 0, 1))  # index n_in: a zero pixel for runs shorter than T

    def pick(taps: torch.Tensor) -> torch.Tensor:
        return y.gather(-1, taps.expand(*y.shape[:-1], len(taps))) if k else y.index_select(1, taps)
    if weight is None:
        return pick(index[0])
    total = pick(index[0]).to(torch.int16)
    for taps in index[1:]:
        total += pick(taps)
    if weight.dtype == torch.int16 and bool((weight == weight[0]).all()):  # one shift for all
        shift = -int(weight[0])
        return total.add_((1 << shift) >> 1).bitwise_right_shift_(shift).to(torch.uint8)
    weight = weight.to(y.device)
    weight = weight.repeat_interleave(k) if k else weight.view(-1, 1)
    if weight.dtype == torch.int16:  # -shift
        shift = weight.neg()
        return total.add_((1 << shift) >> 1).bitwise_right_shift_(shift).to(torch.uint8)
    acc = total.to(torch.int32).mul_(weight).add_(1 << (_PIL_PRECISION - 1))
    return acc.bitwise_right_shift_(_PIL_PRECISION).to(torch.uint8)


def remap(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """Bilinear sampling of ``x`` at pixel coordinates (B, H', W') ``rows``/``cols``.

    ``mode`` 'reflect' is ``scipy.ndimage.map_coordinates(order=1, mode='reflect')``,
    'mirror' is ``cv2.remap``/``warpAffine`` with BORDER_REFLECT_101 (OpenCV's 1/32 px
    fixed-point weights are not reproduced), 'nearest' and 'constant' as named.
    """
    padding = {"reflect": ("reflection", False), "mirror": ("reflection", True), "nearest": ("border", True),
               "constant": ("zeros", True)}
    if mode not in padding:
        raise ValueError(f"remap supports border modes {', '.join(padding)}, got {mode!r}")
    padding_mode, align = padding[mode]
    h, w = x.shape[-2:]
    # grid_sample's normalised coordinates, scaled straight into x's dtype (no float64
    # temporaries or stack: 2x faster remaps, within float32 rounding of the float64 grid)
    grid = torch.empty(*rows.shape, 2, dtype=x.dtype, device=x.device)
    for coords, n, out in ((cols, w, grid[..., 0]), (rows, h, grid[..., 1])):
        scale, shift = (2.0 / max(n - 1, 1), -1.0) if align else (2.0 / n, 1.0 / n - 1.0)
        torch.mul(coords, scale, out=out).add_(shift)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align)


def pixel_grid(b: int, h: int, w: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) float32 row and column coordinates of every pixel (exact: integers)."""
    rows = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w).expand(b, h, w)
    return rows, cols


def affine_from_points(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``cv2.getAffineTransform`` for a batch: (B, 3, 2) point sets (x, y) to (B, 2, 3) matrices."""
    ones = torch.ones(*src.shape[:-1], 1, dtype=torch.float64, device=src.device)
    a = torch.cat((src.to(torch.float64), ones), -1)  # (B, 3, 3)
    return torch.linalg.solve(a, dst.to(torch.float64)).transpose(-1, -2)


def warp_affine(x: torch.Tensor, matrix: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """``cv2.warpAffine(x, M, (W, H), borderMode=...)``: dst(p) = src(M^-1 p), bilinear, per-sample (B, 2, 3) M."""
    b, _, h, w = x.shape
    full = torch.zeros(b, 3, 3, dtype=torch.float64, device=x.device)
    full[:, :2] = matrix.to(x.device, torch.float64)
    full[:, 2, 2] = 1.0
    inv = torch.linalg.inv(full)
    rows, cols = pixel_grid(b, h, w, x.device)
    src_x = inv[:, 0, 0, None, None] * cols + inv[:, 0, 1, None, None] * rows + inv[:, 0, 2, None, None]
    src_y = inv[:, 1, 0, None, None] * cols + inv[:, 1, 1, None, None] * rows + inv[:, 1, 2, None, None]
    return remap(x, src_y, src_x, mode)


# --------------------------------------------------------------------------- codecs

def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float [0, 1] to uint8 by rounding (an image that came from uint8 round-trips exactly)."""
    return truncate_uint8(x.mul(255.0).clamp_(0.0, 255.0).add_(0.5))  # truncating x + 0.5 rounds half up


_CAST_BLOCK = 1 << 19  # elements per int32 temporary of truncate_uint8


def truncate_uint8(x: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 255] to uint8 by truncation, like ``np.uint8``.

    The values of ``x.to(torch.uint8)``. On CPU, torch's float-to-uint8 cast does not
    vectorise; through int32, 2^19 elements at a time (whole batches would fault in
    a fresh int32 copy), it ran 2-3x faster at 224 px (batches of 1M-10M elements).
    """
    if x.device.type != "cpu" or is_compiling():
        return x.to(torch.uint8)
    flat = x.reshape(-1)
    out = torch.empty(flat.shape, dtype=torch.uint8)
    for start in range(0, flat.numel(), _CAST_BLOCK):
        out[start:start + _CAST_BLOCK] = flat[start:start + _CAST_BLOCK].to(torch.int32)
    return out.view(x.shape)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode every image as a baseline JPEG at ``quality`` and decode it, with libjpeg's defaults as PIL uses them.

    Always runs on the CPU (torchvision.io, libjpeg-turbo) so that results match PIL
    and agree across devices; nvJPEG would be faster on CUDA but rounds differently.
    """
    return jpeg_uint8(to_uint8(x).cpu(), quality).to(x.device, x.dtype).div_(255.0)


def jpeg_uint8(x: torch.Tensor, quality: int) -> torch.Tensor:
    """:func:`jpeg` of a uint8 batch, returned as uint8 on the CPU in ``x``'s memory layout.

    libjpeg reads and writes (H, W, C) memory. The batch is split over torch's CPU
    threads; each converts its part to that layout with numpy's per-channel copies,
    runs the codec and copies the decoded images into the result (all without the
    GIL). No parallel torch op runs there: on the pool's threads each would start an
    OpenMP team of its own, which slowed every later parallel op in the process 2-3x,
    and a torch conversion on the calling thread (8 ms for 64 images at 224 px, with
    its OpenMP threads then spinning against the codec's) made the whole 1.7x slower.
    """
    from torchvision.io import decode_jpeg, encode_jpeg
    x = x.cpu()
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    source, target = x.numpy(), out.numpy()

    def round_trip(start: int, stop: int) -> None:
        hwc = source[start:stop].transpose(0, 2, 3, 1)  # already (H, W, C) memory for channels-last batches
        if not hwc.flags.c_contiguous:
            hwc = np.empty((stop - start, h, w, c), dtype=np.uint8)
            for channel in range(c):
                hwc[..., channel] = source[start:stop, channel]
        images = list(torch.from_numpy(hwc).permute(0, 3, 1, 2))  # (C, H, W) views of (H, W, C) memory
        for i, image in enumerate(decode_jpeg(encode_jpeg(images, quality=int(quality))), start):
            np.copyto(target[i], image.numpy())
    size = max(1, -(-b // max(1, min(torch.get_num_threads(), b))))  # images per thread
    with warnings.catch_warnings():  # torchvision >= 0.29 points to TorchCodec; these codecs still work
        warnings.simplefilter("ignore", DeprecationWarning)  # (the pool's threads wait inside this block)
        parallel_map(lambda start: round_trip(start, min(start + size, b)), range(0, b, size))
    return out


def parallel_map(fn: Callable[[T], U], items: Sequence[T]) -> list[U]:
    """``[fn(item) for item in items]`` on torch's CPU threads, for codecs that release the GIL.

    PyAV's and torchvision's codecs run without the GIL, so their calls overlap
    (one-frame H.265 encodes: 1.4-1.8x faster on two cores, with the same bytes).
    """
    workers = max(1, min(torch.get_num_threads(), len(items)))
    return list(_pool(workers).map(fn, items)) if workers > 1 else [fn(item) for item in items]


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    """A shared thread pool for :func:`parallel_map`."""
    return ThreadPoolExecutor(workers, thread_name_prefix="sparse-zoo-codec")


# --------------------------------------------------------------------------- random draws

def element_stream(rng: Stream, rows: torch.Tensor, index: torch.Tensor, tag: str) -> Stream:
    """A Stream with one row per selected element ``(rows[i], index[i])`` of ``rng``'s samples.

    Lets rejection samplers redraw only the elements still pending: the draws of an
    element depend on its sample's key, its flat index and ``tag``, never on which
    other elements are pending, so results stay independent of batch composition.
    """
    ids = (rng.keys[rows.to(rng.device), 0] << 32) | index.to(rng.device, torch.int64)
    return Stream(sample_keys(0, ids, tag, rng.calls), rng.device)


def poisson(rng: Stream, lam: torch.Tensor, *, threshold: float = 10.0, block: int = 1 << 16) -> torch.Tensor:
    """Exact Poisson draws with per-element rates ``lam`` (B, ...), split like numpy's ``random.poisson``.

    Rates below ``threshold`` use inversion (sequential search of the CDF); larger rates
    use Hörmann's transformed rejection with squeeze (PTRS, 1993): one vectorised round
    on the stream's draws, then rejected elements redraw from :func:`element_stream`
    until all are accepted. Elements go through in cache-sized blocks. The CDF and the
    proposals are float32 (a float64 search agreed on all of 1.2M test draws), the
    rejection test is float64.
    """
    b = lam.shape[0]
    flat = lam.reshape(b, -1).to(torch.float32)
    n = flat.shape[1]
    u = rng.uniform(n).reshape(-1)
    flat = flat.reshape(-1)
    big = flat >= threshold
    if not big.any():
        return _poisson_inversion(flat, u, block).reshape(lam.shape)
    v = rng.uniform(n).reshape(-1)
    out = torch.empty_like(flat)
    accepted = torch.empty_like(big)
    for start in range(0, flat.numel(), block):
        part = slice(start, start + block)
        lam_b, u_b, big_b = flat[part], u[part], big[part]
        k, accepted[part] = _ptrs_round(lam_b.clamp(min=threshold), u_b, v[part], big_b)
        small = (~big_b).nonzero().squeeze(1)
        k[small] = _poisson_inversion(lam_b[small], u_b[small], block)
        out[part] = k
    pending = (big & ~accepted).nonzero().squeeze(1)
    attempt = 0
    while pending.numel():
        attempt += 1
        draws = element_stream(rng, pending // n, pending % n, f"poisson/{attempt}").uniform(2)
        k, ok = _ptrs_round(flat[pending], draws[:, 0], draws[:, 1], None)
        out[pending[ok]] = k[ok]
        pending = pending[~ok]
    return out.reshape(lam.shape)


def cdf_level_weights(cdf: torch.Tensor) -> torch.Tensor:
    """(256, K) int64 weights in units of 2^-23 from float64 CDFs (256, K) of one distribution per 8-bit level.

    Differences of floor(2^23 * CDF), the last column taking what is left: each row
    sums to exactly 2^23, so a 23-bit draw samples it without rounding (see
    :func:`alias_table`).
    """
    cdf = cdf.clone()
    cdf[:, -1] = 1.0
    units = (cdf * (1 << 23)).floor().long().clamp_(0, 1 << 23)
    return units.diff(dim=1, prepend=torch.zeros(len(cdf), 1, dtype=torch.long))


@functools.lru_cache(maxsize=32)
def poisson_level_weights(photons: float) -> torch.Tensor:
    """(256, K) int64 weights of Poisson(float32(level / 255) * photons) in units of 2^-23.

    :func:`cdf_level_weights` of the float64 CDF; the last column holds the tail
    beyond K (< 1e-20 of the mass). K is a power of two above rate + 12 sd + 30.
    """
    lam = (torch.arange(256, dtype=torch.float32) / 255.0 * photons).double()[:, None]
    width = 1 << (int(float(lam.max()) + 12 * float(lam.max()) ** 0.5 + 30) - 1).bit_length()
    k = torch.arange(width, dtype=torch.float64)
    log_pmf = torch.where(lam > 0, k * lam.clamp(min=1e-300).log() - lam - torch.lgamma(k + 1),
                          torch.where(k == 0, 0.0, -math.inf))
    return cdf_level_weights(log_pmf.exp().cumsum(1))


def alias_table(weights: torch.Tensor) -> torch.Tensor:
    """Walker's alias table of (256, K) weights that sum to 2^23 per row, packed as (256 * K,) int32.

    Each of the K columns of a row holds 2^23 / K units: ``thr`` of its own value and
    the rest of its ``alias``; entry ``level * K + j`` is ``thr | alias << shift``
    with shift = 24 - log2(K). Built in integers (Vose's method), so the table's
    distribution is exactly the weights.
    """
    width = weights.shape[1]
    bits = width.bit_length() - 1
    if width != 1 << bits or not (weights.sum(1) == 1 << 23).all():
        raise ValueError("alias_table needs a power-of-two number of columns and rows that sum to 2^23")
    cap, shift = (1 << 23) >> bits, 24 - bits
    table = []
    for row in weights.tolist():
        thr, alias = [cap] * width, list(range(width))
        small = [j for j, w in enumerate(row) if w < cap]
        large = [j for j, w in enumerate(row) if w >= cap]
        while small and large:
            s, big = small.pop(), large.pop()
            thr[s], alias[s] = row[s], big
            row[big] -= cap - row[s]
            (small if row[big] < cap else large).append(big)
        table.extend(t | a << shift for t, a in zip(thr, alias))
    return torch.tensor(table, dtype=torch.int32)


def compare(op: Callable[..., torch.Tensor], a: torch.Tensor, b: torch.Tensor | float,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """``op(a, b)`` for a comparison such as ``torch.lt``, as 0 / 1 of ``dtype`` (default: ``a``'s).

    Written straight into a tensor of that dtype: on CPU a comparison into bool does
    not vectorise and ran 3-4x slower (2^19 int32 or float32 elements: 210-250 us
    against 50-90 us), before its conversion.
    """
    shape = torch.broadcast_shapes(a.shape, b.shape) if isinstance(b, torch.Tensor) else a.shape
    return op(a, b, out=torch.empty(shape, dtype=dtype or a.dtype, device=a.device))


def zero_below(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """``torch.where(x < threshold, 0.0, x)`` for finite x, as one ``F.threshold``: 20x faster than where on CPU.

    F.threshold keeps x > t, so t is the float just below ``threshold`` in x's dtype.
    """
    below = torch.nextafter(torch.tensor(threshold, dtype=x.dtype), torch.tensor(-math.inf, dtype=x.dtype))
    return F.threshold(x, float(below), 0.0)


def alias_levels(rng: Stream, levels: torch.Tensor, table: torch.Tensor,
                 dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """One draw per element of an integer batch of 8-bit levels (B, ...) from its row of ``table``, as ``dtype``.

    ``table`` comes from :func:`alias_table`. One 23-bit draw per element: its top
    bits pick a column, the rest compare with the column's threshold. One gather and
    no search loop, so it also fuses under torch.compile.
    """
    bits = (table.numel() // 256).bit_length() - 1
    shift = 24 - bits
    k = rng.uniform_ints(*levels.shape[1:]).reshape(-1)
    column = k >> (23 - bits)
    entry = table.index_select(0, (levels.reshape(-1).to(torch.int32) << bits).add_(column))
    own = compare(torch.lt, k.bitwise_and_((1 << (23 - bits)) - 1), entry & ((1 << shift) - 1))
    alias = entry.bitwise_right_shift_(shift)
    # arithmetic, not torch.where: inductor splits a where on a bool mask into two loops (3x slower)
    # and the conversion before the reshape: after it, inductor also splits the loop
    return column.sub_(alias).mul_(own).add_(alias).to(dtype).reshape(levels.shape)


@tensor_cache(maxsize=32)
def _poisson_alias_table(photons: float, device: torch.device) -> torch.Tensor:
    return alias_table(poisson_level_weights(photons)).to(device)


def poisson_levels(rng: Stream, levels: torch.Tensor, photons: float) -> torch.Tensor:
    """Exact Poisson(levels / 255 * photons) counts for an integer batch of 8-bit levels (B, ...), as int32.

    :func:`alias_levels` through the table of the float64 pmf quantised to 2^-23
    (:func:`poisson_level_weights`). An 8-bit image has 256 rates, so the table is
    built once per ``photons``; :func:`poisson` serves arbitrary rates.
    """
    return alias_levels(rng, levels, _poisson_alias_table(float(photons), levels.device))


def _ptrs_round(lam: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                need: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One PTRS proposal per element (rates >= 10): the candidate and whether it is accepted.

    The float64 acceptance test runs only where ``need`` (default: everywhere).
    """
    b = lam.sqrt().mul_(2.53).add_(0.931)
    a = b * 0.02483 - 0.059
    uu = u - 0.5
    us = 0.5 - uu.abs()
    k = torch.floor((2 * a / us + b).mul_(uu).add_(lam).add_(0.43))
    accept = (us >= 0.07) & (v <= 0.9277 - 3.6224 / (b - 2))
    test = ~accept & (k >= 0) & ~((us < 0.013) & (v > us))
    test = (test if need is None else test & need).nonzero().squeeze(1)
    if test.numel():
        lam_t, k_t, us_t = lam[test].double(), k[test].double(), us[test].double()
        b_t = 0.931 + 2.53 * lam_t.sqrt()
        a_t = -0.059 + 0.02483 * b_t
        log_hat = torch.log(v[test].double() * (1.1239 + 1.1328 / (b_t - 3.4)) / (a_t / (us_t * us_t) + b_t))
        accept[test] = log_hat <= -lam_t + k_t * lam_t.log() - torch.lgamma(k_t + 1)
    return k, accept


def _poisson_inversion(lam: torch.Tensor, u: torch.Tensor, block: int, max_steps: int = 200) -> torch.Tensor:
    """Smallest k with CDF(k) >= u, stepping cache-sized blocks in place.

    Draws at or below CDF(0) = exp(-lam) are 0 and skip the search: at the small
    rates of off-grid shot noise that is most of them. A block stops once every CDF
    has passed its u (dropping finished elements on the way costs more than it
    saves); ``max_steps`` bounds a search that float rounding could stall (only
    possible for u within ~1e-7 of 1).
    """
    out = torch.zeros_like(lam)
    search = (u > torch.exp(-lam)).nonzero().squeeze(1)
    if search.numel() < lam.numel():
        if search.numel():
            out[search] = _poisson_inversion(lam[search], u[search], block, max_steps)
        return out
    for start in range(0, lam.numel(), block):
        lam_b, u_b = lam[start:start + block], u[start:start + block]
        p = torch.exp(-lam_b)
        cdf = p.clone()
        k = torch.zeros_like(lam_b)
        below = torch.empty_like(lam_b)  # 0 / 1 floats: a bool mask is slower to fill, test and add
        for step in range(1, max_steps + 1):
            torch.gt(u_b, cdf, out=below)
            if step % 4 == 1 and not bool(below.any()):
                break
            k += below
            p.mul_(lam_b).mul_(1.0 / step)
            cdf += p
        out[start:start + block] = k
    return out
