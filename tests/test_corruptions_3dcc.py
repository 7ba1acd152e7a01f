"""3D Common Corruptions: severity order, table statistics, depth handling, codecs and reproducibility."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from sparse_zoo import corruptions
from sparse_zoo.corruptions import codec, dcc3d
from sparse_zoo.corruptions.depth import ground_plane
from sparse_zoo.corruptions.rng import Stream, sample_keys
from conftest import cifar_test_files

NAMES = corruptions.names("3dcc")
RANDOM = ("xy_motion_blur", "z_motion_blur", "iso_noise", "low_light")


pytestmark = pytest.mark.usefixtures("one_thread")


def cifar(n: int = 4, size: int = 64) -> torch.Tensor:
    """n real CIFAR-10 test images (one per class), upscaled to ``size``, as uint8 (n, 3, size, size)."""
    files = cifar_test_files("*/0000.jpg", n)
    images = [np.array(Image.open(f).convert("RGB").resize((size, size), Image.BICUBIC)) for f in files]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def stream(b: int, name: str = "t") -> Stream:
    return Stream(sample_keys(0, range(b), name, 1))


def distortion(y: torch.Tensor, x: torch.Tensor) -> float:
    return (y.float() - x.float()).abs().mean().item()


def test_suite_registered():
    assert len(NAMES) == 12
    depth_based = {n for n in NAMES if corruptions.get(n).uses_depth}
    assert depth_based == {"near_focus", "far_focus", "fog_3d", "flash", "xy_motion_blur", "z_motion_blur"}


@pytest.mark.parametrize("name", [n for n in NAMES if n != "bit_error"])
def test_severity_monotone(name):
    x = cifar()
    d = [distortion(corruptions.apply(x, name, s), x) for s in range(1, 6)]
    assert d[0] > 0.1
    # the per-severity random camera paths overlap in range, so allow a small dip between neighbours
    slack = 0.1 * d[-1] if name.endswith("motion_blur") else 1e-6
    assert all(b >= a - slack for a, b in zip(d, d[1:])), d
    assert d[-1] > 1.1 * d[0], d


def test_bit_error_rate_behaviour():
    data = bytes(200_000)
    rng = stream(1)
    draws, values = (rng.bits(len(data))[0].numpy().astype(np.uint32) for _ in range(2))
    for amount in (100, 1000):
        hits = np.frombuffer(dcc3d.corrupt_bytes(data, amount, draws, values), np.uint8) != 0
        expected = len(data) / amount  # a replaced byte stays 0 with probability 1/256
        assert abs(hits.sum() - expected * 255 / 256) < 5 * math.sqrt(expected)
    x = cifar(size=96).float() / 255
    # more frequent errors damage the picture more (the table's 1e4..1e5 rarely hits a 96 px stream)
    d = [distortion(dcc3d.bit_error(x, amount, stream(4)), x) for amount in (3000, 300, 30)]
    assert d[0] < d[1] < d[2], d
    assert list(dcc3d.BIT_ERROR) == sorted(dcc3d.BIT_ERROR, reverse=True)  # severity raises the error rate


def test_fog_transmission_matches_formula():
    x = torch.rand(2, 3, 16, 16)
    depth = torch.rand(2, 1, 16, 16) * 0.5 + 0.01
    for beta in dcc3d.FOG_3D:
        y = dcc3d.fog_3d(x, beta, stream(2), depth=depth)
        x64, t = x.double(), torch.exp(-beta * depth.double())  # transmission, airlight = the image mean
        expected = t * x64 + x64.mean(dim=(1, 2, 3), keepdim=True) * (1 - t)
        torch.testing.assert_close(y.double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["iso_noise", "low_light"])
def test_sensor_noise_statistics(name):
    # a flat grey patch: photon noise N/photons with N ~ Poisson(photons * level), plus read noise
    x = torch.zeros(2, 3, 64, 64)
    x[:, :, :, :32] = 0.5
    x[:, :, 0, 40] = 1.0  # gives low_light's min-max stretch the range [0, 1]
    for p in getattr(dcc3d, name.upper()):
        y = getattr(dcc3d, name)(x, p, stream(2, name))[:, :, 1:, :32]
        noise, level = (p.noise, 0.25 * p.brightness) if name == "low_light" else (p, 0.5)
        var = level / noise.photons + noise.read_std ** 2
        assert abs(y.mean().item() - level) < 4 * math.sqrt(var / y.numel())
        assert abs(y.var().item() / var - 1) < 0.05


def test_color_quant_matches_pil_posterize():
    x = cifar(2, 32)
    for severity, bits in enumerate(dcc3d.COLOR_QUANT, 1):
        y = corruptions.apply(x, "color_quant", severity)
        ref = [np.array(ImageOps.posterize(Image.fromarray(im.permute(1, 2, 0).numpy()), bits)) for im in x]
        assert torch.equal(y, torch.from_numpy(np.stack(ref)).permute(0, 3, 1, 2))
        assert y.unique().numel() <= 2 ** bits


def _psnr(y: torch.Tensor, x: torch.Tensor) -> float:
    return 10 * math.log10(255 ** 2 / ((y.float() - x.float()) ** 2).mean().item())


def test_h265_crf_ordering_and_real_encoder():
    x = cifar(2, 64)
    image = x[0].permute(1, 2, 0).numpy().copy()
    enc = codec.encoder("libx265", ("libx264",))
    sizes = [codec.picture_bytes(codec.encode(image, enc, {"crf": str(c)})[0], enc) for c in dcc3d.H265_CRF]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]
    psnr = [_psnr(corruptions.apply(x, "h265_crf", s), x) for s in range(1, 6)]
    assert psnr == sorted(psnr, reverse=True), psnr
    # the stream really is HEVC: the decoder of the other codec cannot read it
    if enc == "libx265":
        assert codec.decode(codec.encode(image, enc, {"crf": "24"})[0], "libx264") is None


def test_h265_abr_bitrate_follows_table():
    image = cifar(1, 96)[0].permute(1, 2, 0).numpy().copy()
    enc = codec.encoder("libx265", ("libx264",))
    source = codec.picture_bytes(codec.encode(image, "libx264", dcc3d.SOURCE)[0], "libx264")
    sizes = []
    for divisor in dcc3d.H265_ABR[:3]:
        rate = int(source * 8 * codec.FPS / divisor)
        data, _ = codec.encode(image, enc, {"maxrate": str(rate), "bufsize": str(rate)}, rate)
        sizes.append(codec.picture_bytes(data, enc))
    assert sizes[0] > sizes[1] > sizes[2]
    assert 0.3 < sizes[0] / (source / 2) < 2.0  # rate control lands near the target


def test_encoder_fallback_warns():
    with pytest.warns(RuntimeWarning, match="no-such-codec"):
        assert codec.encoder("no-such-codec", ("libx264",)) == "libx264"


def test_focus_follows_depth():
    x = cifar(2, 64).float() / 255
    h = x.shape[-2]
    near = corruptions.apply(x, "near_focus", 5)
    far = corruptions.apply(x, "far_focus", 5)
    top, bottom = slice(0, h // 8), slice(h - h // 8, h)
    # fallback prior: the bottom rows are near, the top rows far
    assert distortion(near[..., bottom, :], x[..., bottom, :]) < 0.3 * distortion(near[..., top, :], x[..., top, :])
    assert distortion(far[..., top, :], x[..., top, :]) < 0.3 * distortion(far[..., bottom, :], x[..., bottom, :])
    flat = torch.full((2, 1, 64, 64), 0.3)  # one depth: everything is in focus
    torch.testing.assert_close(corruptions.apply(x, "near_focus", 5, depth=flat), x, atol=1e-5, rtol=0)


def test_focus_blur_radius_matches_table():
    # two depth layers: the far layer's blur std is aperture * |d - d_focus| / d px (at 224 px)
    depth = torch.full((1, 1, 224, 224), 0.1)
    depth[..., 112:, :] = 0.4
    x = torch.zeros(1, 1, 224, 224)
    x[..., 168, 112] = 1.0  # an impulse in the far layer
    p = dcc3d.NEAR_FOCUS[4]
    y = dcc3d.near_focus(x, p, stream(1), depth=depth)[0, 0, 168]
    sigma = p.aperture * 0.75  # |0.4 - 0.1| / 0.4, focus on the near layer
    k = torch.arange(224.0) - 112
    profile = y / y.sum()
    std = math.sqrt((profile * k ** 2).sum().item())
    ref = torch.exp(-k ** 2 / (2 * sigma ** 2)) * (k.abs() <= int(3 * sigma) // 2)
    ref_std = math.sqrt(((ref / ref.sum()) * k ** 2).sum().item())
    assert abs(std - ref_std) < 0.02 * ref_std


def test_refocus_blurs_only_the_bands_it_needs(monkeypatch):
    # each octile blurs the rows and columns its weights touch, plus the kernel's reach:
    # the same values as blurring whole images
    x = cifar(3, 64).float() / 255
    patchy = torch.rand(3, 1, 8, 8).repeat_interleave(8, -2).repeat_interleave(8, -1) * 0.4 + 0.1
    for depth in (ground_plane(3, 64, 64), patchy):
        for p in (dcc3d.NEAR_FOCUS[4], dcc3d.FAR_FOCUS[2]):
            banded = dcc3d.refocus(x, depth, p)
            with monkeypatch.context() as m:
                m.setattr(dcc3d, "_band", lambda used, reach: slice(0, used.numel()))
                whole = dcc3d.refocus(x, depth, p)
            torch.testing.assert_close(banded, whole, atol=1e-6, rtol=0)


def test_depth_given_vs_fallback():
    x = cifar(2, 48)
    plane = ground_plane(2, 48, 48)
    other = plane.flip(-2)
    for name in ("near_focus", "far_focus", "fog_3d", "flash", "xy_motion_blur", "z_motion_blur"):
        fallback = corruptions.apply(x, name, 3)
        assert torch.equal(corruptions.apply(x, name, 3, depth=plane), fallback)
        assert not torch.equal(corruptions.apply(x, name, 3, depth=other), fallback)


def test_motion_blur_moves_near_pixels_more():
    # a near (bottom) and a far (top) half: parallax makes the near half streak further
    x = cifar(2, 64).float() / 255
    depth = torch.full((2, 1, 64, 64), 0.4)
    depth[..., 32:, :] = 0.1
    y = corruptions.apply(x, "xy_motion_blur", 5, depth=depth)
    assert distortion(y[..., 40:, :], x[..., 40:, :]) > 1.5 * distortion(y[..., :24, :], x[..., :24, :])


@pytest.mark.parametrize("bad", [torch.ones(2, 1, 32, 31), torch.ones(2, 2, 32, 32), torch.ones(3, 1, 32, 32)])
def test_wrong_depth_shape(bad):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="depth"):
        corruptions.apply(x, "fog_3d", 1, depth=bad)
    with pytest.raises(ValueError, match="depth"):
        dcc3d.fog_3d(x, 4.0, stream(2), depth=bad)


def test_invalid_depth_values():
    x = torch.rand(1, 3, 16, 16)
    for value in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            corruptions.apply(x, "near_focus", 1, depth=torch.full((1, 1, 16, 16), value))


@pytest.mark.parametrize("name", NAMES)
def test_range_dtype_device(name):
    x = cifar(2, 34)[..., :33]  # odd width goes through the codecs too
    y = corruptions.apply(x, name, 2)
    assert y.dtype == torch.uint8 and y.shape == x.shape
    f = corruptions.apply(x.float() / 255, name, 2)
    assert f.dtype == torch.float32 and f.shape == x.shape and 0 <= f.min() and f.max() <= 1
    grey = corruptions.apply(x[:, :1].float() / 255, name, 2)
    assert grey.shape == (2, 1, 34, 33)


@pytest.mark.parametrize("name", RANDOM + ("h265_abr",))
def test_shuffled_batches_reproduce(name):
    x = cifar(4, 48)
    perm = torch.tensor([2, 0, 3, 1])
    y = corruptions.apply(x, name, 3, seed=7)
    shuffled = corruptions.apply(x[perm], name, 3, seed=7, sample_ids=perm)
    assert torch.equal(shuffled, y[perm])
    single = corruptions.apply(x[1:2], name, 3, seed=7, sample_ids=[1])
    assert torch.equal(single, y[1:2])
    if name != "h265_abr":
        assert not torch.equal(corruptions.apply(x, name, 3, seed=8), y)


def test_bit_error_shuffled_batches_reproduce():
    x = cifar(4, 48).float() / 255
    perm = torch.tensor([2, 0, 3, 1])
    y = dcc3d.bit_error(x, 100, Stream(sample_keys(7, range(4), "bit_error", 3)))
    shuffled = dcc3d.bit_error(x[perm], 100, Stream(sample_keys(7, perm, "bit_error", 3)))
    assert torch.equal(shuffled, y[perm])
    assert not torch.equal(dcc3d.bit_error(x, 100, Stream(sample_keys(8, range(4), "bit_error", 3))), y)


def test_octiles_match_torch_quantile():
    d = torch.rand(3, 1001)
    expected = torch.quantile(d, torch.linspace(0, 1, dcc3d.N_QUANTILES + 1), dim=1).T
    torch.testing.assert_close(dcc3d._octiles(d), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["h265_crf", "h265_abr", "bit_error"])
def test_codecs_take_tiny_images(name):
    x = cifar(1, 8)[..., :7]  # below x265's 16 px minimum and odd
    assert corruptions.apply(x, name, 1).shape == x.shape
