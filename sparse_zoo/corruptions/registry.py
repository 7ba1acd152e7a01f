"""The corruption registry: each corruption is one pure function beside its parameter table.

A corruption function takes ``(x, p, rng, *, depth)`` where ``x`` is a float32 batch
(B, C, H, W) in [0, 1] on any device, ``p`` is the parameter entry of the severity
(from the table for the image resolution), ``rng`` a :class:`~.rng.Stream` of
per-sample draws and ``depth`` an optional (B, 1, H, W) depth map; it returns a
float batch of the same shape. ``apply`` does the validation, dtype handling,
table lookup, seeding and clipping once for all of them.
"""
from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from . import ops
from .rng import Stream, is_compiling, sample_keys

CorruptionFn = Callable[..., torch.Tensor]
CPU_CHUNK = 1 << 19  # elements per call of a corruption function on CPU (see apply)

SUITES: dict[str, tuple[str, ...]] = {
    "imagenet-c": (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
        "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
        "jpeg_compression"),
    "imagenet-c-extra": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
    "imagenet-c-bar": (
        "blue_noise_sample", "brownish_noise", "caustic_refraction", "checkerboard_cutout",
        "cocentric_sine_waves", "inverse_sparkles", "perlin_noise", "plasma_noise",
        "single_frequency_greyscale", "sparkles"),
    "3dcc": (
        "near_focus", "far_focus", "fog_3d", "flash", "color_quant", "low_light", "xy_motion_blur",
        "z_motion_blur", "iso_noise", "bit_error", "h265_crf", "h265_abr"),
}
SUITES["cifar-c"] = SUITES["imagenet-c"] + SUITES["imagenet-c-extra"]
# Schiappa et al. (2023): per-clip corruptions of the video benchmark (``corruptions.video``).
SUITES["video"] = (
    "motion_blur", "compression", "defocus_blur", "gaussian_noise", "shot_noise", "impulse_noise",
    "zoom_blur", "rotate", "static_rotate", "speckle_noise", "sampling", "reverse_sampling", "jumble",
    "box_jumble", "freeze", "translate")


@dataclass(frozen=True)
class Corruption:
    """One registered corruption: its function and its per-resolution severity tables.

    ``tables`` maps a reference resolution (32, 64, 224 for the ImageNet-C family)
    to the five severity entries; corruptions with a single table use key 0.
    """

    name: str
    fn: CorruptionFn
    tables: Mapping[int, Sequence[Any]]
    uses_depth: bool = False
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    uint8_fn: CorruptionFn | None = None
    uint8_compiles: bool = False

    def table_for(self, size: int, resolution: int | None = None) -> tuple[int, Sequence[Any]]:
        """The table of ``resolution``, or of the reference size closest to the image size."""
        keys = sorted(self.tables)
        if resolution is not None:
            if resolution not in self.tables:
                raise ValueError(f"{self.name}: no table for resolution {resolution}; have {keys}")
            return resolution, self.tables[resolution]
        best = min(keys, key=lambda k: (abs(k - size), k))
        return best, self.tables[best]

    def params(self, severity: int, size: int, resolution: int | None = None) -> Any:
        return self.table_for(size, resolution)[1][severity - 1]


REGISTRY: dict[str, Corruption] = {}


def register(name: str, tables: Mapping[int, Sequence[Any]] | Sequence[Any], *, uses_depth: bool = False,
             notes: str = "", **extra: Any) -> Callable[[CorruptionFn], CorruptionFn]:
    """Register ``fn`` under ``name`` with its severity table(s) (a sequence means one table).

    ``cpu_chunk=N`` (kept in ``extra``) sets how many elements of a CPU batch ``apply``
    passes per call (default ``CPU_CHUNK``, cache-sized; set where another size
    measured faster), and ``cpu_chunk=None`` passes the batch whole, for functions
    whose cost is per call; a function of the severity's parameters returns either;
    ``compile=True`` lets ``apply(..., compile=True)`` run it through ``torch.compile``
    (for functions that trace without graph breaks and gain from fusion).
    """
    if not isinstance(tables, Mapping):
        tables = {0: tuple(tables)}
    for res, table in tables.items():
        if len(table) != 5:
            raise ValueError(f"{name}: table for {res} must have 5 severities, has {len(table)}")

    def wrap(fn: CorruptionFn) -> CorruptionFn:
        if name in REGISTRY:
            raise ValueError(f"corruption {name!r} registered twice")
        REGISTRY[name] = Corruption(name, fn, dict(tables), uses_depth, notes, dict(extra))
        return fn
    return wrap


def register_uint8(name: str, *, compile: bool = False) -> Callable[[CorruptionFn], CorruptionFn]:
    """Attach a uint8 kernel to the registered corruption ``name``.

    ``apply`` calls it instead of the float function on uint8 batches, skipping the
    float round trip (most of the cost of integer-exact corruptions such as PIL
    resizes or codecs). It takes the uint8 batch and must return the uint8 batch that
    the float path would give. ``compile=True``: compiled graphs take it too (for
    kernels in one integer width, such as table lookups; see ``_run``).
    """
    def wrap(fn: CorruptionFn) -> CorruptionFn:
        REGISTRY[name] = replace(REGISTRY[name], uint8_fn=fn, uint8_compiles=compile)
        return fn
    return wrap


def suites() -> list[str]:
    return sorted(SUITES)


def names(suite: str = "imagenet-c") -> list[str]:
    """The corruption names of a suite, in the benchmark's canonical order."""
    if suite not in SUITES:
        raise ValueError(f"unknown corruption suite {suite!r}; valid: {', '.join(suites())}")
    return list(SUITES[suite])


def get(name: str) -> Corruption:
    _load_all()
    if name not in REGISTRY:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _load_all() -> None:
    """Import the modules that register corruptions (lazily, so importing the registry is cheap)."""
    from . import _modules  # noqa: F401


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, C, H, W) tensor with C in (1, 3), got {shape}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
    if images.is_floating_point() and images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("float images must lie in [0, 1]; divide uint8 data by 255 or pass it as uint8")


def apply(images: torch.Tensor, name: str, severity: int, *, seed: int = 0,
          sample_ids: Sequence[int] | torch.Tensor | None = None, depth: torch.Tensor | None = None,
          resolution: int | None = None, compile: bool = False) -> torch.Tensor:
    """Corrupt a batch; returns the same dtype, shape and device.

    ``sample_ids`` (default 0..B-1) identify the samples: sample i's random draws
    depend only on (seed, sample_ids[i], name, severity). uint8 results are
    truncated from [0, 255] floats like the reference scripts' ``np.uint8``.

    ``compile=True`` runs the corruptions registered with ``compile=True`` through
    ``torch.compile``, which fuses their element-wise chains into one C++ (CPU) or
    Triton (CUDA) kernel: several times faster on large runs, but the first batch of
    each corruption, severity and shape pays a few seconds of compilation, and
    transcendental functions may round differently (results within 1/255 of eager).
    Needs a C++ compiler on CPU. Other corruptions run eagerly either way.
    """
    corruption = get(name)
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an integer from 1 to 5, got {severity!r}")
    _check_images(images)
    b, _, h, w = images.shape
    if depth is not None:
        if not isinstance(depth, torch.Tensor) or depth.dim() not in (3, 4) or depth.shape[0] != b \
                or tuple(depth.shape[-2:]) != (h, w) or (depth.dim() == 4 and depth.shape[1] != 1):
            raise ValueError(f"depth must be (B, 1, H, W) or (B, H, W) = ({b}, 1, {h}, {w}), "
                             f"got {tuple(depth.shape) if isinstance(depth, torch.Tensor) else depth!r}")
        depth = depth.reshape(b, 1, h, w).to(images.device, torch.float32)
    if sample_ids is None:
        sample_ids = torch.arange(b)
    sample_ids = torch.as_tensor(sample_ids).reshape(-1)
    if sample_ids.numel() != b:
        raise ValueError(f"sample_ids has {sample_ids.numel()} entries for a batch of {b}")
    if b == 0:  # e.g. an empty slice of a dataset: nothing to draw or corrupt
        return images.clone()
    keys = sample_keys(seed, sample_ids, name, severity)
    p = corruption.params(severity, max(h, w), resolution)
    if compile and corruption.extra.get("compile", False):
        check_compile(images.device)
        return _apply_compiled(corruption, images.contiguous(), p, keys.to(images.device), depth)
    # On CPU, a few images at a time keep every pass in cache (2-4x faster at 224 px); the
    # draws are per sample, so the result is the same. ``cpu_chunk`` resizes the chunks (None:
    # whole batches). uint8 kernels keep narrower temporaries: twice the images per chunk.
    native = corruption.uint8_fn is not None and images.dtype == torch.uint8
    chunk = corruption.extra.get("cpu_chunk", CPU_CHUNK)
    chunk = chunk(p) if callable(chunk) else chunk
    step = b if images.device.type != "cpu" or chunk is None else \
        max(1, chunk * (2 if native else 1) // images[0].numel())
    if step >= b:  # one call: its result as it is when fresh and laid out like the input (no copy)
        y = _run(corruption, images, p, keys, depth)
        fresh = y.untyped_storage().data_ptr() != images.untyped_storage().data_ptr()
        if fresh and y.dtype == images.dtype and y.stride() == images.stride():
            return y
        return torch.empty_like(images).copy_(y)
    out = torch.empty_like(images)
    for start in range(0, b, step):
        part = slice(start, start + step)
        out[part] = _run(corruption, images[part], p, keys[part], None if depth is None else depth[part])
    return out


def _run(corruption: Corruption, images: torch.Tensor, p: Any, keys: torch.Tensor,
         depth: torch.Tensor | None) -> torch.Tensor:
    """One chunk through the corruption: its uint8 kernel, or the float function and the conversion back.

    Compiled graphs take the float function unless the uint8 kernel opts in: fused,
    the round trip through float32 costs nothing, and mixed-width vector code (uint8
    masks of float compares) is slow.
    """
    kwargs = {"depth": depth} if corruption.uses_depth else {}
    rng = Stream(keys, images.device)
    if corruption.uint8_fn is not None and images.dtype == torch.uint8 \
            and (corruption.uint8_compiles or not is_compiling()):
        return corruption.uint8_fn(images, p, rng, **kwargs)
    x = images.to(torch.float32)
    if images.dtype == torch.uint8:
        x.div_(255.0)  # a fresh copy: scaled in place
    y = corruption.fn(x, p, rng, **kwargs).clamp_(0.0, 1.0)
    return ops.truncate_uint8(y.mul_(255.0)) if images.dtype == torch.uint8 else y  # truncates, like np.uint8


def check_compile(device: torch.device | str) -> None:
    """A ValueError naming the fix when ``compile=True`` cannot work on ``device`` (CPU without a C++ compiler)."""
    if torch.device(device).type == "cpu" and not _have_cxx():
        raise ValueError("compile=True on CPU needs a C++ compiler for torch.compile (g++ or clang++ on PATH, "
                         "or $CXX): install one, or run without compile")


@functools.cache
def _have_cxx() -> bool:
    return any(shutil.which(c) for c in (os.environ.get("CXX"), "g++", "c++", "clang++") if c)


# Every (corruption, severity, image shape, dtype, batch size) is one compiled graph of _run.
_RECOMPILE_LIMIT = 512
_COMPILED_BATCH: dict[tuple, int] = {}  # the batch size each signature is compiled for (the largest seen)


def _apply_compiled(corruption: Corruption, images: torch.Tensor, p: Any, keys: torch.Tensor,
                    depth: torch.Tensor | None) -> torch.Tensor:
    """``apply`` through torch.compile, with one batch size per signature: the largest seen.

    Shapes are static (a kernel for symbolic sizes ran 4x slower), so a smaller batch,
    such as a dataset's last one, is padded with copies of its last sample instead of
    compiling again; the draws are per sample, so the padding changes nothing else.
    """
    b = images.shape[0]
    signature = (corruption.name, p, images.shape[1:], images.dtype, images.device)
    if signature not in _COMPILED_BATCH:  # one eager sample fills the caches (counter hashes) the graph reads
        _run(corruption, images[:1], p, keys[:1], None if depth is None else depth[:1])
    size = _COMPILED_BATCH[signature] = max(b, _COMPILED_BATCH.get(signature, 0))
    images, keys, depth = (t if t is None else _pad_batch(t, size) for t in (images, keys, depth))
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    with config.patch(**{limit: _RECOMPILE_LIMIT}):
        return _compiled_run()(corruption, images, p, keys, depth)[:b]


def _pad_batch(t: torch.Tensor, size: int) -> torch.Tensor:
    """``t`` with its last entry repeated up to ``size`` entries."""
    return t if len(t) == size else torch.cat((t, t[-1:].expand(size - len(t), *t.shape[1:])))


@functools.cache
def _compiled_run() -> Callable[..., torch.Tensor]:
    return torch.compile(_run, dynamic=False)
