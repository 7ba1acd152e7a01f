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


def cifar_test_files(pattern: str, n: int) -> list[Path]:
    """The first ``n`` CIFAR-10 test files matching ``pattern`` (e.g. ``"*/0000.jpg"``: one per class)."""
    root = cifar10_root() / "test"
    files = sorted(root.glob(pattern))[:n]
    if len(files) < n:
        pytest.fail(f"need {n} CIFAR-10 test images matching {pattern!r} under {root}: set SPARSE_ZOO_CIFAR10")
    return files


def cifar_test_images(pattern: str, n: int) -> torch.Tensor:
    """uint8 (n, 3, 32, 32) real CIFAR-10 test images, see :func:`cifar_test_files`."""
    import numpy as np
    from PIL import Image
    arrays = [np.array(Image.open(f).convert("RGB")) for f in cifar_test_files(pattern, n)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def cifar_test_pair(pattern: str, n: int) -> dict[int, torch.Tensor]:
    """Float [0, 1] CIFAR-10 test images at 32 px and a 224 px bicubic enlargement of every fourth."""
    x32 = cifar_test_images(pattern, n).float() / 255
    x224 = torch.nn.functional.interpolate(x32[::4], size=224, mode="bicubic", align_corners=False).clamp(0, 1)
    return {32: x32, 224: x224}
