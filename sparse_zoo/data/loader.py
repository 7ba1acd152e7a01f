"""Batches of a dataset restricted to some indices, with the indices (the per-sample seeds)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset


class _Indexed(Dataset):
    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        image, label = self.dataset[self.indices[i]]
        return image, label, self.indices[i]


def index_batches(dataset: Dataset, indices: Sequence[int], batch_size: int,
                  workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels, dataset indices) in the order of ``indices``.

    Datasets with ``get_batch`` (arrays in memory or memory-mapped) are sliced
    directly; others go through a DataLoader with ``workers`` processes.
    """
    indices = list(indices)
    if hasattr(dataset, "get_batch"):
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            images, labels = dataset.get_batch(chunk)
            yield images, labels, torch.tensor(chunk)
        return
    loader = DataLoader(_Indexed(dataset, indices), batch_size=batch_size, shuffle=False, num_workers=workers)
    for images, labels, idx in loader:
        yield images, torch.as_tensor(labels), idx
