"""Small synthetic action videos whose class only motion tells, written as real H.264 files.

Each video shows one shape (disc or square, random colour and size) over a static random
texture. Its class is its motion: up, down, slow or fast horizontal slide, orbit, or vertical
bounce. The shape moves on a torus (it wraps at the borders) from a uniform random start, so
its position in any single frame is uniform for every class and its appearance is independent
of the class: one frame cannot tell the class, a model must use time. The classes are
unchanged by a horizontal flip (slides and orbits go either way), so the usual flip
augmentation is safe. ``reverse_sampling`` turns up into down: temporal corruptions matter here.

``make_synthetic_ucf101(root)`` writes them in UCF101's layout (``UCF-101/<Class>/
v_<Class>_gXX_cYY.avi`` encoded with libx264 through PyAV, plus ``ucfTrainTestlist`` with
classInd and three train/test splits by group), so the same decord path reads them.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# motion(t, speed_sign, generator) -> (dy, dx) displacement in pixels at frame times t
Motion = Callable[[torch.Tensor, float, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def _orbit(t: torch.Tensor, sign: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    radius = 8 + 6 * float(torch.rand((), generator=g))
    phase = 2 * math.pi * float(torch.rand((), generator=g))
    angle = phase + sign * 2 * math.pi * t / 24
    return radius * torch.sin(angle), radius * torch.cos(angle)


def _bounce(t: torch.Tensor, sign: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    amplitude = 8 + 6 * float(torch.rand((), generator=g))
    return amplitude * torch.sin(sign * 2 * math.pi * t / 16), torch.zeros_like(t)


ACTIONS: dict[str, Motion] = {
    "MoveUp": lambda t, s, g: (-2.0 * t, torch.zeros_like(t)),
    "MoveDown": lambda t, s, g: (2.0 * t, torch.zeros_like(t)),
    "SlideSlow": lambda t, s, g: (torch.zeros_like(t), s * 1.0 * t),
    "SlideFast": lambda t, s, g: (torch.zeros_like(t), s * 3.0 * t),
    "Orbit": _orbit,
    "Bounce": _bounce,
}


def render(action: str, *, frames: int = 48, size: int | tuple[int, int] = 64,
           generator: torch.Generator) -> torch.Tensor:
    """One video of ``action`` as uint8 (T, H, W, 3); ``size`` is H = W or (H, W)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown synthetic action {action!r}; valid: {', '.join(ACTIONS)}")
    g = generator
    h, w = (size, size) if isinstance(size, int) else size
    background = F.interpolate(torch.rand(1, 3, max(h // 8, 1), max(w // 8, 1), generator=g), size=(h, w),
                               mode="bicubic", align_corners=False)[0].clamp(0, 1) * 0.4 + 0.3
    background = background + 0.06 * torch.rand(3, h, w, generator=g)  # fine texture
    colour = torch.rand(3, 1, 1, generator=g)
    radius = 4 + 4 * float(torch.rand((), generator=g))
    square = bool(torch.rand((), generator=g) < 0.5)
    start = torch.rand(2, generator=g) * torch.tensor([h, w])
    sign = 1.0 if bool(torch.rand((), generator=g) < 0.5) else -1.0
    dy, dx = ACTIONS[action](torch.arange(frames, dtype=torch.float32), sign, g)
    cy, cx = (start[0] + dy) % h, (start[1] + dx) % w

    def wrap(d: torch.Tensor, n: int) -> torch.Tensor:  # signed distance on the torus
        return (d + n / 2) % n - n / 2

    ddy = wrap(torch.arange(h, dtype=torch.float32).view(1, -1, 1) + 0.5 - cy.view(-1, 1, 1), h)
    ddx = wrap(torch.arange(w, dtype=torch.float32).view(1, 1, -1) + 0.5 - cx.view(-1, 1, 1), w)
    inside = torch.maximum(ddy.abs(), ddx.abs()) <= radius if square else ddy ** 2 + ddx ** 2 <= radius ** 2
    video = torch.where(inside.unsqueeze(1), colour, background.unsqueeze(0))  # (T, 3, H, W)
    return (video.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def write_video(path: str | os.PathLike, frames: torch.Tensor, *, fps: int = 25, crf: int = 18) -> None:
    """Encode uint8 (T, H, W, 3) frames (even H and W) as H.264 into ``path`` (container from the suffix)."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames.numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        container.mux(stream.encode(None))
    os.replace(tmp, path)  # a killed run never leaves a half-written video under the real name


def make_synthetic_ucf101(root: str | os.PathLike, *, groups: int = 6, clips_per_group: int = 4,
                          frames: int = 48, size: int | tuple[int, int] = 64, fps: int = 25, crf: int = 18,
                          seed: int = 0,
                          actions: tuple[str, ...] | None = None) -> Path:
    """Write a synthetic set in UCF101's layout under ``root``; returns ``root``.

    Videos of a group share nothing but their name (as in UCF101, where a group is one actor);
    split s (1-3) tests on the s-th third of the groups and trains on the rest.
    """
    actions = tuple(ACTIONS) if actions is None else actions
    if groups < 3:
        raise ValueError(f"need at least 3 groups for the three splits, got {groups}")
    if any(n % 2 for n in ((size,) if isinstance(size, int) else size)):
        raise ValueError(f"H.264 (yuv420p) needs even frame sizes, got {size}")
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    names: dict[int, list[str]] = {g: [] for g in range(1, groups + 1)}
    for label, action in enumerate(actions):
        folder = root / "UCF-101" / action
        folder.mkdir(parents=True, exist_ok=True)
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                generator = torch.Generator().manual_seed(
                    seed * 1_000_003 + (label * groups + g - 1) * clips_per_group + c)
                name = f"v_{action}_g{g:02d}_c{c:02d}.avi"
                write_video(folder / name, render(action, frames=frames, size=size, generator=generator),
                            fps=fps, crf=crf)
                names[g].append(f"{action}/{name} {label + 1}")
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {a}\n" for i, a in enumerate(actions)))
    for split in (1, 2, 3):
        test = [g for g in names if (g - 1) * 3 // groups == split - 1]
        train_rows = [row for g in names if g not in test for row in names[g]]
        test_rows = [row.split()[0] for g in test for row in names[g]]
        (lists / f"trainlist{split:02d}.txt").write_text("".join(r + "\n" for r in sorted(train_rows)))
        (lists / f"testlist{split:02d}.txt").write_text("".join(r + "\n" for r in sorted(test_rows)))
    return root
