"""Training and evaluation transforms, one entry per augmentation family.

``TRANSFORMS`` maps a recipe's ``augmentation`` to ``fn(recipe, data_config, train)``
returning a callable on one sample as the datasets of :mod:`sparse_zoo.data` give it
(a uint8 (C, H, W) tensor for images). ``data_config`` is timm's resolved data config
of the model (input_size, mean, std, interpolation, crop_pct). Evaluation geometry
(resize, centre crop) is the dataset's job, as in the benchmark harness, so every
evaluation transform only scales and normalises. The video engineer registers
``"video"`` with :func:`register_transforms`; the trainer needs nothing else.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import torch
from timm.data import create_transform
from torchvision import transforms as T

from .recipes import Recipe

TransformFn = Callable[[Recipe, dict[str, Any], bool], Callable]
TRANSFORMS: dict[str, TransformFn] = {}


def register_transforms(*names: str) -> Callable[[TransformFn], TransformFn]:
    def wrap(fn: TransformFn) -> TransformFn:
        for name in names:
            TRANSFORMS[name] = fn
        return fn
    return wrap


def normalize(data_config: dict[str, Any]) -> list[Callable]:
    """uint8 tensor -> float in [0, 1] -> the model's mean/std."""
    return [T.ConvertImageDtype(torch.float32), T.Normalize(data_config["mean"], data_config["std"])]


@register_transforms("cifar", "tiny-imagenet")
def crop_flip(recipe: Recipe, data_config: dict[str, Any], train: bool) -> Callable:
    """The standard small-image augmentation: a random crop after ``crop_padding`` px of
    zero padding (4 for CIFAR's 32 px, 8 for Tiny-ImageNet's 64 px) and a horizontal flip."""
    if not train:
        return T.Compose(normalize(data_config))
    size = tuple(data_config["input_size"][-2:])
    return T.Compose([T.RandomCrop(size, padding=recipe.crop_padding), T.RandomHorizontalFlip(),
                      *normalize(data_config)])


@register_transforms("imagenet")
def imagenet(recipe: Recipe, data_config: dict[str, Any], train: bool) -> Callable:
    """RandomResizedCrop + flip (timm's), plus RandAugment and random erasing when the
    recipe sets them (DeiT)."""
    if not train:
        return T.Compose(normalize(data_config))
    return T.Compose([T.ToPILImage(), create_transform(
        input_size=data_config["input_size"], is_training=True, interpolation=data_config["interpolation"],
        mean=data_config["mean"], std=data_config["std"], color_jitter=None, auto_augment=recipe.auto_augment,
        re_prob=recipe.random_erasing, re_mode="pixel")])


@register_transforms("video")
def video(recipe: Recipe, data_config: dict[str, Any], train: bool) -> Callable:
    """Decode the clip of a ``sparse_zoo.data.video.ClipLoader`` (random start, crop and flip
    for training, the centre clip otherwise) and normalise it with the model's mean/std."""
    from sparse_zoo.data.video import NormalizedClip
    return NormalizedClip(tuple(data_config["mean"]), tuple(data_config["std"]))


def build_transform(recipe: Recipe, data_config: dict[str, Any], train: bool) -> Callable:
    if recipe.augmentation not in TRANSFORMS:
        close = difflib.get_close_matches(recipe.augmentation, TRANSFORMS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown augmentation {recipe.augmentation!r}{hint}; "
                         f"valid: {', '.join(sorted(TRANSFORMS))}")
    return TRANSFORMS[recipe.augmentation](recipe, data_config, train)
