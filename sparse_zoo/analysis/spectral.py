"""Spectral analyses: accuracy under frequency removal, and Fourier-basis sensitivity.

``frequency_attenuation`` gives the radius-accuracy curves C_high and C_low of the
paper (section 5, eqs. 1-2, figures 6-7): every image goes through the per-channel
2-D FFT with the spectrum centred, a circular mask of radius r removes the high
frequencies (outside r) or the low ones (inside r), and the inverse FFT is what the
model sees. Filtered images are not clipped back to [0, 1] (a high-pass image is
mostly negative), as in the paper's setup. ``fourier_heatmap`` is Yin et al.'s
(2019) Fourier heat map: the error under additive single-frequency perturbations.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .common import batches, model_device, predict

MODES = ("high", "low")


def radial_distance(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Distance of every (row, col) of a centred (fftshift-ed) h x w spectrum from its centre."""
    ys = torch.arange(h, device=device, dtype=torch.float32) - h // 2
    xs = torch.arange(w, device=device, dtype=torch.float32) - w // 2
    return torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)


def frequency_mask(h: int, w: int, radius: float, mode: str, device=None) -> torch.Tensor:
    """Bool (h, w) mask of the centred frequencies that are KEPT.

    mode "high" removes the high frequencies (distance > radius), mode "low" the low
    ones (distance < radius); the circle itself is kept in both, so radius 0 in mode
    "low" (or any radius past the corner in mode "high") keeps the whole spectrum.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    d = radial_distance(h, w, device)
    return d <= radius if mode == "high" else d >= radius


def filter_frequencies(images: torch.Tensor, radius: float, mode: str) -> torch.Tensor:
    """Remove the high (mode="high") or low (mode="low") frequencies of (B, C, H, W) images."""
    h, w = images.shape[-2:]
    spectrum = torch.fft.fftshift(torch.fft.fft2(images.float()), dim=(-2, -1))
    spectrum = spectrum * frequency_mask(h, w, radius, mode, images.device)
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real


@torch.no_grad()
def frequency_attenuation(model: nn.Module, dataset: Dataset, radii: Sequence[float], mode: str = "high", *,
                          batch_size: int = 256, limit: int | None = None, progress: bool = True) -> dict[float, float]:
    """Top-1 accuracy for each radius: the curve C_high (mode="high") or C_low (mode="low")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    model.eval()
    correct = {float(r): 0 for r in radii}
    total = 0
    device = model_device(model)
    for images, labels in tqdm(batches(dataset, batch_size, limit, device), desc=f"freq-{mode}",
                               disable=not progress, unit="batch"):
        total += labels.numel()
        for r in correct:
            correct[r] += int((predict(model, filter_frequencies(images, r, mode)) == labels).sum())
    return {r: c / max(total, 1) for r, c in correct.items()}


def fourier_basis(h: int, w: int, i: int, j: int, device=None) -> torch.Tensor:
    """The unit-L2-norm real Fourier basis image U_{i,j} (frequency offsets i, j from the centre)."""
    spectrum = torch.zeros(h, w, dtype=torch.complex64, device=device)
    spectrum[(h // 2 + i) % h, (w // 2 + j) % w] = 1.0
    wave = torch.fft.ifft2(torch.fft.ifftshift(spectrum))
    basis = wave.real + wave.imag  # cos + sin: nonzero for every (i, j), unlike cos alone
    return basis / basis.norm()


@torch.no_grad()
def fourier_heatmap(model: nn.Module, dataset: Dataset, *, size: int | None = None, eps: float = 4.0,
                    batch_size: int = 256, limit: int | None = 1000, seed: int = 0,
                    progress: bool = True) -> torch.Tensor:
    """Error rate under ``x + eps * s * U_{i,j}`` for every centred frequency (i, j).

    Returns a (size, size) tensor indexed by frequency offset from -(size // 2);
    ``size`` defaults to the image size (every frequency). ``s`` is a random sign per
    image and channel (Yin et al. 2019); the perturbed image is clipped to [0, 1].
    """
    images, labels = map(torch.cat, zip(*batches(dataset, batch_size, limit, model_device(model))))
    _, c, h, w = images.shape
    size = size or min(h, w)
    if size > min(h, w):
        raise ValueError(f"size {size} exceeds the image size {min(h, w)}")
    gen = torch.Generator().manual_seed(seed)
    signs = (torch.randint(0, 2, (images.shape[0], c, 1, 1), generator=gen) * 2 - 1).to(images)
    model.eval()
    errors = torch.zeros(size, size)
    offsets = range(-(size // 2), size - size // 2)
    cells = [(a, b) for a in range(size) for b in range(size)]
    for a, b in tqdm(cells, desc="fourier", disable=not progress, unit="freq"):
        basis = fourier_basis(h, w, offsets[a], offsets[b], images.device)
        wrong = 0
        for s in range(0, images.shape[0], batch_size):
            x = (images[s:s + batch_size] + eps * signs[s:s + batch_size] * basis).clamp(0, 1)
            wrong += int((predict(model, x) != labels[s:s + batch_size]).sum())
        errors[a, b] = wrong / images.shape[0]
    return errors
