"""``sparse-zoo corrupt``: write a corrupted copy of a dataset in the reference layouts.

- ``npy`` (CIFAR-10-C): ``<corruption>.npy`` holds the N images five times, severities
  1..5 stacked in blocks of N, as uint8 (5N, H, W, 3); ``labels.npy`` the 5N labels.
- ``folder`` (ImageNet-C, Tiny-ImageNet-C): ``<corruption>/<severity>/<class>/<name>``,
  JPEG at quality 85 (``optimize=True``) like ``make_imagenet_c.py``.

The data is read once; every batch is corrupted with every (corruption, severity).
Sample ids are dataset indices, so the output does not depend on the batch size or
the device. Files appear only when complete (written under a temporary name, then
renamed); existing outputs are kept unless ``--overwrite``, so a stopped run resumes.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

JPEG_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class Source:
    """How to open an input dataset, and the output format its reference uses."""

    open: Callable[[argparse.Namespace], object]
    format: str


def _data():
    from .. import data
    return data


SOURCES: dict[str, Source] = {
    "folder": Source(lambda a: _data().ImageFolder(a.input, size=a.size, crop=a.crop), "folder"),
    "cifar10": Source(lambda a: _data().CIFAR(a.input, 10), "npy"),
    "cifar100": Source(lambda a: _data().CIFAR(a.input, 100), "npy"),
    "tinyimagenet": Source(lambda a: _data().TinyImageNet(a.input, "val"), "folder"),
    "imagenet-val": Source(lambda a: _data().ImageNetVal(a.input, a.size or 256, a.crop or 224), "folder"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the clean dataset (see --dataset)")
    parser.add_argument("output", type=Path, help="folder to write the corrupted copy to")
    parser.add_argument("--dataset", choices=sorted(SOURCES), default="folder",
                        help="input kind: 'folder' is <class>/<image> (default), the others the datasets' layouts")
    parser.add_argument("--format", choices=("npy", "folder"),
                        help="output layout (default: npy for CIFAR, folder otherwise)")
    parser.add_argument("--suite", default="cifar-c", help="corruption suite (default: the 19 of CIFAR-10-C)")
    parser.add_argument("--corruptions", nargs="+", help="corruption names (default: the whole suite)")
    parser.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, help="parameter table to use (default: closest to the image size)")
    parser.add_argument("--size", type=int, help="resize the shorter side of folder images to this")
    parser.add_argument("--crop", type=int, help="centre-crop folder images to this square")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality of the folder layout")
    parser.add_argument("--overwrite", action="store_true", help="rewrite outputs that already exist")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the corruptions that gain from it (gaussian, impulse and speckle noise, "
                             "brightness, contrast, saturate): faster on large sets, a few seconds per corruption, "
                             "severity and batch shape to start; needs a C++ compiler on CPU")


def _check(args: argparse.Namespace) -> list[str]:
    """Validate everything before anything is written; returns the corruption names."""
    from . import registry
    names = args.corruptions or registry.names(args.suite)
    for name in names:
        registry.get(name)
    bad = [s for s in args.severities if s not in (1, 2, 3, 4, 5)]
    if bad or len(set(args.severities)) != len(args.severities):
        raise ValueError(f"--severities must be distinct integers from 1 to 5, got {args.severities}")
    if args.format == "npy" and sorted(args.severities) != [1, 2, 3, 4, 5]:
        raise ValueError("the npy layout stacks all five severities; drop --severities or use --format folder")
    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be from 1 to 100, got {args.quality}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    if args.output.resolve() == args.input.resolve():
        raise ValueError("output must differ from the input folder")
    if args.compile:
        registry.check_compile(args.device)
    return names


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .registry import apply
    source = SOURCES[args.dataset]
    args.format = args.format or source.format
    names = _check(args)
    dataset = source.open(args)
    writer = (NpyWriter if args.format == "npy" else FolderWriter)(args, dataset)
    todo = [(n, s) for n in names for s in args.severities if not writer.done(n, s)]
    if not todo:
        print(f"{args.output}: every output exists already (--overwrite rewrites them)")
        return 0
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, shuffle=False,
                        collate_fn=_collate)
    start = 0
    with tqdm(total=len(dataset) * len(todo), unit="img", desc="corrupt") as bar:
        for images, labels in loader:
            ids = torch.arange(start, start + len(images))
            x = images.to(args.device)
            for name, severity in todo:
                out = apply(x, name, severity, seed=args.seed, sample_ids=ids, resolution=args.resolution,
                            compile=args.compile)
                writer.write(name, severity, start, out.cpu(), labels)
                bar.update(len(images))
            start += len(images)
    writer.close()
    print(f"wrote {len(todo)} (corruption, severity) sets of {len(dataset)} images to {args.output}")
    return 0


def _collate(batch):
    """Stack (image, label) pairs; images of different sizes get a ValueError naming the fix."""
    import torch
    sizes = {tuple(image.shape) for image, _ in batch}
    if len(sizes) > 1:
        raise ValueError(f"images of different sizes {sorted(sizes)[:3]}: pass --size and --crop to make them "
                         f"one size (--size 256 --crop 224 is ImageNet-C's preprocessing)")
    return torch.stack([image for image, _ in batch]), torch.tensor([label for _, label in batch])


class NpyWriter:
    """CIFAR-10-C layout: one memory-mapped (5N, H, W, 3) uint8 array per corruption, renamed when full."""

    def __init__(self, args: argparse.Namespace, dataset):
        self.root, self.overwrite = args.output, args.overwrite
        self.n = len(dataset)
        image, _ = dataset[0]
        self.shape = (5 * self.n, image.shape[1], image.shape[2], image.shape[0])
        self.arrays: dict[str, np.memmap] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        self.labels = np.empty(self.n, dtype=np.int64)

    def done(self, name: str, severity: int) -> bool:
        return (self.root / f"{name}.npy").exists() and not self.overwrite

    def write(self, name: str, severity: int, start: int, images, labels) -> None:
        if tuple(images.shape[2:]) != self.shape[1:3]:
            raise ValueError(f"the npy layout needs images of one size; got {tuple(images.shape[2:])} after "
                             f"{self.shape[1:3]} (use --size/--crop or --format folder)")
        if name not in self.arrays:
            self.arrays[name] = np.lib.format.open_memmap(self.root / f"{name}.npy.partial", mode="w+",
                                                          dtype=np.uint8, shape=self.shape)
        block = (severity - 1) * self.n + start
        self.arrays[name][block:block + len(images)] = images.permute(0, 2, 3, 1).numpy()
        self.labels[start:start + len(labels)] = labels.numpy()

    def close(self) -> None:
        for name, array in self.arrays.items():
            array.flush()
            os.replace(self.root / f"{name}.npy.partial", self.root / f"{name}.npy")
        self.arrays.clear()
        labels = np.tile(self.labels, 5)
        labels = labels.astype(np.uint8) if labels.max() < 256 else labels
        with open(self.root / "labels.npy.partial", "wb") as f:
            np.save(f, labels)
        os.replace(self.root / "labels.npy.partial", self.root / "labels.npy")


class FolderWriter:
    """ImageNet-C layout: ``<corruption>/<severity>/<class>/<file>`` as JPEG, each file renamed into place."""

    def __init__(self, args: argparse.Namespace, dataset):
        self.root, self.overwrite, self.quality = args.output, args.overwrite, args.quality
        self.classes = list(dataset.classes)
        samples = getattr(dataset, "samples", None)
        self.files = [self._name(Path(p)) for p, _ in samples] if samples else \
            [f"{i:08d}.JPEG" for i in range(len(dataset))]

    @staticmethod
    def _name(path: Path) -> str:
        return path.name if path.suffix.lower() in JPEG_SUFFIXES else path.stem + ".JPEG"

    def done(self, name: str, severity: int) -> bool:
        """A severity folder is complete once its ``.complete`` marker is written after its last image."""
        return (self.root / name / str(severity) / ".complete").exists() and not self.overwrite

    def write(self, name: str, severity: int, start: int, images, labels) -> None:
        from PIL import Image
        folder = self.root / name / str(severity)
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            target = folder / self.classes[label] / self.files[start + i]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".partial")
            Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()).save(tmp, "JPEG", quality=self.quality,
                                                                              optimize=True)
            os.replace(tmp, target)
        if start + len(images) == len(self.files):
            (folder / ".complete").touch()

    def close(self) -> None:
        pass
