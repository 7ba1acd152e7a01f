"""Pre-rendered corrupted datasets in their official layouts.

- CIFAR-10-C / CIFAR-100-C: ``<corruption>.npy`` holds 50,000 images, severities 1..5
  in blocks of 10,000 that follow the clean test set's order, and ``labels.npy``
  the matching labels. Arrays are memory-mapped, so a cell reads only its block.
- Tiny-ImageNet-C, ImageNet-C, ImageNet-C-bar, ImageNet-3DCC:
  ``<corruption>/<severity>/<class>/*``. The images are stored at the size the
  model sees (64 or 224 px): they are read as they are, never resized or cropped
  again. ImageNet-C-bar's release names its severity folders by the reference's
  float parameters; when ``<severity>`` 1..5 is absent, the five numeric folders
  are taken in increasing order as severities 1..5.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .images import ArrayDataset, ImageFolder
from .layouts import missing

SEVERITIES = (1, 2, 3, 4, 5)


def _check_severity(severity: int) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")


def npy_corruptions(root: str | Path) -> list[str]:
    """The corruptions present in a CIFAR-C style folder (every ``*.npy`` but ``labels.npy``)."""
    root = Path(root)
    return sorted(p.stem for p in root.glob("*.npy") if p.stem != "labels") if root.is_dir() else []


def CorruptedArrays(root: str | Path, corruption: str, severity: int, layout: str = "cifar10-c",
                    classes: Sequence[str] | None = None) -> ArrayDataset:
    """One (corruption, severity) block of a CIFAR-10-C / CIFAR-100-C folder."""
    _check_severity(severity)
    root = Path(root)
    path, labels_path = root / f"{corruption}.npy", root / "labels.npy"
    for p in (path, labels_path):
        if not p.is_file():
            raise missing(layout, root, f"{p.name} not found")
    images = np.load(path, mmap_mode="r")
    labels = np.load(labels_path, mmap_mode="r")
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) % len(SEVERITIES):
        raise missing(layout, root, f"{path.name} holds {images.dtype} {images.shape}, expected "
                                    f"(5 x N, H, W, 3) uint8")
    n = len(images) // len(SEVERITIES)
    if len(labels) not in (n, len(images)):
        raise missing(layout, root, f"labels.npy has {len(labels)} labels for {len(images)} images")
    block = slice((severity - 1) * n, severity * n)
    return ArrayDataset(images[block], labels[block] if len(labels) == len(images) else labels, classes)


def severity_folder(root: Path, corruption: str, severity: int, layout: str) -> Path:
    """``root/<corruption>/<severity>``, or the severity-th numeric folder (ImageNet-C-bar's float names)."""
    _check_severity(severity)
    base = root / corruption
    if (base / str(severity)).is_dir():
        return base / str(severity)
    if base.is_dir():
        numeric = []
        for d in base.iterdir():
            try:
                numeric.append((float(d.name), d))
            except ValueError:
                continue
        if len(numeric) == len(SEVERITIES) and all(d.is_dir() for _, d in numeric):
            return sorted(numeric)[severity - 1][1]
    raise missing(layout, root, f"{corruption}/{severity}/ not found")


def CorruptedFolder(root: str | Path, corruption: str, severity: int, layout: str = "imagenet-c",
                    classes: Sequence[str] | None = None) -> Dataset:
    """One (corruption, severity) folder of an ImageNet-C style tree, read at its stored size."""
    root = Path(root)
    return ImageFolder(severity_folder(root, corruption, severity, layout), classes=classes, layout=layout)


def folder_corruptions(root: str | Path) -> list[str]:
    """The corruption folders present in an ImageNet-C style tree."""
    root = Path(root)
    return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
