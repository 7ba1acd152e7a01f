"""Clean image datasets: image folders, CIFAR-10/100, Tiny-ImageNet and ImageNet val.

Every dataset yields ``(image, label)`` with ``image`` a uint8 (C, H, W) tensor that is
not normalised: the harness corrupts pixels first and applies the model's own
mean/std last. Datasets whose images sit in one array (CIFAR, pre-rendered
CIFAR-C, the package's demo subset) are :class:`ArrayDataset`\\ s, which also give
whole batches by fancy indexing (``get_batch``) so the evaluation loop skips
per-image collation.
"""
from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .layouts import missing

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


class ArrayDataset(Dataset):
    """Images in one (N, H, W, C) uint8 array (a memory map is fine) with integer labels."""

    def __init__(self, images: np.ndarray, labels: Sequence[int] | np.ndarray, classes: Sequence[str] | None = None):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be an (N, H, W, C) uint8 array, got {images.dtype} {images.shape}")
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.classes = list(classes) if classes is not None else [str(i) for i in range(int(labels.max()) + 1)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(self.images[index])).permute(2, 0, 1)
        return image, int(self.labels[index])

    def fingerprint(self) -> str:
        """A hash of the images and labels: identifies the data in a results config."""
        h = hashlib.blake2b(digest_size=12)
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(self.labels.tobytes())
        return h.hexdigest()

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) uint8 images and (B,) labels of ``indices`` in one copy."""
        indices = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self.images[indices])).permute(0, 3, 1, 2)
        return images, torch.from_numpy(self.labels[indices])


def load_image(path: str | Path, size: int | None = None, crop: int | None = None) -> torch.Tensor:
    """An RGB image as a uint8 (3, H, W) tensor; ``size`` resizes the shorter side, ``crop`` centre-crops."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:  # torchvision's Resize(size): shorter side to size, the longer truncated
            w, h = im.size
            im = im.resize((size, int(size * h / w)) if w <= h else (int(size * w / h), size), Image.BILINEAR)
        if crop is not None:
            w, h = im.size
            left, top = int(round((w - crop) / 2.0)), int(round((h - crop) / 2.0))
            im = im.crop((left, top, left + crop, top + crop))
        return torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())


class FileDataset(Dataset):
    """Image files with labels; ``size``/``crop`` are the resize/centre-crop of the suite's preprocessing."""

    def __init__(self, samples: Sequence[tuple[Path, int]], classes: Sequence[str], size: int | None = None,
                 crop: int | None = None):
        self.samples, self.classes, self.size, self.crop = list(samples), list(classes), size, crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return load_image(path, self.size, self.crop), label


class ImageFolder(FileDataset):
    """``root/<class>/*.<image>``, classes sorted by name like torchvision's ImageFolder.

    ``classes`` fixes the class list and order (a corrupted copy must use its clean
    set's classes; a folder may lack some of them); ``layout`` names the dataset
    whose layout an error message shows.
    """

    def __init__(self, root: str | Path, classes: Sequence[str] | None = None, size: int | None = None,
                 crop: int | None = None, layout: str = "image-folder"):
        root = Path(root)
        if not root.is_dir():
            raise missing(layout, root, "not a directory")
        found = sorted(d.name for d in root.iterdir() if d.is_dir())
        if not found:
            raise missing(layout, root, "no class folders")
        classes = list(classes) if classes is not None else found
        extra = sorted(set(found) - set(classes))
        if extra:
            raise missing(layout, root, f"folders {extra[:5]} are not among the {len(classes)} expected classes")
        index = {c: i for i, c in enumerate(classes)}
        samples = [(p, index[c]) for c in found for p in _images_in(root / c)]
        if not samples:
            raise missing(layout, root, "no images in the class folders")
        super().__init__(samples, classes, size, crop)
        self.root = root


# numpy's array-rebuild function, wherever this numpy version keeps it (numpy.core or numpy._core)
_RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches without running arbitrary code: only numpy arrays are rebuilt."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
        return getattr(np, name) if module == "numpy" else _RECONSTRUCT


def _read_batch(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


_CIFAR_FORMAT = {  # variant -> (folder, train files, test files, label key, meta file, class key)
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
         "batches.meta", "label_names"),
    100: ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names"),
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def CIFAR(root: str | Path, variant: int = 10, train: bool = False) -> Dataset:
    """CIFAR-10/100 from torchvision's pickled batches, or from an image folder ``root/{train,test}/<class>``.

    The folder form (like ``../shared/data/cifar10``) must use the classes of the
    dataset in label order (CIFAR-10's are alphabetical, so sorted folder names fit).
    """
    if variant not in _CIFAR_FORMAT:
        raise ValueError(f"CIFAR variant must be 10 or 100, got {variant!r}")
    root = Path(root)
    folder, train_files, test_files, label_key, meta, class_key = _CIFAR_FORMAT[variant]
    split = "train" if train else "test"
    if (root / folder).is_dir():
        parts = [_read_batch(root / folder / f) for f in (train_files if train else test_files)]
        images = np.concatenate([p["data"] for p in parts]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.concatenate([np.asarray(p[label_key]) for p in parts])
        classes = _read_batch(root / folder / meta)[class_key] if (root / folder / meta).exists() else None
        return ArrayDataset(np.ascontiguousarray(images), labels, classes)
    for candidate in (root / split, root):
        if candidate.is_dir() and any(d.is_dir() and d.name not in ("train", "test") for d in candidate.iterdir()):
            ds = ImageFolder(candidate, layout=f"cifar{variant}")
            if len(ds.classes) != variant:
                raise missing(f"cifar{variant}", candidate, f"{len(ds.classes)} class folders, expected {variant}")
            return ds
    raise missing(f"cifar{variant}", root)


def TinyImageNet(root: str | Path, split: str = "val") -> Dataset:
    """Tiny-ImageNet-200 in its release layout (64 px); classes are the sorted wnids."""
    root = Path(root)
    if not (root / "wnids.txt").is_file():
        raise missing("tinyimagenet", root, "wnids.txt not found")
    classes = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
    if split == "train":
        samples = [(p, y) for y, c in enumerate(classes) for p in _images_in(root / "train" / c / "images")]
    elif split == "val":
        annotations = root / "val" / "val_annotations.txt"
        if not annotations.is_file():
            return ImageFolder(root / "val", classes=classes, layout="tinyimagenet")
        index = {c: i for i, c in enumerate(classes)}
        rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
        samples = sorted((root / "val" / "images" / r[0], index[r[1]]) for r in rows)
    else:
        raise ValueError(f"Tiny-ImageNet split must be 'train' or 'val', got {split!r}")
    if not samples:
        raise missing("tinyimagenet", root, f"no {split} images")
    return FileDataset(samples, classes)


def ImageNetVal(root: str | Path, size: int = 256, crop: int = 224) -> Dataset:
    """ImageNet validation images sorted into wnid folders, resized to ``size`` and centre-cropped to ``crop``.

    256 -> 224 is the preprocessing ImageNet-C applied before corrupting, so clean
    accuracy and on-the-fly corruption see the same pixels as the pre-rendered set.
    """
    root = Path(root)
    folder = root / "val" if (root / "val").is_dir() else root
    return ImageFolder(folder, size=size, crop=crop, layout="imagenet")
