"""Video datasets decoded with decord: UCF101 (official layout) and any <class>/<video> folder.

A sample is a clip of ``frames`` frames taken every ``stride`` frames, returned as a float
(C, T, H, W) tensor and an integer label. Training draws one clip at a random start; evaluation
takes ``num_clips`` uniformly spaced clips (deterministic; the centre one when ``num_clips=1``)
and returns (num_clips, C, T, H, W) when ``num_clips > 1`` (average the logits with
:func:`clip_logits`). Videos shorter than a clip loop, as mmaction2 does.

Only the frames a clip needs are decoded, in one batched ``VideoReader.get_batch`` call. A
video corruption (:class:`sparse_zoo.corruptions.video.ClipCorruption`) plugs in at decode
time: temporal ones rewrite the frame indices before decoding, spatial ones corrupt the decoded
frames at their native resolution (as the reference evaluation code does), before resizing.

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

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg")
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # the usual normalisation of 3D ResNets
KINETICS_STD = (0.22803, 0.22145, 0.216989)
UCF101_LAYOUT = """expected the official UCF101 layout:
  ROOT/UCF-101/<Class>/v_<Class>_gXX_cYY.avi       (ROOT/UCF-101 or ROOT itself may be given)
  ANNOTATIONS/ucfTrainTestlist/classInd.txt         lines '1 ApplyEyeMakeup'
  ANNOTATIONS/ucfTrainTestlist/trainlist0N.txt      lines 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'
  ANNOTATIONS/ucfTrainTestlist/testlist0N.txt       lines 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi'
get it from https://www.crcv.ucf.edu/data/UCF101.php (UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip),
or make a small synthetic set with sparse_zoo.data.synthetic_video.make_synthetic_ucf101(ROOT)"""


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

    def train_starts(self, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(0, max(length - self.span, 0) + 1, (1,), generator=generator)

    def eval_starts(self, length: int) -> torch.Tensor:
        interval = max(length - self.span + 1, 1) / self.num_clips
        return (torch.arange(self.num_clips) * interval + interval / 2).floor().long()


@dataclass(frozen=True)
class ClipTransform:
    """uint8 (T, C, H, W) -> normalised float (C, T, H, W): resize the short side, crop, flip.

    Training crops at random and flips with probability 1/2 (set ``flip=False`` when the
    classes depend on left/right direction); evaluation crops the centre.
    """

    size: int | None = 112
    short_side: int | None = 128
    mean: tuple[float, ...] = KINETICS_MEAN
    std: tuple[float, ...] = KINETICS_STD
    flip: bool = True

    def __call__(self, clip: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        x = clip.float().div_(255.0) if clip.dtype == torch.uint8 else clip.float()
        h, w = x.shape[-2:]
        if self.short_side is not None and min(h, w) != self.short_side:
            scale = self.short_side / min(h, w)
            h, w = max(round(h * scale), 1), max(round(w * scale), 1)
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        if self.size is not None:
            if min(h, w) < self.size:
                raise ValueError(f"frames of {h}x{w} are smaller than the crop {self.size}; set short_side")
            if train:
                top = int(torch.randint(0, h - self.size + 1, (1,), generator=generator))
                left = int(torch.randint(0, w - self.size + 1, (1,), generator=generator))
            else:
                top, left = (h - self.size) // 2, (w - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        if train and self.flip and bool(torch.rand((), generator=generator) < 0.5):
            x = x.flip(-1)
        mean = torch.tensor(self.mean).reshape(1, -1, 1, 1)
        std = torch.tensor(self.std).reshape(1, -1, 1, 1)
        return ((x - mean) / std).transpose(0, 1).contiguous()


def read_frames(path: str, sequence_fn: Callable[[int], torch.Tensor], *, num_threads: int = 1,
                width: int = -1, height: int = -1) -> torch.Tensor:
    """Decode the frames ``sequence_fn(num_frames)`` asks for: uint8 (N, H, W, C) in that order.

    decord decodes each needed frame once (sorted, unique) in a single batched call.
    """
    import decord

    try:
        reader = decord.VideoReader(path, num_threads=num_threads, width=width, height=height)
        length = len(reader)
        if length < 1:
            raise VideoDecodeError(path, "no frames")
        wanted = sequence_fn(length)
        unique, inverse = torch.unique(wanted, sorted=True, return_inverse=True)
        frames = reader.get_batch(unique.tolist()).asnumpy()
    except VideoDecodeError:
        raise
    except Exception as exc:  # decord raises RuntimeError/DECORDError subclasses for broken files
        raise VideoDecodeError(path, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if frames.shape[0] != len(unique):
        raise VideoDecodeError(path, f"decoder returned {frames.shape[0]} frames for {len(unique)}")
    return torch.from_numpy(frames)[inverse]


class VideoClips(Dataset):
    """Clips of a list of (path, label) videos; the base of :class:`UCF101` and :class:`VideoFolder`."""

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str], *, train: bool,
                 frames: int = 16, stride: int = 2, num_clips: int = 1, transform: ClipTransform | None = None,
                 corruption: ClipCorruption | None = None, on_error: str = "raise", num_threads: int = 1):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
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
            if self.corruption is not None:
                clip = self.corruption.frames(clip, index * self.sampler.num_clips + k)
            out.append(self.transform(clip, self.train))
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
        raise FileNotFoundError(f"missing {path}; {UCF101_LAYOUT}")
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
            raise FileNotFoundError(f"no video folder at {root}; {UCF101_LAYOUT}")
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
            raise FileNotFoundError(f"no videos ({', '.join(extensions)}) in {root}/<class>/; "
                                    "expected one folder per class holding its videos")
        super().__init__(samples, classes, train=train, frames=frames, stride=stride, **kwargs)
