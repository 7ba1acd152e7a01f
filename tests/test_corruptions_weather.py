"""ImageNet-C weather corruptions, motion blur and ImageMagick's motion-blur kernel."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from PIL import Image

from sparse_zoo import corruptions
from sparse_zoo.corruptions import frost as frost_module
from sparse_zoo.corruptions import motion, weather
from sparse_zoo.corruptions.rng import Stream, sample_keys
from conftest import cifar_test_pair

NAMES = ["motion_blur", "snow", "frost", "fog", "spatter"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images():
    """32 CIFAR-10 test images (32 px) and a 224 px bicubic enlargement of eight, in [0, 1]."""
    return cifar_test_pair("*/000[0-3].jpg", 32)


def _rmse(a, b):
    return ((a - b) ** 2).mean().sqrt().item()


def _one_minus_corr(a, b):
    a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean().item()


def _mae(a, b):
    return (a - b).abs().mean().item()


def _common_draws(x, name, severity):
    """Corrupt with the same random draws at every severity, so only the table changes."""
    c = corruptions.get(name)
    rng = Stream(sample_keys(3, range(len(x)), name, 0))
    return c.fn(x.clone(), c.params(severity, x.shape[-1]), rng).clamp(0, 1)


# Frost blends the image down while adding texture, and fog brightens it while flattening it: their
# mean change is not monotone even in the reference tables, but the image's share of the result falls,
# so 1 - correlation grows. Mud (spatter 4, 5) covers the image rather than brightening it.
MONOTONE = {"motion_blur": _mae, "snow": _rmse, "frost": _one_minus_corr, "fog": _one_minus_corr,
            "spatter": _one_minus_corr}
# CIFAR motion blur 3 -> 4 only lengthens the kernel from 13 to 17 taps at sigma 2 (weights < 1e-7):
# the reference's two severities are the same blur.
TIES = {("motion_blur", 32): {3}}
# CIFAR spatter 3 -> 4 switches from many water drops to sparse mud: which one distorts more depends
# on the image, so that step is not ordered (1 < 2 < 3 and 4 < 5 are).
UNORDERED = {("spatter", 32): {3}}


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("name", NAMES)
def test_distortion_grows_with_severity(images, name, size):
    x = images[size]
    d = [MONOTONE[name](_common_draws(x, name, s), x) for s in range(1, 6)]
    ties, unordered = TIES.get((name, size), set()), UNORDERED.get((name, size), set())
    for s in set(range(1, 5)) - unordered:
        assert d[s - 1] == pytest.approx(d[s], abs=1e-5) if s in ties else d[s - 1] < d[s], d


@pytest.mark.parametrize("name", NAMES)
def test_dtype_shape_range_and_batch_independence(images, name):
    x = images[32][:4]
    u8 = (x * 255).round().to(torch.uint8)
    out8 = corruptions.apply(u8, name, 3, seed=1)
    assert out8.dtype == torch.uint8 and out8.shape == u8.shape
    out = corruptions.apply(x, name, 3, seed=1)
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    # shuffled batch, and a sub-batch, give the same per-sample results
    perm = torch.tensor([2, 0, 3, 1])
    shuffled = corruptions.apply(x[perm], name, 3, seed=1, sample_ids=perm)
    assert torch.allclose(shuffled, out[perm], atol=1e-5)
    part = corruptions.apply(x[1:3], name, 3, seed=1, sample_ids=[1, 2])
    assert torch.allclose(part, out[1:3], atol=1e-5)
    assert not torch.allclose(corruptions.apply(x, name, 3, seed=2), out)


# --------------------------------------------------------------------------- ImageMagick kernel

def _magick_width(radius, sigma):
    """GetOptimalKernelWidth1D, written from its description: 2 ceil(r) + 1, or grow until the tail < 1/65535."""
    if radius > 0:
        return 2 * math.ceil(radius) + 1
    for width in range(5, 1000, 2):
        j = (width - 1) // 2
        g = np.exp(-np.arange(-j, j + 1) ** 2 / (2 * sigma ** 2))
        if g[-1] / g.sum() < 1 / 65535:
            return width - 2


@pytest.mark.parametrize("radius,sigma", [(10, 3), (15, 12), (20, 15), (6, 1), (9, 2.5), (0, 1), (0, 2.5), (0, 15)])
def test_kernel_width_and_weights_follow_imagemagick(radius, sigma):
    width = motion.kernel_width(radius, sigma)
    assert width == _magick_width(radius, sigma)
    k = motion.kernel(width, sigma).numpy()
    assert len(k) == width and abs(k.sum() - 1) < 1e-12
    expected = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    assert np.allclose(k, expected / expected.sum(), rtol=1e-12)


def _magick_offsets(width, angle):
    """MotionBlurImage's offset table: point = width (sin a, cos a); offset = ceil(i point / |point| - 0.5)."""
    px, py = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(px, py)
    return [(math.ceil(i * px / hyp - 0.5), math.ceil(i * py / hyp - 0.5)) for i in range(width)]  # (y, x)


def _magick_blur(img, radius, sigma, angle):
    """Per-pixel ImageMagick motion blur of a (C, H, W) array with edge virtual pixels."""
    width = _magick_width(radius, sigma)
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    k /= k.sum()
    c, h, w = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    for i, (oy, ox) in enumerate(_magick_offsets(width, angle)):
        rows = np.clip(np.arange(h) + oy, 0, h - 1)
        cols = np.clip(np.arange(w) + ox, 0, w - 1)
        out += k[i] * img[:, rows][:, :, cols]
    return out


@pytest.mark.parametrize("angle", [-45.0, -13.7, 0.0, 30.0, 90.0, -120.0, 180.0])
def test_offsets_match_imagemagick(angle):
    oy, ox = motion.offsets(21, torch.tensor([angle]))
    assert list(zip(oy[0].tolist(), ox[0].tolist())) == _magick_offsets(21, angle)


def test_motion_blur_matches_per_pixel_reference_on_both_paths():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 19, 23)
    angles = torch.tensor([-45.0, 12.5, -110.0])
    out = motion.motion_blur(x, 6, 2, angles)
    for b in range(3):
        ref = _magick_blur(x[b].double().numpy(), 6, 2, float(angles[b]))
        assert np.allclose(out[b].numpy(), ref, atol=1e-5)
    # the gather path (used on accelerators) computes the same sum
    width = motion.kernel_width(6, 2)
    oy, ox = motion.offsets(width, angles)
    padded = torch.nn.functional.pad(x, (width - 1,) * 4, mode="replicate")
    weights = motion.kernel(width, 2).tolist()
    gathered = motion._shift_sum_gather(padded, oy + width - 1, ox + width - 1, weights, 19, 23)
    assert torch.allclose(gathered, out, atol=1e-6)


def test_motion_blur_of_a_point_is_the_kernel_along_the_angle():
    x = torch.zeros(1, 1, 41, 41)
    x[0, 0, 20, 20] = 1.0
    out = motion.motion_blur(x, 10, 3, torch.tensor([0.0]))[0, 0]
    k = motion.kernel(21, 3).float()
    # output (y, x) samples (y, x + i): the point shows up at x = 20 - i with weight k[i]
    assert torch.allclose(out[20, 0:21].flip(0), k, atol=1e-7)
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (out > 0).sum().item() == 21  # support: exactly width taps
    assert torch.allclose(motion.motion_blur(torch.full((1, 3, 9, 9), 0.3), 10, 3, torch.tensor([33.0])),
                          torch.full((1, 3, 9, 9), 0.3))


# --------------------------------------------------------------------------- plasma fractal and fog

class _NumpyDraws:
    """A Stream stand-in for one sample whose uniform draws are also recorded."""

    def __init__(self, seed):
        self.state, self.device, self.draws = np.random.RandomState(seed), torch.device("cpu"), []

    def __len__(self):
        return 1

    def uniform(self, *shape, low=0.0, high=1.0):
        d = self.state.uniform(low, high, shape)
        self.draws.append(d)
        return torch.from_numpy(d).float().unsqueeze(0)


def _diamond_square(mapsize, decay, draws):
    """The diamond-square recursion of make_imagenet_c.py's plasma_fractal, in float64, replaying ``draws``."""
    m = np.zeros((mapsize, mapsize))
    draws = iter(draws)
    step, wibble = mapsize, 100.0
    while step >= 2:
        h = step // 2
        c = m[0::step, 0::step]
        s = c + np.roll(c, -1, 0)
        s = s + np.roll(s, -1, 1)
        m[h::step, h::step] = s / 4 + wibble * next(draws)
        d, c = m[h::step, h::step], m[0::step, 0::step]
        m[0::step, h::step] = (d + np.roll(d, 1, 0) + c + np.roll(c, -1, 1)) / 4 + wibble * next(draws)
        m[h::step, 0::step] = (d + np.roll(d, 1, 1) + c + np.roll(c, -1, 0)) / 4 + wibble * next(draws)
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


@pytest.mark.parametrize("mapsize,decay", [(32, 3), (64, 2.5), (256, 1.4)])
def test_plasma_fractal_replays_the_reference_recursion(mapsize, decay):
    rng = _NumpyDraws(mapsize)
    ours = weather.plasma_fractal(rng, mapsize, decay)[0].double().numpy()
    assert np.allclose(ours, _diamond_square(mapsize, decay, rng.draws), atol=2e-4)


def test_plasma_fractal_statistics_and_errors():
    rng = Stream(sample_keys(0, range(16), "plasma-test", 0))
    maps = {d: weather.plasma_fractal(rng, 64, d) for d in (1.4, 2.0, 3.0)}
    for m in maps.values():
        assert torch.allclose(m.amin(dim=(1, 2)), torch.zeros(16))
        assert torch.allclose(m.amax(dim=(1, 2)), torch.ones(16))
    # a slower wibble decay keeps more fine detail: rougher maps (larger neighbour differences)
    rough = [(m - m.roll(1, 2)).abs().mean().item() for m in maps.values()]
    assert rough[0] > rough[1] > rough[2]
    with pytest.raises(ValueError, match="power of two"):
        weather.plasma_fractal(rng, 48, 2.0)


def test_fog_is_the_reference_formula_of_its_plasma():
    x = torch.full((4, 3, 32, 32), 0.3)
    strength = corruptions.get("fog").params(2, 32)[0]
    out = corruptions.apply(x, "fog", 2)
    plasma = (out * (0.3 + strength) / 0.3 - x) / strength  # invert (x + s P) * max / (max + s)
    assert torch.allclose(plasma[:, 0], plasma[:, 2], atol=1e-6)  # one grey plasma for all channels
    assert torch.allclose(plasma.amin(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5)  # the 32 px map is not cropped
    assert torch.allclose(plasma.amax(dim=(1, 2, 3)), torch.ones(4), atol=1e-5)


# --------------------------------------------------------------------------- frost

def test_synthetic_frost_textures():
    t = frost_module.procedural_textures()
    assert t.shape == (5, 3, 512, 512) and t.min() >= 0 and t.max() <= 1
    assert 0.3 < t.mean() < 0.5 and t[:, 2].mean() > t[:, 0].mean()  # pale blue
    small = frost_module.procedural_textures(2, 64)
    assert torch.equal(small, frost_module.procedural_textures.__wrapped__(2, 64))  # deterministic


def test_frost_crops_user_textures(tmp_path, monkeypatch):
    """With a coordinate texture (R = column, G = row), the frost layer reveals a contiguous in-bounds crop."""
    rows, cols = np.meshgrid(np.arange(240), np.arange(250), indexing="ij")
    tex = np.stack([cols, rows, np.full_like(rows, 7)], -1).astype(np.uint8)
    Image.fromarray(tex).save(tmp_path / "coords.png")
    monkeypatch.setenv(frost_module.FROST_DIR_ENV, str(tmp_path))
    x = torch.zeros(3, 3, 224, 224)
    c0, c1, scale = corruptions.get("frost").params(2, 224)
    layer = corruptions.apply(x, "frost", 2) / c1 * 255
    col0, row0 = layer[:, 0, 0, 0].round(), layer[:, 1, 0, 0].round()
    for b in range(3):
        assert torch.allclose(layer[b, 0], col0[b] + torch.arange(224.0).view(1, -1), atol=1e-3)
        assert torch.allclose(layer[b, 1], row0[b] + torch.arange(224.0).view(-1, 1), atol=1e-3)
        assert 0 <= col0[b] < 250 - 224 and 0 <= row0[b] < 240 - 224
    monkeypatch.setenv(frost_module.FROST_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="does not exist"):
        corruptions.apply(x, "frost", 2)


# --------------------------------------------------------------------------- snow and spatter

def test_snow_only_adds_light_to_the_blended_image(images):
    x = images[32]
    for s in (1, 5):
        loc, scale, zoom, thr, radius, sigma, weight = corruptions.get("snow").params(s, 32)
        grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        base = weight * x + (1 - weight) * torch.maximum(x, grey * 1.5 + 0.5)
        out = corruptions.apply(x, "snow", s)
        assert (out >= base.clamp(max=1) - 1e-6).all()


def test_distance_transform_matches_scipy():
    torch.manual_seed(0)
    edges = torch.rand(2, 1, 40, 50) < 0.01
    ours = weather.distance_to(edges, 20.0)
    for b in range(2):
        ref = np.minimum(ndimage.distance_transform_edt(~edges[b, 0].numpy()), 20.0)
        assert np.allclose(ours[b, 0].numpy(), ref, atol=1e-5)
    no_edges = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    assert torch.equal(weather.distance_to(no_edges, 20.0), torch.full((1, 1, 8, 8), 20.0))


def test_equalize_hist_follows_opencv():
    torch.manual_seed(0)
    x = torch.randint(3, 40, (2, 1, 16, 16)).float()
    out = weather.equalize_hist(x)
    for b in range(2):
        v = x[b].flatten().long().numpy()
        hist = np.bincount(v, minlength=256)
        first = np.flatnonzero(hist)[0]
        scale = np.float32(255.0) / np.float32(v.size - hist[first])
        lut = np.zeros(256)
        lut[first + 1:] = np.round(np.cumsum(hist[first + 1:]) * scale)
        assert np.array_equal(out[b].flatten().numpy(), lut[v])
    assert torch.equal(weather.equalize_hist(torch.full((1, 1, 4, 4), 9.0)), torch.full((1, 1, 4, 4), 9.0))


def test_canny_traces_the_outline_of_a_drop():
    x = torch.zeros(1, 1, 24, 24)
    x[..., 6:18, 8:16] = 178.0
    edges = weather.canny(x, 50, 150)[0, 0]
    inside = torch.zeros(1, 24, 24)
    inside[:, 6:18, 8:16] = 1.0
    dilate = lambda m: torch.nn.functional.max_pool2d(m, 3, 1, 1)[0].bool()  # noqa: E731
    boundary = dilate(inside) & dilate(1 - inside)  # pixels touching both the drop and the background
    assert edges.any() and not (edges & ~boundary).any()
    # every row and column crossing the drop is cut by an edge on each side
    assert edges[6:18, :12].any(1).all() and edges[6:18, 12:].any(1).all()
    assert not weather.canny(torch.full((1, 1, 8, 8), 90.0), 50, 150).any()
