"""Figures of the analyses (matplotlib, PNG)."""
from __future__ import annotations

from collections.abc import Mapping
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_attenuation(curves: Mapping[str, Mapping[str, Mapping[float, float]]], path: str | Path) -> Path:
    """Radius-accuracy curves, one panel per mode, one line per model (paper fig. 7 style).

    ``curves[mode][model] = {radius: accuracy}``.
    """
    titles = {"high": "high frequencies removed (low-pass)", "low": "low frequencies removed (high-pass)"}
    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (mode, per_model) in zip(axes[0], curves.items()):
        for name, curve in per_model.items():
            radii = sorted(curve)
            ax.plot(radii, [100 * curve[r] for r in radii], marker="o", ms=3, label=name)
        ax.set(title=titles.get(mode, mode), xlabel="radius r (frequency units)", ylabel="top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_kernel_maps(maps: Mapping[str, tuple[torch.Tensor, torch.Tensor]], layer: str, path: str | Path,
                     kernel_size: int | None = None) -> Path:
    """Per-kernel nonzero count (top row) and |w| sum (bottom row), one column per model (paper fig. 5).

    Each row shares one colour scale across models (counts from 0 to ``kernel_size``), so a
    lighter cell means the same in every panel.
    """
    fig, axes = plt.subplots(2, len(maps), figsize=(4.2 * len(maps), 8), squeeze=False, layout="constrained")
    top = kernel_size or max(int(c.max()) for c, _ in maps.values())
    sum_max = max(float(s.max()) for _, s in maps.values())
    for col, (name, (counts, sums)) in enumerate(maps.items()):
        for row, (mat, label, vmax) in enumerate(((counts, "nonzeros per kernel", top),
                                                  (sums, "sum |w| per kernel", sum_max))):
            ax = axes[row][col]
            ax.imshow(mat.cpu().numpy(), cmap="viridis", vmin=0, vmax=vmax, aspect="auto",
                      interpolation="nearest")
            ax.set(title=f"{name}\n{label}" if row == 0 else label, xlabel="input channel", ylabel="output channel")
            ax.title.set_fontsize(9)
    for row in range(2):
        fig.colorbar(axes[row][-1].images[0], ax=list(axes[row]), fraction=0.04, pad=0.02)
    fig.suptitle(f"kernels of {layer}")
    return _save(fig, path)


def plot_fourier_heatmaps(maps: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Error rate per Fourier basis perturbation, centre = lowest frequency (Yin et al. 2019)."""
    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 3.6), squeeze=False)
    for ax, (name, err) in zip(axes[0], maps.items()):
        half = err.shape[0] // 2
        im = ax.imshow(100 * err.cpu().numpy(), cmap="jet", vmin=0, vmax=100,
                       extent=(-half - 0.5, err.shape[1] - half - 0.5, err.shape[0] - half - 0.5, -half - 0.5))
        ax.set(title=name, xlabel="frequency j", ylabel="frequency i")
        fig.colorbar(im, ax=ax, fraction=0.046, label="error (%)")
    return _save(fig, path)


def plot_gradcam(images: Mapping[str, torch.Tensor], cams: Mapping[str, Mapping[str, torch.Tensor]],
                 path: str | Path, max_images: int = 6) -> Path:
    """Grad-CAM overlays: a row per (model, image set), a column per image.

    ``images[set] = (B, C, H, W)`` in [0, 1] (e.g. "clean", "gaussian_noise-3");
    ``cams[model][set] = (B, H, W)``.
    """
    sets = list(images)
    n = min(max_images, next(iter(images.values())).shape[0])
    rows = [(None, s) for s in sets] + [(m, s) for m in cams for s in sets]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)), squeeze=False)
    for r, (model, s) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[s][c].permute(1, 2, 0).cpu().clamp(0, 1).numpy())
            if model is not None:
                ax.imshow(cams[model][s][c].cpu().numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel("\n".join(textwrap.wrap(model or "image", 16)) + f"\n[{s}]", fontsize=6)
    return _save(fig, path)
