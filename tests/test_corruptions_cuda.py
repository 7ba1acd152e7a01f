"""CPU and CUDA agree on the same inputs (issue 4), for every image corruption, eager and compiled.

Skipped without a CUDA GPU (CI has none): ``tools/device_check.sh`` runs it on a lent one.
Images are made here, since ``../shared`` does not travel to a device machine.
"""
import pytest
import torch
import torch.nn.functional as F

from sparse_zoo import corruptions
from test_corruptions_api import ALL as NAMES  # every image corruption

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
IDS = torch.tensor([3, 1, 4, 15])


def smooth_images(size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (F.avg_pool2d(torch.rand(4, 3, size + 4, size + 4, generator=g), 5, 1) * 255).round().to(torch.uint8)


def assert_close_8bit(gpu: torch.Tensor, cpu: torch.Tensor) -> None:
    """Float rounding (FFTs, log/cos, bilinear weights) moves a value across an 8-bit step now and then,
    and a threshold downstream (spatter's edges, glass blur's swaps) can move a few pixels more."""
    assert gpu.device.type == "cuda" and gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    diff = (gpu.cpu().int() - cpu.int()).abs()
    assert float((diff > 1).float().mean()) < 2e-3 and float(diff.float().mean()) < 0.05


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name, size):
    if name.startswith("h265"):
        pytest.importorskip("av")
    x = smooth_images(size)
    for severity in (1, 5):
        cpu = corruptions.apply(x, name, severity, seed=5, sample_ids=IDS)
        assert_close_8bit(corruptions.apply(x.cuda(), name, severity, seed=5, sample_ids=IDS), cpu)
        floats = corruptions.apply(x.cuda().float() / 255, name, severity, seed=5, sample_ids=IDS)
        assert floats.device.type == "cuda" and floats.dtype == torch.float32
        assert float(floats.min()) >= 0.0 and float(floats.max()) <= 1.0


@pytest.mark.parametrize("name", [n for n in NAMES if corruptions.get(n).extra.get("compile")])
def test_compiled_on_cuda_matches_eager_cpu(name):
    x = smooth_images(224)
    cpu = corruptions.apply(x, name, 3, seed=5, sample_ids=IDS)
    assert_close_8bit(corruptions.apply(x.cuda(), name, 3, seed=5, sample_ids=IDS, compile=True), cpu)
