"""Training data: datasets by recipe, a resumable epoch sampler, per-sample seeded augmentation.

Reproducible resume needs the data order and every augmentation draw to be a pure
function of (seed, epoch, sample index): :class:`EpochSampler` draws each epoch's
order from (seed, epoch) and :class:`SeededSamples` seeds the transform of each
sample from (seed, epoch, index), so results do not depend on the number of loader
workers, on where an epoch was interrupted, or on the number of processes.
"""
from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sparse_zoo import data

from .recipes import Recipe

EVAL_SPLITS = ("test", "val")

DatasetFn = Callable[[Recipe, Path, str, dict[str, Any]], Dataset]
DATASETS: dict[str, DatasetFn] = {}


def register_dataset(*names: str) -> Callable[[DatasetFn], DatasetFn]:
    """Register ``fn(recipe, root, split, data_config) -> Dataset`` for a recipe's ``dataset``.

    ``split`` is 'train' or 'eval'; the dataset yields un-normalised ``(sample, target)``
    (uint8 (C, H, W) images from :mod:`sparse_zoo.data`) and has a ``classes`` list.
    Missing data raises :class:`sparse_zoo.data.DatasetNotFoundError` with the layout.
    """
    def wrap(fn: DatasetFn) -> DatasetFn:
        for name in names:
            DATASETS[name] = fn
        return fn
    return wrap


@register_dataset("cifar10", "cifar100")
def cifar(recipe: Recipe, root: Path, split: str, data_config: dict[str, Any]) -> Dataset:
    return data.CIFAR(root, int(recipe.dataset.removeprefix("cifar")), train=split == "train")


@register_dataset("tiny-imagenet")
def tiny_imagenet(recipe: Recipe, root: Path, split: str, data_config: dict[str, Any]) -> Dataset:
    return data.TinyImageNet(root, "train" if split == "train" else "val")


def _eval_geometry(data_config: dict[str, Any]) -> dict[str, int]:
    """Resize the shorter side to input / crop_pct and centre-crop (ImageNet's 256 -> 224)."""
    crop = int(data_config["input_size"][-1])
    return {"size": int(round(crop / data_config["crop_pct"])), "crop": crop}


@register_dataset("imagenet")
def imagenet(recipe: Recipe, root: Path, split: str, data_config: dict[str, Any]) -> Dataset:
    """ImageNet as ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG."""
    if split == "train":
        return data.ImageFolder(root / "train", layout="imagenet")
    return data.ImageNetVal(root, **_eval_geometry(data_config))


@register_dataset("folder")
def image_folder(recipe: Recipe, root: Path, split: str, data_config: dict[str, Any]) -> Dataset:
    """Any ROOT/train/<class>/* with ROOT/test/<class>/* or ROOT/val/<class>/*; evaluation
    images are resized and centre-cropped unless the recipe's augmentation is 'cifar'."""
    if split == "train":
        return data.ImageFolder(root / "train")
    evaldir = next((root / n for n in EVAL_SPLITS if (root / n).is_dir()), root / EVAL_SPLITS[0])
    geometry = {} if recipe.augmentation == "cifar" else _eval_geometry(data_config)
    return data.ImageFolder(evaldir, classes=data.ImageFolder(root / "train").classes, **geometry)


@register_dataset("ucf101")
def ucf101(recipe: Recipe, root: Path, split: str, data_config: dict[str, Any]) -> Dataset:
    """UCF101 (split 1) or ROOT/{train,test}/<class>/<video>; clips are decoded by the 'video'
    transform, so their random start, crop and flip use the per-sample seed."""
    from sparse_zoo.data import video
    return video.DeferredClips(video.open_videos(root, train=split == "train", **video.recipe_geometry(data_config)))


def build_datasets(recipe: Recipe, root: str | Path, data_config: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """The untransformed train and eval datasets, checked before any training starts."""
    root = Path(root)
    if recipe.dataset not in DATASETS:
        close = difflib.get_close_matches(recipe.dataset, DATASETS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown dataset {recipe.dataset!r}{hint}; valid: {', '.join(sorted(DATASETS))}")
    try:
        train, evalset = (DATASETS[recipe.dataset](recipe, root, s, data_config) for s in ("train", "eval"))
    except data.DatasetNotFoundError as err:
        raise ValueError(f"--data {str(root)!r} does not hold {recipe.dataset} in a known layout:\n{err}") from None
    if list(train.classes) != list(evalset.classes):
        raise ValueError(f"data path {str(root)!r}: the train and evaluation splits have different classes")
    if recipe.num_classes is not None and len(train.classes) != recipe.num_classes:
        raise ValueError(f"data path {str(root)!r} has {len(train.classes)} classes but the recipe sets "
                         f"num_classes={recipe.num_classes}")
    if len(train) < recipe.batch_size:
        raise ValueError(f"the training split has {len(train)} samples, fewer than one batch of {recipe.batch_size}")
    return train, evalset


def mix_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys (SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class SeededSamples(Dataset):
    """Applies ``transform`` to ``base[index]`` with the torch, numpy and Python RNGs
    seeded from (seed, epoch, index); the caller's RNG states are left untouched.
    Keys are ``(epoch, index)`` pairs as yielded by :class:`EpochSampler`."""

    def __init__(self, base: Dataset, transform: Callable, seed: int):
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, int]:
        epoch, index = key
        sample, target = self.base[index]
        seed = mix_seed(self.seed, epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                sample = self.transform(sample)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
        return sample, target


class EpochSampler(Sampler):
    """The (epoch, index) keys one process reads in one epoch.

    The epoch's order is a permutation drawn from (seed, epoch); its first ``limit``
    samples (all by default) are cut into global batches of ``global_batch`` (the
    incomplete last batch is dropped) and each process takes its contiguous
    ``global_batch / world`` slice of every batch. ``skip`` batches are left out at
    the start, to resume inside an epoch.
    """

    def __init__(self, size: int, global_batch: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 limit: int | None = None, skip: int = 0):
        self.size, self.global_batch, self.seed, self.epoch = size, global_batch, seed, epoch
        self.rank, self.world, self.skip = rank, world, skip
        self.local_batch = global_batch // world
        self.steps = min(limit or size, size) // global_batch

    def __len__(self) -> int:
        return (self.steps - self.skip) * self.local_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(mix_seed(self.seed, self.epoch)))
        for step in range(self.skip, self.steps):
            start = step * self.global_batch + self.rank * self.local_batch
            for index in order[start:start + self.local_batch].tolist():
                yield self.epoch, index


def eval_indices(size: int, limit: int | None, *, rank: int = 0, world: int = 1) -> list[int]:
    """This process's share of the evaluation samples: a fixed random subset of ``limit``
    samples (all by default), the same for every run, split round-robin over processes."""
    if limit is None or limit >= size:
        chosen = list(range(size))
    else:
        chosen = sorted(torch.randperm(size, generator=torch.Generator().manual_seed(0))[:limit].tolist())
    return chosen[rank::world]
