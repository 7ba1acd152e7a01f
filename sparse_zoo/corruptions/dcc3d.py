"""3D Common Corruptions (Kar et al., CVPR 2022), after ``create_3dcc/`` of EPFL-VILAB/3DCommonCorruptions.

Each corruption is a pure function beside its severity table, taken from the
reference scripts (``create_dof.py``, ``create_fog.py``, ``create_flash.py``,
``create_non3d.py``, ``motion_video/create_motion.py`` and ``video_distortions.py``).
Depth-based corruptions take ``depth`` (B, 1, H, W) in the reference's normalised
units (see :mod:`.depth`) and otherwise use its documented ground-plane prior, so
their numbers are not comparable with the official ImageNet-3DCC (per-image depth).

Where the reference needs data we cannot have, the substitute is stated at the function:
flash shades the depth map instead of Taskonomy's rendered "reshading" images;
camera motion warps the image by backward mapping instead of 3D Ken Burns' point-cloud
rendering with learned inpainting; the codec corruptions encode each image as a
one-frame stream instead of taking frame 120 of a 119-frame camera-motion video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import codec
from .depth import points, resolve
from .noise import shot_noise
from .ops import apply_matrices, compare, cv2_gaussian_kernel1d, filter_matrix, parallel_map
from .registry import register
from .rng import Stream

REFERENCE_SIZE = 224  # ImageNet-3DCC's image size: pixel-sized parameters scale with max(H, W) / 224

# --------------------------------------------------------------------------- depth of field


@dataclass(frozen=True)
class Focus:
    """Thin-lens refocusing: blur radius ``aperture * |d - d_focus| / d`` px at 224 px."""

    aperture: float
    focus_quantile: int  # which of the depth octiles (0 = nearest, 8 = farthest) is in focus


N_QUANTILES = 8
CUTOFF = 3  # the Gaussian of std r is truncated to int(3 r) taps (made odd), as in the reference
NEAR_FOCUS = tuple(Focus(s + 2.0, 0) for s in range(1, 6))   # aperture = severity + 2
FAR_FOCUS = tuple(Focus(s + 0.5, 7) for s in range(1, 6))    # far focus: aperture - 1.5


def _taps(r: float) -> int:
    """Taps of the reference's Gaussian of std ``r``: int(3 r), made odd."""
    size = int(r * CUTOFF) if r >= 0.1 else 1
    return size + 1 - size % 2


def _gaussian_matrix(n: int, r: float, device: torch.device) -> torch.Tensor:
    """(n, n) replicate-border filter matrix of the reference's Gaussian of std ``r``, truncated to int(3 r) taps."""
    size = _taps(r)
    kernel = cv2_gaussian_kernel1d(size, r) if size > 1 else torch.ones(1, dtype=torch.float64)
    return filter_matrix(n, kernel.to(device), mode="nearest")  # cached per kernel


def _gaussian_matrices(n: int, radii: torch.Tensor) -> torch.Tensor:
    """Filter matrices for per-sample Gaussians of std ``radii``: (n, n) when all are equal, else (B, n, n).

    One shared matrix (e.g. the depth fallback, the same for every image) multiplies
    the whole batch at once, 1.8x faster than a batch of equal matrices.
    """
    values = radii.tolist()
    if len(set(values)) == 1:
        return _gaussian_matrix(n, values[0], radii.device)
    return torch.stack([_gaussian_matrix(n, r, radii.device) for r in values])


def _octiles(d: torch.Tensor) -> torch.Tensor:
    """(B, 9) depth octiles with linear interpolation (``torch.quantile``'s, without its 16M-element limit)."""
    ordered = d.sort(dim=1).values
    pos = torch.linspace(0, d.shape[1] - 1, N_QUANTILES + 1, device=d.device, dtype=torch.float64)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=d.shape[1] - 1)
    frac = (pos - lo).to(d.dtype)
    return ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo])


def refocus(x: torch.Tensor, depth: torch.Tensor, p: Focus) -> torch.Tensor:
    """Depth of field by compositing a stack of blurs at the depth octiles (``defocus_blur_3D``).

    Each pixel blends the blurs of the two octile values around its depth with weights
    ``1 - dist**2``. The reference widens the outer octiles by 1e-4 absolute; here
    relatively (x(1 -/+ 1e-4)) so that any positive depth scale works.
    """
    b, _, h, w = x.shape
    d = depth.reshape(b, -1)
    qv = _octiles(d)
    qv[:, 0] *= 1 - 1e-4
    qv[:, -1] *= 1 + 1e-4
    focus = qv[:, p.focus_quantile:p.focus_quantile + 1]
    radii = p.aperture * (qv - focus).abs() / qv * (max(h, w) / REFERENCE_SIZE)
    right = torch.searchsorted(qv, d).clamp(1, N_QUANTILES)
    left = right - 1
    ql, qr = qv.gather(1, left), qv.gather(1, right)
    wl, wr = 1 - ((d - ql) / (qr - ql)) ** 2, 1 - ((qr - d) / (qr - ql)) ** 2
    norm = wl + wr
    wl, wr = (wl / norm).view(b, 1, h, w), (wr / norm).view(b, 1, h, w)
    left = left.view(b, 1, h, w)
    # per row / column, how many pixels have each left octile (bincount, not bool masks: those are slow on CPU)
    rows, cols = (_octile_counts(left, dim) for dim in (2, 3))
    left = left.to(x.dtype)  # compared as floats: 0 / 1 masks of x's dtype
    out = torch.zeros_like(x)
    for j in range(N_QUANTILES + 1):  # octile j weighs the pixels whose left octile is j (wl) or j - 1 (wr)
        used_rows, used_cols = rows[:, j] + rows[:, j + 1] > 0, cols[:, j] + cols[:, j + 1] > 0
        if not bool(used_rows.any()):
            continue
        # blur only the rows and columns this octile's weights touch, plus the kernel's reach:
        # the same values there (2.5x faster with the fallback depth, which changes with the row)
        r = radii[:, j]
        reach = max(_taps(v) for v in r.tolist()) // 2
        ys, xs = _band(used_rows, reach), _band(used_cols, reach)
        octile = left[..., ys, xs]
        weight = wl[..., ys, xs] * compare(torch.eq, octile, float(j)) \
            + wr[..., ys, xs] * compare(torch.eq, octile, float(j - 1))
        crop = x[..., ys, xs]
        if reach:
            crop = apply_matrices(crop, _gaussian_matrices(crop.shape[-2], r), _gaussian_matrices(crop.shape[-1], r))
        out[..., ys, xs] += weight * crop
    return out


def _octile_counts(left: torch.Tensor, dim: int) -> torch.Tensor:
    """(n, N_QUANTILES + 2) counts of left octiles 0..N-1 at each index along ``dim`` of (B, 1, H, W), in columns 1..N."""
    n = left.shape[dim]
    index = torch.arange(n, device=left.device).view([-1 if k == dim else 1 for k in range(4)])
    width = N_QUANTILES + 2
    flat = (index * width + left + 1).reshape(-1)
    return torch.bincount(flat, minlength=n * width).view(n, width)


def _band(used: torch.Tensor, reach: int) -> slice:
    """The index range of the ``True`` entries of a 1-D mask, widened by ``reach`` on both sides (within bounds)."""
    index = used.nonzero()
    return slice(max(0, int(index.min()) - reach), min(used.numel(), int(index.max()) + 1 + reach))


@register("near_focus", NEAR_FOCUS, uses_depth=True, notes="focus on the nearest depth octile")
def near_focus(x: torch.Tensor, p: Focus, rng: Stream, *, depth: torch.Tensor | None = None) -> torch.Tensor:
    return refocus(x, resolve(x, depth), p)


@register("far_focus", FAR_FOCUS, uses_depth=True, notes="focus on the 7/8 depth quantile")
def far_focus(x: torch.Tensor, p: Focus, rng: Stream, *, depth: torch.Tensor | None = None) -> torch.Tensor:
    return refocus(x, resolve(x, depth), p)


# --------------------------------------------------------------------------- fog and flash

FOG_3D = (4.0, 8.0, 12.0, 16.0, 20.0)  # attenuation per unit of normalised depth


@register("fog_3d", FOG_3D, uses_depth=True, notes="transmission exp(-beta * depth); needs normalised depth")
def fog_3d(x: torch.Tensor, beta: float, rng: Stream, *, depth: torch.Tensor | None = None) -> torch.Tensor:
    """Atmospheric scattering ``t x + A (1 - t)``, ``t = exp(-beta depth)``.

    The airlight ``A`` is the image's mean (the reference takes the mean of its whole
    batch, which would make a sample depend on its batch).
    """
    t = torch.exp(-beta * resolve(x, depth))
    airlight = x.mean(dim=(1, 2, 3), keepdim=True)
    return t * x + airlight * (1 - t)


FLASH = (2.4, 1.4, 0.9, 0.6, 0.4)  # the reference divides the shading by these


def flash_shading(depth: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) shading in [0, 1] of a point light at the camera: Lambert's cosine times (d_min / d)^2.

    Stands in for Taskonomy's rendered "reshading" images, which the reference reads.
    """
    p = points(depth)
    dy, dx = torch.gradient(p, dim=(2, 3))
    normal = torch.linalg.cross(dy, dx, dim=1)
    # |cos| of the angle between normal and view ray; norms as channel sums (torch.norm over
    # dim 1 was 80% of the time), each clamped like F.normalize's eps
    lengths = (normal.square().sum(1, keepdim=True).sqrt_().clamp_(min=1e-12)
               * p.square().sum(1, keepdim=True).sqrt_().clamp_(min=1e-12))
    cosine = (normal * p).sum(1, keepdim=True).abs_().div_(lengths)
    nearest = depth.amin(dim=(1, 2, 3), keepdim=True)
    return cosine * (nearest / depth) ** 2


@register("flash", FLASH, uses_depth=True, notes="shading derived from depth, not Taskonomy reshading")
def flash(x: torch.Tensor, scaler: float, rng: Stream, *, depth: torch.Tensor | None = None) -> torch.Tensor:
    return x + x * flash_shading(resolve(x, depth)) / scaler


# --------------------------------------------------------------------------- camera motion

STEPS = 60             # frames of the reference's camera path (linspace(0, 1, 60))
KEN_BURNS_SIZE = 512   # the reference's shifts are pixels of a 512 px frame with focal length 512


@dataclass(frozen=True)
class CameraMotion:
    """Average of the first ``frames`` of ``STEPS`` frames rendered along a camera path."""

    frames: int
    zoom: bool  # False: the camera slides in x/y; True: it moves forward (z) with a small x/y drift


XY_MOTION_BLUR = tuple(CameraMotion(n, False) for n in (20, 30, 40, 50, 60))
Z_MOTION_BLUR = tuple(CameraMotion(n, True) for n in (20, 25, 30, 35, 38))


def camera_path(rng: Stream, zoom: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample end of the path: image shift (B, 2) in 512 px units and crop scale (B,), as drawn in create_motion.

    x/y: |u| in [50, 75) with a random sign, v in [-75, 75), no zoom. z: u, v in
    [-30, 30) and the crop shrinks to 0.5-0.6 (the reference also draws a vertical
    scale, which its renderer never reads).
    """
    if zoom:
        shift = rng.integers(-30, 30, 2).float()
        scale = 0.5 + 0.1 * rng.uniform(1)[:, 0]
        return shift, scale
    negative = rng.integers(0, 2, 1)[:, 0].bool()
    u = torch.where(negative, rng.integers(-75, -50, 1)[:, 0], rng.integers(50, 75, 1)[:, 0]).float()
    v = rng.integers(-75, 75, 1)[:, 0].float()
    return torch.stack((u, v), 1), torch.ones_like(u)


def camera_motion_blur(x: torch.Tensor, depth: torch.Tensor, frames: int, shift: torch.Tensor,
                       scale: torch.Tensor) -> torch.Tensor:
    """Average of ``frames`` views along 3D Ken Burns' camera path, by depth-dependent backward warps.

    With depth in units of the focal length (nearest point at 1, as 3D Ken Burns
    normalises it) and ``D0`` the nearest depth of the central half, frame ``t`` moves
    the camera by ``dz = -D0 t (1 - scale)`` and sideways so that points at depth
    ``D0 + dz`` shift by ``t * shift`` px; a point (u, Z) lands at
    ``(u Z - t shift (D0 + dz)) / (Z + dz)``. Each output pixel is inverted with the
    depth found at its source (one fixed-point step); border pixels repeat, where the
    reference inpaints disocclusions with a network.
    """
    b, _, h, w = x.shape
    f = float(max(h, w))
    z = depth / depth.amin(dim=(1, 2, 3), keepdim=True)
    d0 = z[:, :, h // 4:h - h // 4, w // 4:w - w // 4].amin(dim=(1, 2, 3))
    # grid_sample coordinates (align_corners=False): g = 2 f u / w for u in focal-length units
    to_grid = torch.tensor([2 * f / w, 2 * f / h], device=x.device)
    s = (shift.to(x.device) / KEN_BURNS_SIZE * to_grid).view(b, 2, 1, 1)
    scale = scale.to(x.device).view(b, 1, 1)
    d0 = d0.view(b, 1, 1)
    gy = ((torch.arange(h, device=x.device) * 2 + 1) / h - 1).view(1, h, 1)
    gx = ((torch.arange(w, device=x.device) * 2 + 1) / w - 1).view(1, 1, w)
    out = torch.zeros_like(x)
    inv_here = z[:, 0].reciprocal()
    for i in range(frames):
        t = i / (STEPS - 1)
        dz = -d0 * t * (1 - scale)
        drift = t * (d0 + dz)
        move_x, move_y = gx * dz + drift * s[:, 0], gy * dz + drift * s[:, 1]
        src = torch.stack((gx + move_x * inv_here, gy + move_y * inv_here), -1)  # with the depth here ...
        inv = F.grid_sample(z, src, padding_mode="border", align_corners=False)[:, 0].reciprocal_()
        src = torch.stack((gx + move_x * inv, gy + move_y * inv), -1)  # ... then with the depth found there
        out += F.grid_sample(x, src, padding_mode="border", align_corners=False)
    return out / frames


def _motion(x: torch.Tensor, p: CameraMotion, rng: Stream, depth: torch.Tensor | None) -> torch.Tensor:
    shift, scale = camera_path(rng, p.zoom)
    return camera_motion_blur(x, resolve(x, depth), p.frames, shift, scale)


@register("xy_motion_blur", XY_MOTION_BLUR, uses_depth=True, notes="camera slides sideways during exposure")
def xy_motion_blur(x: torch.Tensor, p: CameraMotion, rng: Stream, *, depth: torch.Tensor | None = None
                   ) -> torch.Tensor:
    return _motion(x, p, rng, depth)


@register("z_motion_blur", Z_MOTION_BLUR, uses_depth=True, notes="camera moves forward during exposure")
def z_motion_blur(x: torch.Tensor, p: CameraMotion, rng: Stream, *, depth: torch.Tensor | None = None
                  ) -> torch.Tensor:
    return _motion(x, p, rng, depth)


# --------------------------------------------------------------------------- sensor noise and quantisation

@dataclass(frozen=True)
class SensorNoise:
    """Poisson photon noise with ``photons`` per unit intensity, then Gaussian read noise of std ``read_std``."""

    photons: float
    read_std: float


def sensor_noise(x: torch.Tensor, p: SensorNoise, rng: Stream) -> torch.Tensor:
    """Photon counts drawn as ImageNet-C's ``shot_noise`` draws them: its 8-bit-level tables, 7-10x faster."""
    b = x.shape[0]
    shot = shot_noise(x, p.photons, rng).clamp_(0, 1)
    return shot + p.read_std * rng.normal(*x.shape[1:]).view(b, *x.shape[1:])


ISO_NOISE = tuple(SensorNoise(25.0, 0.7 * s) for s in (0.08, 0.12, 0.18, 0.26, 0.38))


@register("iso_noise", ISO_NOISE, notes="photon noise fixed, electronic noise grows with ISO")
def iso_noise(x: torch.Tensor, p: SensorNoise, rng: Stream) -> torch.Tensor:
    return sensor_noise(x, p, rng)


@dataclass(frozen=True)
class LowLight:
    """Dim the image to ``brightness`` with gamma 2 (MATLAB's imadjust), then add sensor noise."""

    brightness: float
    noise: SensorNoise = SensorNoise(10 * 12.0, 0.1 * 0.18)  # poisson_gaussian_noise at severity 3


LOW_LIGHT = tuple(LowLight(c) for c in (0.60, 0.50, 0.40, 0.30, 0.20))


@register("low_light", LOW_LIGHT)
def low_light(x: torch.Tensor, p: LowLight, rng: Stream) -> torch.Tensor:
    """``imadjust(x, x.min(), x.max(), 0, c, gamma=2)`` per image (a flat image goes to 0), then noise."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    span = x.amax(dim=(1, 2, 3), keepdim=True) - lo
    stretched = torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), torch.zeros_like(x))
    return sensor_noise(stretched ** 2 * p.brightness, p.noise, rng)


COLOR_QUANT = (5, 4, 3, 2, 1)  # bits kept per channel: 6 - severity


@register("color_quant", COLOR_QUANT, notes="PIL.ImageOps.posterize")
def color_quant(x: torch.Tensor, bits: int, rng: Stream) -> torch.Tensor:
    """Keep the top ``bits`` bits of each 8-bit channel (the 1e-3 absorbs float error of k/255 inputs)."""
    step = 2 ** (8 - bits)
    return torch.floor(torch.floor(x * 255 + 1e-3) / step) * (step / 255)


# --------------------------------------------------------------------------- video codecs

H265_CRF = (24, 26, 32, 39, 41)
H265_ABR = (2, 4, 8, 16, 32)       # the target bitrate is the source video's divided by these
BIT_ERROR = (100000, 50000, 30000, 20000, 10000)  # ffmpeg's noise bsf: about one byte in this many replaced
SOURCE = {"crf": "23", "preset": "medium"}  # moviepy's mp4 (libx264 at ffmpeg's defaults) the reference starts from


def _roundtrip(image: np.ndarray, enc: str, options: dict[str, str], bit_rate: int | None = None) -> np.ndarray:
    data, _ = codec.encode(image, enc, options, bit_rate)
    out = codec.decode(data, enc)
    if out is None:
        raise RuntimeError(f"{enc} produced a stream that does not decode")
    return out


@register("h265_crf", H265_CRF, notes="libx265 (preset medium) at constant rate factor; one-frame stream",
          cpu_chunk=None)  # whole batches: per-image codec calls, spread over threads
def h265_crf(x: torch.Tensor, crf: int, rng: Stream) -> torch.Tensor:
    enc = codec.encoder("libx265", ("libx264",))
    return codec.map_images(x, lambda im: _roundtrip(im, enc, {"crf": str(crf), "preset": "medium"}))


def _abr(image: np.ndarray, divisor: int, enc: str) -> np.ndarray:
    source, _ = codec.encode(image, codec.encoder("libx264", ()), SOURCE)
    rate = int(codec.picture_bytes(source, "libx264") * 8 * codec.FPS / divisor)
    return _roundtrip(image, enc, {"maxrate": str(rate), "bufsize": str(rate), "preset": "medium"}, rate)


@register("h265_abr", H265_ABR, notes="libx265 at the source bitrate / divisor; one-frame stream",
          cpu_chunk=None)  # whole batches: per-image codec calls, spread over threads
def h265_abr(x: torch.Tensor, divisor: int, rng: Stream) -> torch.Tensor:
    """Average-bitrate H.265 with ``maxrate = bufsize = bitrate`` as the reference calls ffmpeg.

    The source bitrate is that of the image's own one-frame libx264 stream at ffmpeg's
    defaults (CRF 23, without parameter sets and SEI), standing in for ffprobe's bitrate
    of the reference's motion video; an intra frame costs more than the average frame
    of a video, so the targets are more generous than the reference's.
    """
    enc = codec.encoder("libx265", ("libx264",))
    return codec.map_images(x, lambda im: _abr(im, divisor, enc))


def corrupt_bytes(data: bytes, amount: int, draws: np.ndarray, values: np.ndarray) -> bytes:
    """Replace each byte with probability 1/``amount`` by a random byte (ffmpeg's ``noise=amount`` filter).

    ``draws`` and ``values`` are uint32 draws, one per byte (at least ``len(data)``).
    """
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    hit = draws[:buf.size] < round(2 ** 32 / amount)
    buf[hit] = values[:buf.size][hit] & 0xFF
    return buf.tobytes()


@register("bit_error", BIT_ERROR, notes="random byte errors in a one-frame H.264 stream, decoded with concealment",
          cpu_chunk=None)  # whole batches: per-image codec calls, spread over threads
def bit_error(x: torch.Tensor, amount: int, rng: Stream) -> torch.Tensor:
    """Bytes of the image's libx264 stream (moviepy's settings) corrupted like ``ffmpeg -bsf noise``.

    As in the reference's mp4, the parameter sets live in the container header
    (extradata) and are spared; slice data and SEI are exposed. A one-frame stream
    has far fewer bytes than the 120 frames whose errors propagate into the
    reference's frame, so errors are rarer per image. A frame the decoder rejects
    entirely comes out mid-grey.
    """
    enc = codec.encoder("libx264", ())
    images = codec.frames(x)
    streams = parallel_map(
        lambda image: codec.encode(np.ascontiguousarray(image), enc, SOURCE, global_header=True), list(images))
    longest = max(len(data) for data, _ in streams)
    draws, values = (rng.bits(longest).cpu().numpy().astype(np.uint32) for _ in range(2))

    def damaged(i: int) -> np.ndarray:
        data, extradata = streams[i]
        decoded = codec.decode(corrupt_bytes(data, amount, draws[i], values[i]), enc, extradata)
        return np.full_like(images[i], 128) if decoded is None or decoded.shape != images[i].shape else decoded
    return codec.from_frames(parallel_map(damaged, range(len(images))), x)
