import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparse_zoo import analysis
from sparse_zoo.analysis.spectral import radial_distance
from sparse_zoo.sparsity import set_mask


def test_fft_round_trip_without_removal_returns_the_image():
    x = torch.rand(2, 3, 16, 20)
    assert torch.allclose(analysis.filter_frequencies(x, 0, "low"), x, atol=1e-5)
    assert torch.allclose(analysis.filter_frequencies(x, 100, "high"), x, atol=1e-5)


def test_low_pass_keeps_the_mean_of_a_constant_colour_image():
    x = torch.ones(1, 3, 32, 32) * torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    out = analysis.filter_frequencies(x, 1, "high")
    assert torch.allclose(out.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-6)
    # only the DC term is left at radius 0: every pixel becomes the channel mean
    y = torch.rand(1, 3, 32, 32)
    assert torch.allclose(analysis.filter_frequencies(y, 0, "high"), y.mean(dim=(2, 3), keepdim=True).expand_as(y),
                          atol=1e-5)


@pytest.mark.parametrize("r", [0, 1, 3, 5.5, 10])
def test_frequency_masks_have_the_right_area(r):
    h = w = 32
    keep_low = analysis.frequency_mask(h, w, r, "high")
    keep_high = analysis.frequency_mask(h, w, r, "low")
    ys, xs = torch.meshgrid(torch.arange(h) - 16, torch.arange(w) - 16, indexing="ij")
    inside = int(((ys ** 2 + xs ** 2) <= r * r).sum())
    on_circle = int(((ys ** 2 + xs ** 2) == r * r).sum())
    assert int(keep_low.sum()) == inside
    assert int(keep_high.sum()) == h * w - inside + on_circle
    if r >= 3:  # the disc's lattice area is close to pi r^2
        assert abs(inside - math.pi * r * r) / (math.pi * r * r) < 0.15
    assert radial_distance(h, w)[16, 16] == 0


def test_kernel_maps_match_known_counts():
    conv = nn.Conv2d(3, 4, 3, bias=False)
    nn.init.constant_(conv.weight, -0.5)
    mask = torch.zeros_like(conv.weight, dtype=torch.bool)
    counts = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 0, 9]])
    for o in range(4):
        for i in range(3):
            mask[o, i].view(-1)[: counts[o, i]] = True
    set_mask(conv, mask)
    model = nn.Sequential(conv)
    nonzeros, sums = analysis.kernel_maps(model, "0")
    assert torch.equal(nonzeros, counts)
    assert torch.allclose(sums, counts.float() * 0.5)
    with pytest.raises(ValueError, match="no layer"):
        analysis.kernel_maps(model, "nope")


class QuadrantGate(nn.Module):
    def __init__(self):
        super().__init__()
        q = torch.zeros(4, 16, 16)
        q[0, :8, :8] = q[1, :8, 8:] = q[2, 8:, :8] = q[3, 8:, 8:] = 1
        self.register_buffer("quadrants", q.unsqueeze(0))

    def forward(self, x):
        return x * self.quadrants


class QuadrantNet(nn.Module):
    """Features are position-coded (channel q lives in quadrant q); class 0's logit reads channel 0 only."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), QuadrantGate())
        nn.init.constant_(self.features[0].weight, 1.0)
        self.pretrained_cfg = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}

    def forward(self, x):
        f = self.features(x)
        return torch.stack([f[:, 0].sum((1, 2)), 0.1 * f[:, 3].sum((1, 2))], dim=1)


def test_gradcam_highlights_the_quadrant_the_logit_depends_on():
    model = QuadrantNet()
    images = torch.rand(2, 3, 16, 16) * 0.5 + 0.5
    cam = analysis.gradcam(model, images, target_layer="features", classes=[0, 0])
    assert cam.shape == (2, 16, 16)
    top_left = cam[:, :6, :6].mean()
    rest = torch.cat([cam[:, 10:, :].flatten(1), cam[:, :, 10:].flatten(1)], 1).mean()
    assert top_left > 0.5 and rest < 1e-6
    assert float(cam.max()) == pytest.approx(1.0)
    assert all(p.grad is None for p in model.parameters())


def test_frequency_attenuation_on_a_frequency_coded_task():
    """Class = whether a stripe pattern is present: a low-pass removes it, a high-pass keeps it."""
    h = 16
    stripes = (torch.arange(h) % 2).float().view(1, 1, 1, h).expand(1, 3, h, h)
    base = torch.full((8, 3, h, h), 0.25)
    images = torch.cat([base, base + 0.5 * stripes]).clamp(0, 1)
    labels = torch.tensor([0] * 8 + [1] * 8)

    class StripeDetector(nn.Module):
        pretrained_cfg = {"mean": (0.0,) * 3, "std": (1.0,) * 3}

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            energy = (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
            return torch.stack([0.1 - energy, energy - 0.1], 1) + self.w

    curve = analysis.frequency_attenuation(StripeDetector(), TensorDataset(images, labels), [0, 4, 8], "high",
                                           batch_size=5, progress=False)
    assert curve == {0.0: 0.5, 4.0: 0.5, 8.0: 1.0}


def test_fourier_heatmap_shape_and_basis_norm():
    b = analysis.fourier_basis(8, 8, 1, -2)
    assert b.norm() == pytest.approx(1.0, abs=1e-5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    data = TensorDataset(torch.rand(6, 3, 8, 8), torch.zeros(6, dtype=torch.long))
    heat = analysis.fourier_heatmap(model, data, size=5, eps=0.5, batch_size=4, progress=False)
    assert heat.shape == (5, 5) and float(heat.min()) >= 0 and float(heat.max()) <= 1
