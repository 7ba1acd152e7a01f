"""Depth maps for the 3D Common Corruptions: validation, the fallback prior and camera geometry.

Units follow the reference generation scripts: depth is normalised so that 1.0 is
15.6 m (Taskonomy's uint16 depth / 8000; ImageNet-3DCC used MiDaS depth clamped to
at most 0.5). Only ``fog_3d`` depends on the absolute scale; depth of field, flash and
camera motion use depth ratios, so any positive depth works for them.

Without a depth map the corruptions use :func:`ground_plane`, a deterministic prior: a
flat floor seen from eye height, i.e. inverse depth linear in the image row, from
0.5 (the far clamp of ImageNet-3DCC) at the top row to 0.1 at the bottom row. It is
the same for every image, so results with the fallback are NOT comparable with the
official ImageNet-3DCC, which used per-image depth; pass ``depth=`` for that.
"""
from __future__ import annotations

import torch

FAR = 0.5   # depth of the top row of the fallback prior
NEAR = 0.1  # depth of the bottom row


def ground_plane(b: int, h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 1, H, W) fallback depth: a floor plane, inverse depth linear from 1/FAR (top) to 1/NEAR (bottom)."""
    y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    inv = 1.0 / FAR + (1.0 / NEAR - 1.0 / FAR) * y
    return (1.0 / inv).view(1, 1, h, 1).expand(b, 1, h, w).contiguous()


def resolve(x: torch.Tensor, depth: torch.Tensor | None) -> torch.Tensor:
    """The depth to use for batch ``x``: the given (B, 1, H, W) map, checked, or the fallback prior."""
    b, _, h, w = x.shape
    if depth is None:
        return ground_plane(b, h, w, x.device)
    if depth.shape != (b, 1, h, w):
        raise ValueError(f"depth must have shape (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(depth.shape)}")
    depth = depth.to(x.device, torch.float32)
    if not bool(torch.isfinite(depth).all()) or bool((depth <= 0).any()):
        raise ValueError("depth must be finite and positive (normalised units, 1.0 = 15.6 m); "
                         "replace invalid pixels (sky, holes) by the largest valid depth as the reference does")
    return depth


def points(depth: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) camera-space points of a depth map, with the reference's focal length (the longer side).

    3D Ken Burns (used by the reference) renders 512 px frames with focal length 512 px.
    """
    _, _, h, w = depth.shape
    f = float(max(h, w))
    v = (torch.arange(h, device=depth.device, dtype=torch.float32) + 0.5 - h / 2) / f
    u = (torch.arange(w, device=depth.device, dtype=torch.float32) + 0.5 - w / 2) / f
    return torch.cat((depth * u.view(1, 1, 1, w), depth * v.view(1, 1, h, 1), depth), 1)
