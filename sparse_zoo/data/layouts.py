"""Expected on-disk layouts of every dataset the package reads, and where to get them.

One table instead of messages scattered over the loaders: a loader that finds no
data raises :class:`DatasetNotFoundError` built from the entry of its dataset, so
every "missing data" message shows the layout it looked for and a source.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    name: str
    tree: str
    source: str


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (
    Layout("cifar10",
           "ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch} (torchvision's CIFAR10 format)\n"
           "  or an image folder ROOT/{train,test}/<class>/*.jpg|png (classes in CIFAR-10 label order)",
           "https://www.cs.toronto.edu/~kriz/cifar.html, or torchvision.datasets.CIFAR10(ROOT, download=True)"),
    Layout("cifar100",
           "ROOT/cifar-100-python/{train,test,meta} (torchvision's CIFAR100 format)\n"
           "  or an image folder ROOT/{train,test}/<class>/*.jpg|png",
           "https://www.cs.toronto.edu/~kriz/cifar.html, or torchvision.datasets.CIFAR100(ROOT, download=True)"),
    Layout("cifar10-c",
           "ROOT/<corruption>.npy (50000 x 32 x 32 x 3 uint8: severities 1..5, 10000 images each) and "
           "ROOT/labels.npy",
           "CIFAR-10-C, https://zenodo.org/record/2535967 (or render it: sparse-zoo corrupt)"),
    Layout("cifar100-c",
           "ROOT/<corruption>.npy (50000 x 32 x 32 x 3 uint8: severities 1..5, 10000 images each) and "
           "ROOT/labels.npy",
           "CIFAR-100-C, https://zenodo.org/record/3555552 (or render it: sparse-zoo corrupt)"),
    Layout("tinyimagenet",
           "ROOT/wnids.txt, ROOT/train/<wnid>/images/*.JPEG, ROOT/val/images/*.JPEG and "
           "ROOT/val/val_annotations.txt (or ROOT/val/<wnid>/*.JPEG)",
           "http://cs231n.stanford.edu/tiny-imagenet-200.zip"),
    Layout("tinyimagenet-c",
           "ROOT/<corruption>/<severity 1..5>/<wnid>/*.JPEG (64 px)",
           "Tiny-ImageNet-C, https://zenodo.org/record/2536630 (or render it: sparse-zoo corrupt)"),
    Layout("imagenet",
           "ROOT/<wnid>/*.JPEG: the 50,000 validation images sorted into 1000 class folders (or ROOT/val/...)",
           "https://image-net.org (ILSVRC2012 validation set; sort it into class folders, e.g. with "
           "the widely used valprep.sh)"),
    Layout("imagenet-c",
           "ROOT/<corruption>/<severity 1..5>/<wnid>/*.JPEG (224 px, already resized and cropped)",
           "ImageNet-C, https://zenodo.org/record/2235448 (or render it: sparse-zoo corrupt)"),
    Layout("imagenet-c-bar",
           "ROOT/<corruption>/<severity 1..5, or the reference's 5 float severities>/<wnid>/*.JPEG (224 px)",
           "ImageNet-C-bar, https://github.com/facebookresearch/augmentation-corruption "
           "(or render it: sparse-zoo corrupt)"),
    Layout("imagenet-3dcc",
           "ROOT/<corruption>/<severity 1..5>/<wnid>/*.jpg (224 px)",
           "ImageNet-3DCC, https://github.com/EPFL-VILAB/3DCommonCorruptions (or render it: sparse-zoo corrupt)"),
    Layout("image-folder",
           "ROOT/<class>/*.{jpg,jpeg,png,bmp,webp} (classes sorted by name)",
           "any image classification set in torchvision's ImageFolder layout"),
)}


class DatasetNotFoundError(FileNotFoundError):
    """No data in the expected layout; the message shows the layout and where to get it."""


def missing(layout: str | Layout, root: str | Path, problem: str = "") -> DatasetNotFoundError:
    """The error for a dataset not found (or not in its layout) at ``root``."""
    entry = LAYOUTS[layout] if isinstance(layout, str) else layout
    what = f": {problem}" if problem else ""
    return DatasetNotFoundError(
        f"no {entry.name} data at {str(root)!r}{what}.\n"
        f"Expected layout:\n  {entry.tree}\nWhere to get it: {entry.source}")
