"""Helpers shared by the analyses: batching a dataset and normalising for a model."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def normalizer(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the model's pretrained_cfg as (1, C, 1, 1) tensors on its device."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    device = model_device(model)
    mean = torch.tensor(cfg.get("mean", IMAGENET_DEFAULT_MEAN), device=device).view(1, -1, 1, 1)
    std = torch.tensor(cfg.get("std", IMAGENET_DEFAULT_STD), device=device).view(1, -1, 1, 1)
    return mean, std


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images as float32 in [0, 1]."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def batches(dataset: Dataset, batch_size: int, limit: int | None = None,
            device: torch.device | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images in [0, 1], labels) batches of ``limit`` evenly spaced samples (all when None).

    Even spacing keeps a subset of a class-sorted folder class-balanced. The dataset
    must yield un-normalised images (uint8, or float in [0, 1]); the analyses filter
    or perturb pixels before the model's own normalisation.
    """
    n = len(dataset)
    indices = range(n) if limit is None or limit >= n else torch.linspace(0, n - 1, limit).long().tolist()
    subset = torch.utils.data.Subset(dataset, indices)
    for images, labels in DataLoader(subset, batch_size=batch_size, shuffle=False):
        yield to_float(images).to(device), torch.as_tensor(labels).to(device)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Top-1 predictions for [0, 1] images (normalised with the model's mean/std)."""
    mean, std = normalizer(model)
    return model((images - mean) / std).argmax(dim=1)
