"""Video datasets decoded with decord: UCF101 (official layout) and any <class>/<video> folder.

A sample is a clip of ``frames`` frames taken every ``stride`` frames, returned as a (C, T, H, W)
tensor (uint8 and un-normalised like the image datasets, or normalised float when the
:class:`ClipTransform` has a mean and std) and an integer label. Training draws one clip at a random start; evaluation
takes ``num_clips`` uniformly spaced clips (deterministic; the centre one when ``num_clips=1``)
and returns (num_clips, C, T, H, W) when ``num_clips > 1`` (average the logits with
:func:`clip_logits`). Videos shorter than a clip loop, as mmaction2 does.

Only the frames a clip needs are decoded, in one batched ``VideoReader.get_batch`` call. A
video corruption (:class:`sparse_zoo.corruptions.video.ClipCorruption`) plugs in at decode
time: temporal ones rewrite the frame indices before decoding; spatial ones corrupt the frames
after the short side is resized (128 for 112 px crops) and before cropping. The reference
corrupts 240 px UCF101 frames and feeds its models crops at about that scale (224 px); resizing
first keeps that relation for 112 px models (corrupting at 240 px and then halving the frames
would halve every blur and average the noise away), and costs 3.5x fewer pixels.

A video that cannot be read raises :class:`VideoDecodeError` naming its path, or with
``on_error="skip"`` is reported (a warning with the path), listed in ``failed`` and yields
``None``, which :func:`video_collate` drops: a broken file never becomes black frames.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, default_collate

from ..corruptions.video import ClipCorruption
from .layouts import Layout, missing

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg")
UCF101_LAYOUT = Layout(
    "ucf101",
    "ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi and ROOT/ucfTrainTestlist/{classInd.txt ('1 ApplyEyeMakeup'), "
    "trainlist0N.txt ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'), testlist0N.txt (paths only)}",
    "https://www.crcv.ucf.edu/data/UCF101.php (UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip); "
    "a small synthetic set: sparse_zoo.data.synthetic_video.make_synthetic_ucf101(ROOT)")
VIDEO_FOLDER_LAYOUT = Layout("video-folder", "ROOT/<class>/<video>.{avi,mp4,mkv,webm,mov} (classes sorted by name)",
                             "any video classification set in this layout (HMDB51, Kinetics-style folders)")


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded; ``path`` names it."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read video {path}: {reason}")
        self.path = path


@dataclass(frozen=True)
class ClipSampler:
    """Where clips start: random for training, uniformly spaced for evaluation (mmaction2's rule)."""

    frames: int = 16
    stride: int = 2
    num_clips: int = 1

    def __post_init__(self) -> None:
        for name in ("frames", "stride", "num_clips"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    @property
    def span(self) -> int:
        return (self.frames - 1) * self.stride + 1

    def positions(self, length: int, starts: torch.Tensor) -> torch.Tensor:
        """(len(starts), frames) positions in a sequence of ``length``; short sequences loop."""
        return (starts.reshape(-1, 1) + self.stride * torch.arange(self.frames)) % length

    def train_starts(self, length: int) -> torch.Tensor:
        """One random start (torch's global RNG, which the training tool seeds per sample)."""
        return torch.randint(0, max(length - self.span, 0) + 1, (1,))

    def eval_starts(self, length: int) -> torch.Tensor:
        interval = max(length - self.span + 1, 1) / self.num_clips
        return (torch.arange(self.num_clips) * interval + interval / 2).floor().long()


@dataclass(frozen=True)
class ClipTransform:
    """uint8 (T, C, H, W) frames -> a (C, T, H, W) clip: resize the short side, crop, flip.

    Training crops at random and flips with probability 1/2 (set ``flip=False`` when the
    classes depend on left/right direction); evaluation crops the centre. Without ``mean``
    and ``std`` the clip stays uint8 and un-normalised, like the package's image datasets
    (the benchmark harness and the training tool normalise with the model's statistics);
    with them it is a normalised float clip.
    """

    size: int | None = 112
    short_side: int | None = 128
    flip: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, clip: torch.Tensor, train: bool) -> torch.Tensor:
        return self.finish(self.resize(clip), train)

    def resize(self, clip: torch.Tensor) -> torch.Tensor:
        """(T, C, H, W) frames with the short side resized (same dtype; uint8 is rounded)."""
        h, w = clip.shape[-2:]
        if self.short_side is None or min(h, w) == self.short_side:
            return clip
        scale = self.short_side / min(h, w)
        size = (max(round(h * scale), 1), max(round(w * scale), 1))
        x = F.interpolate(clip.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        return x.round_().clamp_(0, 255).to(torch.uint8) if clip.dtype == torch.uint8 else x

    def finish(self, clip: torch.Tensor, train: bool) -> torch.Tensor:
        """Crop and flip resized (T, C, H, W) frames into a (C, T, H, W) clip, normalised if asked."""
        x = clip
        h, w = x.shape[-2:]
        if self.size is not None:
            if min(h, w) < self.size:
                raise ValueError(f"frames of {h}x{w} are smaller than the crop {self.size}; set short_side")
            if train:
                top = int(torch.randint(0, h - self.size + 1, (1,)))
                left = int(torch.randint(0, w - self.size + 1, (1,)))
            else:
                top, left = (h - self.size) // 2, (w - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        if train and self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        x = x.transpose(0, 1).contiguous()
        if self.mean is None or self.std is None:
            return x
        return normalize_clip(x, self.mean, self.std)


def normalize_clip(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A uint8 (or [0, 255] float) (C, T, H, W) or (B, C, T, H, W) clip -> float normalised by mean/std."""
    shape = (-1, 1, 1, 1)
    return (clip.float() / 255.0 - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def read_frames(path: str, sequence_fn: Callable[[int], torch.Tensor], *, num_threads: int = 1) -> torch.Tensor:
    """Decode the frames ``sequence_fn(num_frames)`` asks for: uint8 (N, H, W, C) in that order.

    decord decodes each needed frame once (sorted, unique) in a single batched call. Only
    failures of the decoder become :class:`VideoDecodeError`; errors of ``sequence_fn`` propagate.
    """
    import decord

    try:
        reader = decord.VideoReader(path, num_threads=num_threads)
        length = len(reader)
    except Exception as exc:  # decord raises RuntimeError/DECORDError subclasses for broken files
        raise _decode_error(path, exc) from exc
    if length < 1:
        raise VideoDecodeError(path, "no frames")
    unique, inverse = torch.unique(sequence_fn(length), sorted=True, return_inverse=True)
    try:
        frames = reader.get_batch(unique.tolist()).asnumpy()
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    if frames.shape[0] != len(unique):
        raise VideoDecodeError(path, f"decoder returned {frames.shape[0]} frames for {len(unique)}")
    return torch.from_numpy(frames)[inverse]


def _decode_error(path: str, exc: Exception) -> VideoDecodeError:
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    return VideoDecodeError(path, f"{type(exc).__name__}: {first_line}")


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


class VideoClips(Dataset):
    """Clips of a list of (path, label) videos; the base of :class:`UCF101` and :class:`VideoFolder`."""

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str], *, train: bool,
                 frames: int = 16, stride: int = 2, num_clips: int = 1, transform: ClipTransform | None = None,
                 corruption: ClipCorruption | None = None, on_error: str = "raise", num_threads: int = 1):
        _check_on_error(on_error)
        if train and num_clips != 1:
            raise ValueError("training samples one random clip per video; num_clips must be 1")
        self.samples = list(samples)
        self.classes = list(classes)
        self.train = train
        self.sampler = ClipSampler(frames, stride, num_clips)
        self.transform = transform if transform is not None else ClipTransform()
        self.corruption = corruption
        self.on_error = on_error
        self.num_threads = num_threads
        self.failed: list[str] = []

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def clip_indices(self, index: int, num_frames: int) -> torch.Tensor:
        """(clips, frames) source frame indices of sample ``index`` in a video of ``num_frames``."""
        seq = torch.arange(num_frames)
        if self.corruption is not None:
            seq = self.corruption.sequence(num_frames, index)
        starts = self.sampler.train_starts(len(seq)) if self.train else self.sampler.eval_starts(len(seq))
        return seq[self.sampler.positions(len(seq), starts)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        path, label = self.samples[index]
        shape: list[int] = []

        def wanted(num_frames: int) -> torch.Tensor:
            idx = self.clip_indices(index, num_frames)
            shape[:] = idx.shape
            return idx.reshape(-1)

        try:
            frames = read_frames(path, wanted, num_threads=self.num_threads)
        except VideoDecodeError as err:
            if self.on_error == "raise":
                raise
            self.failed.append(path)
            warnings.warn(f"skipping unreadable video {path}: {err}", RuntimeWarning, stacklevel=2)
            return None
        clips = frames.reshape(*shape, *frames.shape[1:]).permute(0, 1, 4, 2, 3)  # (K, T, C, H, W)
        out = []
        for k, clip in enumerate(clips):
            clip = self.transform.resize(clip)
            if self.corruption is not None:
                clip = self.corruption.frames(clip, index * self.sampler.num_clips + k)
            out.append(self.transform.finish(clip, self.train))
        return (out[0] if len(out) == 1 else torch.stack(out)), label

    def scan(self) -> list[str]:
        """Paths of the videos that cannot be opened or decoded (first and last frame)."""
        bad = []
        for path, _ in self.samples:
            try:
                read_frames(path, lambda n: torch.tensor([0, n - 1]))
            except VideoDecodeError:
                bad.append(path)
        return bad


def video_collate(batch: Sequence[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``default_collate`` without the samples a ``on_error="skip"`` dataset could not read;
    ``None`` when none is left."""
    kept = [item for item in batch if item is not None]
    return default_collate(kept) if kept else None


def clip_logits(model: torch.nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Logits of (B, C, T, H, W) clips, or the mean over clips of (B, K, C, T, H, W) multi-clip input."""
    if clips.dim() == 5:
        return model(clips)
    b, k = clips.shape[:2]
    return model(clips.flatten(0, 1)).reshape(b, k, -1).mean(1)


def _read_list(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise missing(UCF101_LAYOUT, path.parent, f"{path.name} is missing")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _missing(samples: Sequence[tuple[str, int]], what: str, on_error: str) -> list[tuple[str, int]]:
    missing = [p for p, _ in samples if not os.path.isfile(p)]
    if missing and on_error == "raise":
        raise FileNotFoundError(f"{len(missing)} of {len(samples)} videos listed in {what} are missing, "
                                f"e.g. {missing[0]}")
    if missing:
        warnings.warn(f"skipping {len(missing)} missing videos listed in {what}, e.g. {missing[0]}",
                      RuntimeWarning, stacklevel=3)
    gone = set(missing)
    return [s for s in samples if s[0] not in gone]


class UCF101(VideoClips):
    """UCF101 in its official layout with its three train/test splits (``split`` 1, 2 or 3).

    ``root`` is the folder holding the class folders (``UCF-101``) or its parent;
    ``annotation_dir`` is ``ucfTrainTestlist`` or its parent. Labels are classInd's index - 1;
    class names match case-insensitively (the official lists spell HandstandPushups two ways).
    """

    def __init__(self, root: str | os.PathLike, annotation_dir: str | os.PathLike, split: int = 1, *,
                 train: bool = True, frames: int = 16, stride: int = 2, **kwargs):
        if split not in (1, 2, 3):
            raise ValueError(f"UCF101 split must be 1, 2 or 3, got {split!r}")
        root, ann = Path(root), Path(annotation_dir)
        root = root / "UCF-101" if (root / "UCF-101").is_dir() else root
        ann = ann / "ucfTrainTestlist" if (ann / "ucfTrainTestlist").is_dir() else ann
        if not root.is_dir():
            raise missing(UCF101_LAYOUT, root, "no UCF-101 folder of class folders")
        class_rows = _read_list(ann / "classInd.txt")
        classes = [name for _, name in sorted(class_rows, key=lambda r: int(r[0]))]
        lookup = {name.lower(): i for i, name in enumerate(classes)}
        listing = ann / f"{'train' if train else 'test'}list{split:02d}.txt"
        samples = []
        for row in _read_list(listing):
            folder = row[0].split("/")[0].lower()
            if folder not in lookup:
                raise ValueError(f"{listing}: class folder {row[0].split('/')[0]!r} is not in classInd.txt")
            if len(row) > 1 and int(row[1]) - 1 != lookup[folder]:
                raise ValueError(f"{listing}: {row[0]} has label {row[1]} but classInd gives {lookup[folder] + 1}")
            samples.append((str(root / row[0]), lookup[folder]))
        _check_on_error(kwargs.get("on_error", "raise"))
        super().__init__(_missing(samples, str(listing), kwargs.get("on_error", "raise")), classes,
                         train=train, frames=frames, stride=stride, **kwargs)


class VideoFolder(VideoClips):
    """Any ``root/<class>/<video>`` folder (HMDB51, Kinetics-style); classes sorted by name."""

    def __init__(self, root: str | os.PathLike, *, train: bool = True, frames: int = 16, stride: int = 2,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS, **kwargs):
        root = Path(root)
        classes = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
        samples = [(str(f), i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir())
                   if f.is_file() and f.suffix.lower() in extensions]
        if not samples:
            raise missing(VIDEO_FOLDER_LAYOUT, root, f"no {', '.join(extensions)} files in class folders")
        super().__init__(samples, classes, train=train, frames=frames, stride=stride, **kwargs)


# --- the training tool's and the benchmark harness's entry points ------------------------------

@dataclass(frozen=True)
class ClipLoader:
    """A clip not decoded yet: calling it decodes (and draws the clip's random start, crop and flip)."""

    dataset: VideoClips
    index: int

    def __call__(self) -> torch.Tensor:
        item = self.dataset[self.index]
        if item is None:
            raise VideoDecodeError(self.dataset.samples[self.index][0], "skipped")
        return item[0]


class DeferredClips(Dataset):
    """Yields ``(ClipLoader, label)``: the training tool's per-sample transform calls the loader
    inside its seeded RNG, so clip starts, crops and flips are reproducible and resumable."""

    def __init__(self, dataset: VideoClips):
        self.dataset = dataset
        self.classes = dataset.classes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[ClipLoader, int]:
        return ClipLoader(self.dataset, index), self.dataset.samples[index][1]


def open_videos(root: str | os.PathLike, *, train: bool, **kwargs) -> VideoClips:
    """UCF101's layout (split 1) when ``root`` has ``ucfTrainTestlist``, else ``root/train`` and
    ``root/test`` (or ``root/val``) holding ``<class>/<video>`` folders."""
    root = Path(root)
    if (root / "ucfTrainTestlist").is_dir():
        return UCF101(root, root, 1, train=train, **kwargs)
    split = "train" if train else next((n for n in ("test", "val") if (root / n).is_dir()), "test")
    if not (root / split).is_dir():
        raise missing(UCF101_LAYOUT, root, f"no ucfTrainTestlist, and no {split}/<class>/<video> folders either")
    return VideoFolder(root / split, train=train, **kwargs)


def recipe_geometry(data_config: dict) -> dict:
    """Clip geometry from timm's data config of a video model: input_size (C, T, H, W); the short
    side is resized to 8/7 of the crop (UCF101's usual 128 -> 112)."""
    size = tuple(data_config["input_size"])
    frames = size[1] if len(size) == 4 else 16
    return {"frames": frames, "transform": ClipTransform(size=size[-1], short_side=round(size[-1] * 8 / 7))}


@dataclass(frozen=True)
class NormalizedClip:
    """The training tool's ``video`` transform: decode a :class:`ClipLoader`, normalise the clip."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, load: ClipLoader) -> torch.Tensor:
        return normalize_clip(load(), self.mean, self.std)


def open_suite(suite, data, clean_data, source: str):
    """The ``ucf101-c`` suite of the benchmark harness: every cell is the test split (UCF101
    split 1, or ``test/`` of a video folder) corrupted at decode time with the run's seed and the clip id.

    Clips: the centre clip of ``frames`` (16) frames at stride 2, resized to 128 (short side) and
    centre-cropped to the suite's size (112), uint8 as the harness expects.
    """
    from ..bench.suites import SuiteData

    if source == "prerendered":
        raise ValueError(f"suite {suite.name} is corrupted at decode time; use source 'auto' or 'onthefly'")
    if isinstance(data, Dataset):
        raise ValueError(f"suite {suite.name} needs a path to the videos, not a Dataset object")
    if data is None:
        raise missing(UCF101_LAYOUT, data)
    root = Path(data).expanduser().resolve()
    frames = suite.extra.get("frames", 16)
    options = dict(frames=frames, stride=suite.extra.get("stride", 2),
                   transform=ClipTransform(size=suite.image_size, short_side=round(suite.image_size * 8 / 7)))
    clean = open_videos(root, train=False, **options)

    def cell(corruption: str, severity: int, seed: int) -> VideoClips:
        return open_videos(root, train=False, corruption=ClipCorruption(corruption, severity, seed=seed), **options)

    return SuiteData(suite, "onthefly", cell=cell, clean=clean,
                     identity={"source": "onthefly", "clean": str(root), "videos": len(clean), "frames": frames,
                               "stride": options["stride"], "size": suite.image_size})
