"""Corrupting a clean dataset on the fly with any corruption of ``sparse_zoo.corruptions``.

Sample i's random draws are seeded by its index in the clean dataset (the engine
keys every draw on ``(seed, sample id, corruption, severity)``), so a corrupted
set is the same whatever the batch size, the shard a process gets or the device.
The harness corrupts whole batches on the model's device (GPU when there is one)
with :class:`CorruptBatch`; :class:`OnTheFlyCorrupted` is the same set as a
dataset, for use outside the harness.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from .. import corruptions


@dataclass(frozen=True)
class CorruptBatch:
    """``(images, indices) -> corrupted images``: one corruption at one severity, batched."""

    corruption: str
    severity: int
    seed: int = 0
    compile: bool = False  # corruptions.apply(..., compile=True)

    def __post_init__(self):
        corruptions.get(self.corruption)  # unknown names fail here, listing the valid ones

    def __call__(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return corruptions.apply(images, self.corruption, self.severity, seed=self.seed, sample_ids=indices,
                                 compile=self.compile)


class OnTheFlyCorrupted(Dataset):
    """``dataset`` with ``corruption`` at ``severity`` applied per sample (seed = dataset index)."""

    def __init__(self, dataset: Dataset, corruption: str, severity: int, seed: int = 0):
        self.dataset, self.corrupt = dataset, CorruptBatch(corruption, severity, seed)
        self.classes = getattr(dataset, "classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[index]
        return self.corrupt(image[None], torch.tensor([index]))[0], label
