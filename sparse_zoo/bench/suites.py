"""The registry of benchmark suites: corruptions, severities, datasets and preprocessing.

A suite's data is either **pre-rendered** (the official corrupted release, or a copy
written by ``sparse-zoo corrupt``) or generated **on the fly** from the clean set
with :mod:`sparse_zoo.corruptions` (per-sample seeds, batched on the model's
device). ``open_suite`` looks at ``data`` and picks the form it finds (or the one
asked for), and the choice is part of the results' config hash, so the two never
mix. Preprocessing, per suite (the harness never resizes otherwise):

- cifar10-c, cifar100-c: 32 px images as stored; the model's mean/std.
- tinyimagenet-c: 64 px images as stored; the model's mean/std.
- imagenet-c, imagenet-c-bar, imagenet-3dcc: pre-rendered images are already 224 px
  (the releases resized to 256 and centre-cropped to 224 *before* corrupting) and are
  read as they are: resizing them to 256 and cropping again, as some harnesses do,
  evaluates a different, blurrier crop. The clean ImageNet val set (clean accuracy,
  on-the-fly corruption) is resized to 256 and centre-cropped to 224 first.
- ucf101-c: clips of the video data module (``sparse_zoo.data.video``).

Extension point: ``register_suite(Suite(..., opener=fn))`` where ``fn(suite, data,
clean_data, source) -> SuiteData``; the video suite plugs in this way (its opener is
``sparse_zoo.data.video.open_suite``), and the runner evaluates any ``SuiteData``
whose datasets yield ``(input tensor, label)``.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .. import corruptions
from ..data import (CIFAR, CorruptBatch, CorruptedArrays, CorruptedFolder, DatasetNotFoundError, ImageNetVal,
                    TinyImageNet, folder_corruptions, npy_corruptions, severity_folder)
from ..data.layouts import LAYOUTS

SOURCES = ("auto", "prerendered", "onthefly")


@dataclass
class SuiteData:
    """A suite's data as found: the dataset of each cell, the clean set, and what identifies them.

    ``cell(corruption, severity, seed)`` is the dataset to evaluate (the seed matters where
    the dataset corrupts at decode time, as video does); ``transform(corruption, severity,
    seed)`` the batched corruption to apply on the device (None when the cell's images are
    already corrupted). ``identity`` enters the config hash.
    """

    suite: "Suite"
    source: str
    cell: Callable[[str, int, int], Dataset]
    clean: Dataset | None
    identity: dict[str, Any]
    transform: Callable[[str, int, int], Callable | None] = lambda corruption, severity, seed: None

    @property
    def classes(self) -> list[str] | None:
        return getattr(self.clean, "classes", None)


Opener = Callable[["Suite", Any, Any, str], SuiteData]


@dataclass(frozen=True)
class Suite:
    """One benchmark suite. ``layout``/``clean_layout`` name entries of ``sparse_zoo.data.LAYOUTS``."""

    name: str
    corruptions: tuple[str, ...]
    num_classes: int
    image_size: int
    layout: str
    clean_layout: str
    open_clean: Callable[[Path], Dataset] | None
    folder_names: tuple[str, ...] = ()
    clean_folder_names: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    reference: str | None = None  # "alexnet": mCE normalised by AlexNet's published errors
    preprocessing: str = ""
    opener: Opener | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self, data: Any, clean_data: Any = None, source: str = "auto") -> SuiteData:
        if source not in SOURCES:
            raise ValueError(f"unknown data source {source!r}; valid: {', '.join(SOURCES)}")
        return (self.opener or open_image_suite)(self, data, clean_data, source)


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    if suite.name in SUITES:
        raise ValueError(f"suite {suite.name!r} registered twice")
    SUITES[suite.name] = suite
    return suite


def suite_names() -> list[str]:
    return sorted(SUITES)


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; valid: {', '.join(suite_names())}")
    return SUITES[name]


def check_corruptions(suite: Suite, names: Sequence[str]) -> None:
    unknown = [c for c in names if c not in suite.corruptions]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown)} for suite {suite.name}; "
                         f"valid: {', '.join(suite.corruptions)}")


# --- finding image data -------------------------------------------------------------------

def _candidates(root: Path, names: Sequence[str]) -> list[Path]:
    return [root] + [root / n for n in names]


def _prerendered_root(suite: Suite, root: Path) -> Path | None:
    for candidate in _candidates(root, suite.folder_names):
        present = npy_corruptions(candidate) if suite.layout.startswith("cifar") else folder_corruptions(candidate)
        if (not suite.layout.startswith("cifar") or (candidate / "labels.npy").is_file()) \
                and set(present) & set(suite.corruptions):
            return candidate
    return None


def _clean(suite: Suite, root: Path) -> Dataset | None:
    if suite.open_clean is None:
        return None
    for candidate in _candidates(root, suite.clean_folder_names):
        try:
            return suite.open_clean(candidate)
        except DatasetNotFoundError:
            continue
    return None


def _not_found(suite: Suite, data: Any, source: str) -> DatasetNotFoundError:
    forms = {"prerendered": [suite.layout], "onthefly": [suite.clean_layout]}.get(source,
                                                                                   [suite.layout, suite.clean_layout])
    lines = [f"suite {suite.name}: no {' or '.join(forms)} data at {str(data)!r}."]
    for name in forms:
        layout = LAYOUTS[name]
        lines.append(f"- {name} (pre-rendered)" if name == suite.layout else f"- {name} (clean, corrupted on the fly)")
        lines.append(f"  layout: {layout.tree}\n  get it: {layout.source}")
    return DatasetNotFoundError("\n".join(lines))


def open_image_suite(suite: Suite, data: Any, clean_data: Any, source: str) -> SuiteData:
    """Find an image suite's data under ``data`` (a path, or a clean Dataset to corrupt on the fly)."""
    if isinstance(data, Dataset):
        if source == "prerendered":
            raise ValueError("a Dataset object can only be corrupted on the fly (source='onthefly')")
        fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else None
        return _onthefly(suite, data, {"clean": type(data).__name__, "images": len(data), "fingerprint": fingerprint})
    root = Path(data).expanduser().resolve() if data is not None else None
    clean = None
    if clean_data is not None:
        clean = clean_data if isinstance(clean_data, Dataset) else suite.open_clean(Path(clean_data).expanduser())
    if root is not None and source in ("auto", "prerendered"):
        found = _prerendered_root(suite, root)
        if found is not None:
            if clean is None:
                clean = _clean(suite, root)
            return _prerendered(suite, found, clean)
    if root is not None and source in ("auto", "onthefly"):
        clean = clean if clean is not None else _clean(suite, root)
        if clean is not None:
            return _onthefly(suite, clean, {"clean": str(root), "images": len(clean)})
    raise _not_found(suite, data, source)


def _onthefly(suite: Suite, clean: Dataset, identity: dict[str, Any]) -> SuiteData:
    from ..version import __version__
    return SuiteData(suite, "onthefly", cell=lambda corruption, severity, seed: clean, clean=clean,
                     identity={"source": "onthefly", "corruption_engine": __version__, **identity},
                     transform=lambda corruption, severity, seed: CorruptBatch(corruption, severity, seed))


def _prerendered(suite: Suite, root: Path, clean: Dataset | None) -> SuiteData:
    classes = getattr(clean, "classes", None)
    if suite.layout.startswith("cifar"):
        def cell(corruption: str, severity: int, seed: int) -> Dataset:
            return CorruptedArrays(root, corruption, severity, suite.layout, classes)
        present = npy_corruptions(root)
    else:
        if classes is None:  # class order from the folders of the first corruption present
            first = next(c for c in suite.corruptions if (root / c).is_dir())
            classes = sorted(d.name for d in severity_folder(root, first, 1, suite.layout).iterdir() if d.is_dir())

        def cell(corruption: str, severity: int, seed: int) -> Dataset:
            return CorruptedFolder(root, corruption, severity, suite.layout, classes)
        present = folder_corruptions(root)
    return SuiteData(suite, "prerendered", cell=cell, clean=clean,
                     identity={"source": "prerendered", "path": str(root), "present": sorted(present),
                               "clean_images": len(clean) if clean is not None else 0})


def _open_video(suite: Suite, data: Any, clean_data: Any, source: str) -> SuiteData:
    try:
        video = importlib.import_module("sparse_zoo.data.video")
        return video.open_suite(suite, data, clean_data, source)
    except (ModuleNotFoundError, AttributeError) as e:
        raise ValueError(f"suite {suite.name} needs sparse_zoo.data.video.open_suite, "
                         f"which this installation lacks ({e})") from None


# --- the suites -----------------------------------------------------------------------------

_SMALL = "{px} px images as stored (no resize, no crop); normalised with the model's mean/std."
_IMAGENET = ("pre-rendered: the stored 224 px images as they are (no second resize-256/crop-224); "
             "clean val and on-the-fly: resize 256, centre-crop 224, then corrupt; model's mean/std.")

for _suite in (
    Suite("cifar10-c", tuple(corruptions.names("cifar-c")), 10, 32, "cifar10-c", "cifar10",
          lambda root: CIFAR(root, 10), ("CIFAR-10-C",), ("cifar10", "cifar-10", "CIFAR-10"),
          preprocessing=_SMALL.format(px=32)),
    Suite("cifar100-c", tuple(corruptions.names("cifar-c")), 100, 32, "cifar100-c", "cifar100",
          lambda root: CIFAR(root, 100), ("CIFAR-100-C",), ("cifar100", "cifar-100", "CIFAR-100"),
          preprocessing=_SMALL.format(px=32)),
    Suite("tinyimagenet-c", tuple(corruptions.names("imagenet-c")), 200, 64, "tinyimagenet-c", "tinyimagenet",
          lambda root: TinyImageNet(root, "val"), ("Tiny-ImageNet-C",), ("tiny-imagenet-200",),
          preprocessing=_SMALL.format(px=64)),
    Suite("imagenet-c", tuple(corruptions.names("imagenet-c")), 1000, 224, "imagenet-c", "imagenet",
          ImageNetVal, ("ImageNet-C", "imagenet-c"), ("imagenet", "ImageNet"), reference="alexnet",
          preprocessing=_IMAGENET),
    Suite("imagenet-c-bar", tuple(corruptions.names("imagenet-c-bar")), 1000, 224, "imagenet-c-bar", "imagenet",
          ImageNetVal, ("ImageNet-C-bar", "imagenet-c-bar"), ("imagenet", "ImageNet"), preprocessing=_IMAGENET),
    Suite("imagenet-3dcc", tuple(corruptions.names("3dcc")), 1000, 224, "imagenet-3dcc", "imagenet",
          ImageNetVal, ("ImageNet-3DCC", "imagenet-3dcc"), ("imagenet", "ImageNet"), preprocessing=_IMAGENET),
    Suite("ucf101-c", tuple(corruptions.names("video")), 101, 112, "ucf101-c", "ucf101", None,
          severities=(1, 2, 3, 4), opener=_open_video,
          preprocessing="clips from sparse_zoo.data.video (the paper evaluates severities 1-4)."),
):
    register_suite(_suite)
