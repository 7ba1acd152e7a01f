"""Frost textures for ImageNet-C's frost corruption.

The reference blends the image with a random crop of one of five frost photographs
(``frost1.png`` .. ``frost5.jpg``; its list names a sixth, ``frost6.jpg``, that
``randint(5)`` never picks), shrunk by 0.2 for CIFAR (32 px) and 0.3 for
Tiny-ImageNet (64 px). Nothing is downloaded here: by default we synthesise five
textures, and a directory of texture images (for instance the reference photos)
can be given with the ``SPARSE_ZOO_FROST_DIR`` environment variable or the
``textures_dir`` argument.

How the synthetic textures differ from the photos: they are procedural (a 1/f
"haze" plus thin bright veins, like cracks in ice, at the zero crossings of
band-limited noise at three scales, tinted pale blue), 512 x 512, with mean ~0.4
and std ~0.15. They mimic the photos' crystalline, slightly blue look but not their
exact structures or brightness, so frost results are comparable in severity, not pixel-identical, to
published ImageNet-C numbers; use the reference photos for that.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .rng import Stream

FROST_DIR_ENV = "SPARSE_ZOO_FROST_DIR"
NUM_TEXTURES = 5
TEXTURE_SIZE = 512
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_TINT = (0.86, 0.94, 1.0)  # pale blue, like the reference photos
# (spectral exponent, line width, brightness, lowest frequency * size) of the three vein octaves
_VEIN_OCTAVES = ((2.2, 0.06, 0.5, 4.0), (1.9, 0.08, 0.35, 8.0), (1.6, 0.1, 0.25, 16.0))


def _spectral_noise(gen: torch.Generator, count: int, size: int, exponent: float,
                    low_cut: float = 0.0) -> torch.Tensor:
    """(count, size, size) zero-mean unit-std noise with amplitude spectrum ``f ** -exponent``."""
    f = torch.fft.fftfreq(size).abs()
    radius = torch.sqrt(f.view(-1, 1) ** 2 + f.view(1, -1) ** 2).clamp_min(1.0 / size)
    amplitude = radius ** -exponent * (radius >= low_cut)
    spectrum = torch.randn(count, size, size, dtype=torch.complex64, generator=gen) * amplitude
    noise = torch.fft.ifft2(spectrum).real
    noise = noise - noise.mean(dim=(1, 2), keepdim=True)
    return noise / noise.std(dim=(1, 2), keepdim=True)


def _veins(noise: torch.Tensor, width: float) -> torch.Tensor:
    """Thin bright lines along the zero crossings of ``noise``."""
    return torch.exp(-(noise / width) ** 2)


@functools.lru_cache(maxsize=1)
def procedural_textures(count: int = NUM_TEXTURES, size: int = TEXTURE_SIZE) -> torch.Tensor:
    """(count, 3, size, size) synthetic frost textures in [0, 1].

    A fixed asset rather than per-sample draws: made once on CPU from torch's seeded
    generator, then moved to the device, so every device sees the same bank.
    """
    gen = torch.Generator().manual_seed(20190328)
    haze = _spectral_noise(gen, count, size, 1.6)
    veins = sum(amplitude * _veins(_spectral_noise(gen, count, size, exponent, low_cut=cut / size), width)
                for exponent, width, amplitude, cut in _VEIN_OCTAVES)
    value = 0.4 + 0.12 * haze + veins * (0.75 + 0.25 * haze.clamp(-1.0, 1.0))
    tint = torch.tensor(_TINT).view(1, 3, 1, 1)
    return (value.unsqueeze(1) * tint).clamp(0.0, 1.0)


def load_textures(directory: str | os.PathLike) -> list[torch.Tensor]:
    """The images of ``directory`` (sorted by name) as (3, H, W) float tensors in [0, 1]."""
    from PIL import Image  # torchvision's dependency; imported only when textures are read

    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"frost texture directory {str(path)!r} does not exist; set {FROST_DIR_ENV} "
                         "to a folder of texture images or leave it unset for the synthetic textures")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no texture images ({', '.join(IMAGE_SUFFIXES)}) in {str(path)!r}")
    out = []
    for file in files:
        with Image.open(file) as image:
            data = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
            out.append(data.view(image.height, image.width, 3).permute(2, 0, 1).float() / 255.0)
    return out


@functools.lru_cache(maxsize=16)
def textures(directory: str | None, scale: float, device: str) -> tuple[torch.Tensor, ...]:
    """The texture bank, resized by ``scale`` like the reference's ``cv2.resize(fx=scale)``."""
    bank = list(procedural_textures()) if directory is None else load_textures(directory)
    out = []
    for t in bank:
        if scale != 1.0:
            size = (int(round(t.shape[1] * scale)), int(round(t.shape[2] * scale)))
            t = F.interpolate(t.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]
        out.append(t.to(device))
    return tuple(out)


def frost_dir(textures_dir: str | os.PathLike | None = None) -> str | None:
    """The texture directory: the argument, else ``$SPARSE_ZOO_FROST_DIR``, else None (synthetic)."""
    chosen = textures_dir if textures_dir is not None else os.environ.get(FROST_DIR_ENV) or None
    return None if chosen is None else str(chosen)


def random_crops(bank: tuple[torch.Tensor, ...], rng: Stream, height: int, width: int) -> torch.Tensor:
    """(B, 3, height, width): a random texture per sample and a uniformly placed crop of it.

    A texture smaller than the image is first enlarged (bilinear) to cover it. Each
    crop is a plain slice copy (rows of memcpy), much cheaper than a gather.
    """
    choice = rng.integers(0, len(bank), 1)[:, 0].tolist()
    corner = rng.uniform(2)
    covering = {i: _cover(bank[i], height, width) for i in set(choice)}  # enlarge only the textures in use
    # np.random.randint(0, n - size): offsets 0 .. n - size - 1 (one more when the texture fits exactly)
    span = torch.tensor([[max(covering[i].shape[1] - height, 1), max(covering[i].shape[2] - width, 1)]
                         for i in choice], device=corner.device)
    starts = (corner * span).long().tolist()
    out = bank[0].new_empty(len(rng), 3, height, width)
    for j, (i, (top, left)) in enumerate(zip(choice, starts)):
        out[j] = covering[i][:, top:top + height, left:left + width]
    return out


def _cover(texture: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``texture``, enlarged (bilinear, aspect kept) if it is smaller than height x width."""
    if texture.shape[1] >= height and texture.shape[2] >= width:
        return texture
    grow = max(height / texture.shape[1], width / texture.shape[2])
    size = (max(height, round(texture.shape[1] * grow)), max(width, round(texture.shape[2] * grow)))
    return F.interpolate(texture.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]
