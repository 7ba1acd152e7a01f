"""Shared fixtures: the real CIFAR-10 copy beside the checkout, and one intra-op thread."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def cifar10_root() -> Path:
    """``$SPARSE_ZOO_CIFAR10`` or ``../shared/data/cifar10`` beside the checkout (where CI puts it)."""
    return Path(os.environ.get("SPARSE_ZOO_CIFAR10", REPO.parent / "shared" / "data" / "cifar10"))


@pytest.fixture(scope="session")
def cifar10_test() -> Path:
    root = cifar10_root() / "test"
    if not root.is_dir():
        pytest.fail(f"the real CIFAR-10 copy is missing at {root}: set SPARSE_ZOO_CIFAR10 to a folder with "
                    "train/ and test/ class folders")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a busy shared CPU, two-thread barriers make many small ops crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
