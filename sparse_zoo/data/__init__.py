"""Datasets of the benchmark: clean sets, pre-rendered corrupted sets and on-the-fly corruption.

Image datasets yield ``(uint8 (C, H, W) tensor, label)``, un-normalised (see
:mod:`.images`). ``UCF101`` and ``VideoFolder`` live in :mod:`.video` and are imported
on first use, so that importing this package stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

from .corrupted import CorruptedArrays, CorruptedFolder, folder_corruptions, npy_corruptions, severity_folder
from .images import CIFAR, CIFAR10_CLASSES, ArrayDataset, FileDataset, ImageFolder, ImageNetVal, TinyImageNet, \
    load_image
from .layouts import LAYOUTS, DatasetNotFoundError, Layout, missing
from .loader import index_batches
from .onthefly import CorruptBatch, OnTheFlyCorrupted

_VIDEO = ("UCF101", "VideoFolder")

__all__ = ["ArrayDataset", "CIFAR", "CIFAR10_CLASSES", "CorruptBatch", "CorruptedArrays", "CorruptedFolder",
           "DatasetNotFoundError", "FileDataset", "ImageFolder", "ImageNetVal", "LAYOUTS", "Layout",
           "OnTheFlyCorrupted", "TinyImageNet", "folder_corruptions", "index_batches", "load_image", "missing",
           "npy_corruptions", "severity_folder", *_VIDEO]


def __getattr__(name: str) -> Any:
    if name in _VIDEO:
        return getattr(importlib.import_module(".video", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
