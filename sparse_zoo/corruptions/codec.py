"""Single-frame video encode/decode through PyAV (FFmpeg's libx265/libx264) for the 3DCC codec corruptions.

Each image is its own one-frame stream with a fresh encoder, so a sample's result
never depends on the rest of the batch (x264/x265 rate control carries state from
frame to frame, so a batch encoded as one sequence would). Frames go through
yuv420p like the reference's ffmpeg calls; odd sizes are padded by one edge
row/column for the encoder and cropped back (the reference crops them off instead), and
images smaller than 16 px likewise padded.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction
from functools import cache

import av
import numpy as np
import torch

from .ops import parallel_map, to_uint8, truncate_uint8

FPS = 25  # moviepy's and the reference videos' frame rate
MIN_SIZE = 16  # x265 refuses smaller frames
# Annex-B NAL unit types that are parameter sets (kept out of the "picture" bytes)
_PARAMETER_SETS = {"h264": {7, 8}, "hevc": {32, 33, 34}}
_SEI = {"h264": {6}, "hevc": {39, 40}}
_DECODER = {"libx265": "hevc", "libx264": "h264", "mpeg4": "mpeg4"}
# x265 logs to stderr by default; info=0 drops its SEI that spells out every encoder setting
_QUIET = {"libx265": {"x265-params": "log-level=none:info=0"}}


@cache
def encoder(preferred: str, fallbacks: tuple[str, ...] = ("libx264", "mpeg4")) -> str:
    """``preferred`` if this PyAV build can encode with it, else the first working fallback (with a warning)."""
    for name in (preferred, *fallbacks):
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
            except (av.FFmpegError, ValueError):
                continue
            if name != preferred:
                warnings.warn(f"PyAV has no {preferred} encoder; the codec corruptions use {name} instead, so "
                              f"their results differ from the reference's {preferred}", RuntimeWarning, stacklevel=2)
            return name
    raise RuntimeError(f"PyAV has none of the encoders {(preferred, *fallbacks)}; install a PyAV wheel with FFmpeg")


def encode(image: np.ndarray, codec: str, options: dict[str, str], bit_rate: int | None = None,
           global_header: bool = False) -> tuple[bytes, bytes]:
    """Encode one (H, W, 3) uint8 RGB image (even H, W) as a one-frame stream: (Annex-B bytes, extradata)."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = image.shape[1], image.shape[0]
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = FPS
    if bit_rate is not None:
        ctx.bit_rate = bit_rate
    if global_header:
        ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = {**_QUIET.get(codec, {}), **options}
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    return data, bytes(ctx.extradata or b"")


def decode(data: bytes, codec: str, extradata: bytes = b"") -> np.ndarray | None:
    """Decode a one-frame stream to (H, W, 3) uint8 RGB; None when the decoder yields no picture."""
    ctx = av.CodecContext.create(_DECODER[codec], "r")
    if extradata:
        ctx.extradata = extradata
    try:
        frames = [*ctx.decode(av.Packet(data)), *ctx.decode(None)]
    except av.FFmpegError:
        return None
    return frames[0].to_ndarray(format="rgb24") if frames else None


def nal_units(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, nal_type) of every Annex-B NAL unit (start includes the start code) of an H.264/H.265 stream."""
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    units = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        if end > s + 3 and k + 1 < len(starts) and data[end - 1] == 0:  # 4-byte start code of the next unit
            end -= 1
        units.append((s, end, data[s + 3] if s + 3 < len(data) else 0))
    return units


def nal_type(header: int, decoder: str) -> int:
    return (header >> 1) & 0x3F if decoder == "hevc" else header & 0x1F


def picture_bytes(data: bytes, codec: str) -> int:
    """Size of the coded picture: the stream without parameter sets and SEI (sent once per video, not per frame)."""
    decoder = _DECODER[codec]
    if decoder not in _PARAMETER_SETS:
        return len(data)
    skip = _PARAMETER_SETS[decoder] | _SEI[decoder]
    return sum(e - s for s, e, t in nal_units(data) if nal_type(t, decoder) not in skip)


def frames(x: torch.Tensor) -> np.ndarray:
    """A float (B, C, H, W) batch as (B, H', W', 3) uint8 RGB on CPU, rounded, edge-padded to even sizes
    (yuv420p) of at least ``MIN_SIZE``."""
    b, c, h, w = x.shape
    rgb = to_uint8(x.expand(b, 3, h, w) if c == 1 else x).cpu()
    pad_w, pad_h = max(MIN_SIZE, w + w % 2) - w, max(MIN_SIZE, h + h % 2) - h
    rgb = truncate_uint8(torch.nn.functional.pad(rgb.float(), (0, pad_w, 0, pad_h), mode="replicate"))
    return rgb.permute(0, 2, 3, 1).numpy()


def from_frames(images: list[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`frames`: crop back to ``like``'s size, grey images averaged to one channel."""
    b, c, h, w = like.shape
    y = torch.from_numpy(np.stack(images)[:, :h, :w]).permute(0, 3, 1, 2).to(like.device, torch.float32) / 255.0
    return y.mean(1, keepdim=True) if c == 1 else y


def map_images(x: torch.Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """Run ``fn`` on every image of ``x`` as an (H, W, 3) uint8 RGB array on CPU; back to x's device."""
    return from_frames(parallel_map(lambda image: fn(np.ascontiguousarray(image)), list(frames(x))), x)
