"""Video corruptions of Schiappa et al. (2023), as in their evaluation code.

The reference is ``core/video_perturb.py`` of github.com/Maddy12/ActionRecognitionRobustnessEval
("A Large-Scale Robustness Analysis of Video Action Recognition Models", CVPR 2023). Its 16
perturbations fall into two kinds:

* **temporal** (sampling, reverse_sampling, jumble, box_jumble, freeze): they only reorder,
  drop or repeat frames. Here they are functions of frame *indices*: ``sequence(num_frames)``
  gives the corrupted video as a list of source frame indices, computed before decoding, so
  the decoder reads only the frames a clip needs and the corruption costs nothing extra. As in
  the reference they act on the whole video, and the clip is sampled from the result.
* **spatial**: per-frame corruptions reuse the image engine (``corruptions.apply``) on whole
  clips at once, reshaped to (B*T, C, H, W). As in the reference, random draws differ per
  frame (noise, motion-blur angle, rotate's angle): frame t of clip i uses sample id
  ``i * 2**16 + t``. translate and static_rotate are per clip, as in the reference.

Severity tables are the reference's. Per-frame corruptions use the image engine's ImageNet-C
(224 px) tables, except shot_noise and speckle_noise whose reference tables are the
Tiny-ImageNet-C (64 px) ones. Parameters are in pixels of the frames being corrupted (the
reference corrupts 240 px UCF101 frames and feeds its models about that scale; the video
datasets corrupt frames resized to the model's scale, see :mod:`sparse_zoo.data.video`). All
corruptions have severities 1-5; static_rotate has the reference's sixth level (180 degrees).
The paper evaluates levels 1-4.

``compression`` is the reference's per-frame JPEG (qualities 25, 18, 15, 10, 7).
``compression_h264`` (not in the reference, not in the 16 of ``names('video')``) encodes the
clip with a real video codec, H.264 (libx264 through PyAV, default preset, yuv420p) at a
constant rate factor mapped from those JPEG qualities by ``crf = round(51 * (100 - q) / 100)``,
the linear quality-to-CRF map used for AVC in the light-field distortion dataset of CTU
Prague (sites.google.com/fel.cvut.cz/lfdd/distortions); this gives CRF 38, 42, 43, 46, 47.

Deviations from the reference, on purpose: it applies a perturbation to 75% of the clips
(``p=.75``) with random crops at test time; here every clip is corrupted, deterministically,
with per-clip seeds. Where a temporal corruption leaves fewer frames than a clip needs, the
reference pads with black frames; here the clip loops over the corrupted sequence.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .ops import truncate_uint8
from .registry import apply, names
from .rng import Stream, sample_keys

FRAME_ID_BITS = 16  # frame t of clip i has sample id i * 2**16 + t in the image engine
EXTRA = ("compression_h264",)  # registered here beside the reference's 16


@dataclass(frozen=True)
class Draws:
    """Per-clip and per-frame random streams of a batch of clips, keyed by (seed, clip id)."""

    seed: int
    name: str
    severity: int
    clip_ids: torch.Tensor

    def clips(self, device: torch.device | str | None = None) -> Stream:
        return Stream(sample_keys(self.seed, self.clip_ids, self.name, self.severity), device)

    def frame_ids(self, num_frames: int) -> torch.Tensor:
        if num_frames >= 1 << FRAME_ID_BITS:
            raise ValueError(f"clips of {num_frames} frames exceed the {1 << FRAME_ID_BITS} frame ids per clip")
        t = torch.arange(num_frames, dtype=torch.int64)
        return ((self.clip_ids.reshape(-1, 1) << FRAME_ID_BITS) + t).reshape(-1)

    def frames(self, num_frames: int, device: torch.device | str | None = None) -> Stream:
        return Stream(sample_keys(self.seed, self.frame_ids(num_frames), self.name, self.severity), device)


TemporalFn = Callable[[int, Any, Stream], list[torch.Tensor]]
SpatialFn = Callable[[torch.Tensor, Any, Draws], torch.Tensor]


@dataclass(frozen=True)
class VideoCorruption:
    """One video corruption: a temporal ``fn(num_frames, p, rng) -> [indices per clip]`` or a
    spatial ``fn(x (B, T, C, H, W) uint8/float, p, draws) -> same``, and its severity table."""

    name: str
    fn: TemporalFn | SpatialFn
    table: Sequence[Any]
    temporal: bool
    notes: str = ""

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.table) + 1))

    def params(self, severity: int) -> Any:
        if isinstance(severity, bool) or not isinstance(severity, int) or severity not in self.severities:
            raise ValueError(f"{self.name}: severity must be an integer in {list(self.severities)}, "
                             f"got {severity!r}")
        return self.table[severity - 1]


VIDEO_REGISTRY: dict[str, VideoCorruption] = {}


def register_video(name: str, table: Sequence[Any], *, temporal: bool, notes: str = ""
                   ) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        if name in VIDEO_REGISTRY:
            raise ValueError(f"video corruption {name!r} registered twice")
        VIDEO_REGISTRY[name] = VideoCorruption(name, fn, tuple(table), temporal, notes)
        return fn
    return wrap


def video_names(*, extra: bool = False) -> list[str]:
    """The 16 reference corruptions in the benchmark's order (plus ``EXTRA`` when asked)."""
    return names("video") + (list(EXTRA) if extra else [])


def get_video(name: str) -> VideoCorruption:
    if name not in VIDEO_REGISTRY:
        raise ValueError(f"unknown video corruption {name!r}; valid: {', '.join(video_names(extra=True))}")
    return VIDEO_REGISTRY[name]


# ----------------------------------------------------------------------------- temporal

def _rates(n: int, rate: int, batch: int) -> list[torch.Tensor]:
    return [torch.arange(0, n, rate)] * batch


@register_video("sampling", (2, 4, 8, 16, 32), temporal=True, notes="keep every r-th frame")
def _sampling(n: int, rate: int, rng: Stream) -> list[torch.Tensor]:
    return _rates(n, rate, len(rng))


@register_video("reverse_sampling", (2, 4, 8, 16, 32), temporal=True, notes="every r-th frame, reversed")
def _reverse_sampling(n: int, rate: int, rng: Stream) -> list[torch.Tensor]:
    return [s.flip(0) for s in _rates(n, rate, len(rng))]


@register_video("jumble", tuple(64 // 2 ** s for s in range(1, 6)), temporal=True,
                notes="frames shuffled within consecutive segments of this length")
def _jumble(n: int, seg: int, rng: Stream) -> list[torch.Tensor]:
    segment = torch.arange(n) // seg
    order = torch.argsort(segment + rng.uniform(n), dim=1)  # ties impossible: u in (0, 1)
    return list(order)


@register_video("box_jumble", tuple((s + 1) ** 2 for s in range(1, 6)), temporal=True,
                notes="consecutive segments of this length shuffled as blocks")
def _box_jumble(n: int, seg: int, rng: Stream) -> list[torch.Tensor]:
    segment = torch.arange(n) // seg
    u = rng.uniform(math.ceil(n / seg))[:, segment]  # one draw per segment, spread to its frames
    return list(torch.sort(u, dim=1, stable=True).indices)


@register_video("freeze", (0.4, 0.2, 0.1, 0.05, 0.0), temporal=True,
                notes="keep k random frames, each held until the next; k = int(f * n) "
                      "(level 4: max(f * n, 2), level 5: 1); starts at the first kept frame")
def _freeze(n: int, fraction: float, rng: Stream) -> list[torch.Tensor]:
    k = 1 if fraction == 0.0 else int(max(fraction * n, 2) if fraction == 0.05 else fraction * n)
    k = min(max(k, 1), n)
    kept = torch.sort(torch.topk(rng.uniform(n), k, dim=1, largest=False).indices, dim=1).values
    out = []
    for row in kept:  # each kept frame repeats until the next one, the last until the end
        hold = torch.diff(row, append=torch.tensor([n]))
        out.append(torch.repeat_interleave(row, hold))
    return out


# ----------------------------------------------------------------------------- spatial

def _per_frame(name: str, image_name: str, resolution: int, notes: str) -> None:
    """Register ``name`` as the image engine's ``image_name`` on every frame (table at ``resolution``)."""

    def fn(x: torch.Tensor, severity: int, draws: Draws) -> torch.Tensor:  # table entry = severity
        t = x.shape[1]
        out = apply(x.flatten(0, 1), image_name, severity, seed=draws.seed,
                    sample_ids=draws.frame_ids(t), resolution=resolution)
        return out.reshape(x.shape)

    fn.__name__ = f"_{name}"
    fn.image = (image_name, resolution)  # type: ignore[attr-defined]  # read by tests and docs
    register_video(name, (1, 2, 3, 4, 5), temporal=False,
                   notes=f"{notes}; image engine's {image_name} at its {resolution} px table")(fn)


_per_frame("motion_blur", "motion_blur", 224, "angle uniform in [-45, 45] per frame")
_per_frame("compression", "jpeg_compression", 224, "per-frame JPEG, qualities 25, 18, 15, 10, 7")
_per_frame("defocus_blur", "defocus_blur", 224, "disk kernel per frame")
_per_frame("gaussian_noise", "gaussian_noise", 224, "new noise per frame")
_per_frame("shot_noise", "shot_noise", 64, "new noise per frame (reference: 250, 100, 50, 30, 15)")
_per_frame("impulse_noise", "impulse_noise", 224, "new noise per frame")
_per_frame("zoom_blur", "zoom_blur", 224, "per frame")
_per_frame("speckle_noise", "speckle_noise", 64, "new noise per frame (reference: .15, .2, .25, .3, .35)")


def rotate_frames(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate (N, C, H, W) frames counter-clockwise about their centre like PIL's ``Image.rotate``
    (nearest neighbour, same size, black outside); ``degrees`` has one angle per frame."""
    theta = torch.deg2rad(degrees.to(torch.float64))
    cos, sin = torch.cos(theta), torch.sin(theta)
    h, w = x.shape[-2:]
    mat = torch.stack([torch.stack([cos, -sin * h / w, torch.zeros_like(cos)], -1),
                       torch.stack([sin * w / h, cos, torch.zeros_like(cos)], -1)], 1)
    grid = F.affine_grid(mat.to(torch.float32), list(x.shape), align_corners=False).to(x.device)
    out = F.grid_sample(x.to(torch.float32), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.to(x.dtype)


@register_video("rotate", (1, 2, 3, 4, 5), temporal=False,
                notes="per frame, an integer angle uniform in [-6s-1, 6s+1] degrees (camera shake)")
def _rotate(x: torch.Tensor, s: int, draws: Draws) -> torch.Tensor:
    t = x.shape[1]
    deg = draws.frames(t).integers(-6 * s - 1, 6 * s + 2, 1).reshape(-1)
    return rotate_frames(x.flatten(0, 1), deg).reshape(x.shape)


@register_video("static_rotate", (7.5, 15, 30, 45, 90, 180), temporal=False,
                notes="every frame rotated by the same angle (degrees, counter-clockwise)")
def _static_rotate(x: torch.Tensor, deg: float, draws: Draws) -> torch.Tensor:
    flat = x.flatten(0, 1)
    return rotate_frames(flat, torch.full((flat.shape[0],), float(deg))).reshape(x.shape)


@register_video("translate", (1, 2, 3, 4, 5), temporal=False,
                notes="per clip, content shifted up by dy and left by dx, uniform in [0, 8s) px, black fill")
def _translate(x: torch.Tensor, s: int, draws: Draws) -> torch.Tensor:
    shifts = draws.clips().integers(0, 8 * s, 2)
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i, ..., : max(h - dy, 0), : max(w - dx, 0)] = x[i, ..., dy:, dx:]
    return out


H264_CRF = tuple(round(51 * (100 - q) / 100) for q in (25, 18, 15, 10, 7))


_RGB_TO_YCBCR = torch.tensor([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0])


def rgb_to_yuv420(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, 3, H, W) RGB, H and W even -> (T, H * 3 // 2, W) planar yuv420p (BT.601, limited
    range, chroma averaged over 2x2), the layout PyAV's ``VideoFrame.from_ndarray`` takes."""
    t, _, h, w = frames.shape
    ycc = torch.einsum("ck,tkhw->tchw", _RGB_TO_YCBCR, frames.float() / 255) + _YCBCR_OFFSET.view(1, 3, 1, 1)
    y = ycc[:, 0].round().clamp(0, 255)
    uv = F.avg_pool2d(ycc[:, 1:], 2).round().clamp(0, 255).reshape(t, 2, h // 4, w)
    return truncate_uint8(torch.cat([y, uv[:, 0], uv[:, 1]], 1))


def yuv420_to_rgb(planes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`rgb_to_yuv420` (nearest-neighbour chroma upsampling): uint8 (T, 3, H, W)."""
    t = planes.shape[0]
    y = planes[:, :h].float()
    uv = planes[:, h:].float().reshape(t, 2, h // 2, w // 2).repeat_interleave(2, -2).repeat_interleave(2, -1)
    ycc = torch.cat([y.unsqueeze(1), uv], 1) - _YCBCR_OFFSET.view(1, 3, 1, 1)
    rgb = torch.einsum("ck,tkhw->tchw", torch.linalg.inv(_RGB_TO_YCBCR), ycc) * 255
    return truncate_uint8(rgb.round().clamp(0, 255))


def h264_roundtrip(frames: torch.Tensor, crf: int, *, fps: int = 25, preset: str = "medium") -> torch.Tensor:
    """Encode uint8 (T, 3, H, W) frames with libx264 at ``crf`` and decode them back.

    The result must be the same in every run, which took three measures: frames are
    replicate-padded to multiples of 16 (cropped after decoding), colours are converted here in
    torch rather than by swscale, and x264's macroblock-tree rate control is off (single
    thread): otherwise the output varied from run to run on some inputs.
    """
    import av

    t, _, h, w = frames.shape
    src = truncate_uint8(F.pad(frames.float(), (0, -w % 16, 0, -h % 16), mode="replicate"))
    planes = rgb_to_yuv420(src).numpy()
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = src.shape[-1], src.shape[-2], "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, fps), Fraction(fps)
    enc.options = {"crf": str(crf), "preset": preset, "threads": "1", "x264-params": "mbtree=0"}
    packets = []
    for i, f in enumerate(planes):
        frame = av.VideoFrame.from_ndarray(f, format="yuv420p")
        frame.pts = i
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264", "r")
    out = [f.to_ndarray() for p in [*packets, None] for f in dec.decode(p)]
    if len(out) != t:
        raise RuntimeError(f"H.264 round trip returned {len(out)} frames for {t}")
    return yuv420_to_rgb(torch.from_numpy(np.stack(out)), *src.shape[-2:])[..., :h, :w]


@register_video("compression_h264", H264_CRF, temporal=False,
                notes="H.264 (libx264, yuv420p) round trip of the whole clip at this CRF")
def _compression_h264(x: torch.Tensor, crf: int, draws: Draws) -> torch.Tensor:
    u8 = x if x.dtype == torch.uint8 else truncate_uint8((x * 255.0).round())
    rgb = u8.expand(-1, -1, 3, -1, -1) if u8.shape[2] == 1 else u8
    out = torch.stack([h264_roundtrip(clip.cpu(), crf) for clip in rgb])
    out = out[:, :, :1] if u8.shape[2] == 1 else out
    out = out.to(x.device)
    return out if x.dtype == torch.uint8 else (out.to(x.dtype) / 255.0)


# ----------------------------------------------------------------------------- entry points

def _ids(sample_ids: Sequence[int] | torch.Tensor | None, b: int) -> torch.Tensor:
    ids = torch.arange(b) if sample_ids is None else torch.as_tensor(sample_ids, dtype=torch.int64).reshape(-1)
    if ids.numel() != b:
        raise ValueError(f"sample_ids has {ids.numel()} entries for a batch of {b}")
    return ids


def temporal_sequences(num_frames: int, name: str, severity: int, *, seed: int = 0,
                       sample_ids: Sequence[int] | torch.Tensor | None = None) -> list[torch.Tensor]:
    """The corrupted frame sequence of each video (source indices into ``num_frames`` frames).

    Identity (``arange``) for spatial corruptions, so callers need not branch.
    """
    corruption = get_video(name)
    p = corruption.params(severity)
    ids = torch.zeros(1, dtype=torch.int64) if sample_ids is None else \
        torch.as_tensor(sample_ids, dtype=torch.int64).reshape(-1)
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if not corruption.temporal:
        return [torch.arange(num_frames)] * len(ids)
    return corruption.fn(num_frames, p, Stream(sample_keys(seed, ids, name, severity)))


def spatial_frames(clips: torch.Tensor, name: str, severity: int, *, seed: int = 0,
                   sample_ids: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """Corrupt (B, T, C, H, W) uint8 or float [0, 1] frames; identity for temporal corruptions."""
    corruption = get_video(name)
    p = corruption.params(severity)
    if corruption.temporal:
        return clips
    draws = Draws(seed, name, severity, _ids(sample_ids, clips.shape[0]))
    out = corruption.fn(clips, p, draws)
    return out if out.dtype == torch.uint8 else out.clamp_(0.0, 1.0)


def _check_clips(clips: torch.Tensor) -> None:
    if not isinstance(clips, torch.Tensor) or clips.dim() != 5 or clips.shape[1] not in (1, 3):
        shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise ValueError(f"clips must be a (B, C, T, H, W) tensor with C in (1, 3), got {shape}")
    if clips.dtype != torch.uint8 and not clips.is_floating_point():
        raise ValueError(f"clips must be uint8 or float in [0, 1], got {clips.dtype}")
    if clips.is_floating_point() and clips.numel() and (clips.min() < 0 or clips.max() > 1):
        raise ValueError("float clips must lie in [0, 1]; pass uint8 data as uint8")


def apply_video(clips: torch.Tensor, name: str, severity: int, *, seed: int = 0,
                sample_ids: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """Corrupt decoded clips (B, C, T, H, W), uint8 or float in [0, 1]; same dtype, shape, device.

    Each clip is treated as a whole video: a temporal corruption's sequence is computed for its
    T frames and the clip loops over it (``seq[arange(T) % len(seq)]``). Clip i's draws depend
    only on (seed, sample_ids[i], name, severity). To corrupt whole videos before clip sampling,
    as the reference does, use :class:`ClipCorruption` in the dataset.
    """
    _check_clips(clips)
    b, _, t = clips.shape[:3]
    ids = _ids(sample_ids, b)
    if get_video(name).temporal:
        seqs = temporal_sequences(t, name, severity, seed=seed, sample_ids=ids)
        index = torch.stack([s[torch.arange(t) % len(s)] for s in seqs]).to(clips.device)
        return torch.take_along_dim(clips, index.reshape(b, 1, t, 1, 1), dim=2)
    out = spatial_frames(clips.transpose(1, 2), name, severity, seed=seed, sample_ids=ids)
    return out.transpose(1, 2).contiguous()


@dataclass(frozen=True)
class ClipCorruption:
    """The hook a video dataset corrupts with: ``sequence`` before decoding, ``frames`` after.

    ``sample_id`` is the video's index for ``sequence`` (one corrupted video, all its clips
    sampled from it) and the clip's id for ``frames``; ``seed`` makes the whole set reproducible.
    """

    name: str
    severity: int
    seed: int = 0

    def __post_init__(self) -> None:
        get_video(self.name).params(self.severity)

    @property
    def temporal(self) -> bool:
        return get_video(self.name).temporal

    def sequence(self, num_frames: int, sample_id: int) -> torch.Tensor:
        return temporal_sequences(num_frames, self.name, self.severity, seed=self.seed, sample_ids=[sample_id])[0]

    def frames(self, clip: torch.Tensor, sample_id: int) -> torch.Tensor:
        """Corrupt one decoded clip (T, C, H, W), uint8 or float in [0, 1]."""
        return spatial_frames(clip.unsqueeze(0), self.name, self.severity, seed=self.seed,
                              sample_ids=[sample_id])[0]
