"""ImageNet-C-bar corruptions: CSV severities, monotonicity, and per-pixel reference formulas."""
import math

import numpy as np
import pytest
import torch

from sparse_zoo import corruptions
from sparse_zoo.corruptions import cbar
from sparse_zoo.corruptions.rng import Stream, sample_keys
from conftest import cifar_test_pair

NAMES = corruptions.names("imagenet-c-bar")

# imagenet_c_bar.csv and cifar10_c_bar.csv of facebookresearch/augmentation-corruption
IMAGENET_CSV = {
    "caustic_refraction": [2.35, 3.2, 4.9, 6.6, 9.15], "inverse_sparkles": [1.0, 2.0, 4.0, 9.0, 10.0],
    "sparkles": [1.0, 2.0, 3.0, 5.0, 6.0], "perlin_noise": [4.6, 5.2, 5.8, 7.6, 8.8],
    "blue_noise_sample": [0.8, 1.6, 2.4, 4.0, 5.6], "plasma_noise": [4.75, 7.0, 8.5, 9.25, 10.0],
    "checkerboard_cutout": [2.0, 3.0, 4.0, 5.0, 6.0], "cocentric_sine_waves": [3.0, 5.0, 8.0, 9.0, 10.0],
    "single_frequency_greyscale": [1.0, 1.5, 2.0, 4.5, 5.0], "brownish_noise": [1.0, 2.0, 3.0, 4.0, 5.0]}
CIFAR_CSV = {
    "blue_noise_sample": [0.7, 1.4, 2.1, 3.5, 4.2], "checkerboard_cutout": [1.0, 2.0, 3.0, 4.0, 5.0],
    "inverse_sparkles": [1.0, 1.5, 2.5, 4.5, 5.0], "brownish_noise": [2.5, 4.0, 5.5, 6.5, 7.0],
    "sparkles": [0.7, 3.5, 5.6, 6.3, 7.0]}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images():
    """Eight CIFAR-10 test images (32 px) and a 224 px bicubic enlargement of two, in [0, 1]."""
    return cifar_test_pair("*/0005.jpg", 8)


def _draws(name, severity, n, seed=0):
    """The Stream that ``apply`` hands to ``name`` for samples 0..n-1."""
    return Stream(sample_keys(seed, range(n), name, severity))


@pytest.mark.parametrize("name", NAMES)
def test_tables_are_the_reference_csv_severities(name):
    c = corruptions.get(name)
    assert list(c.tables[224]) == IMAGENET_CSV[name]
    assert list(c.tables.get(32, [])) == CIFAR_CSV.get(name, [])
    assert c.params(3, 500) == IMAGENET_CSV[name][2] and c.params(3, 40) == CIFAR_CSV.get(name, IMAGENET_CSV[name])[2]


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("name", NAMES)
def test_distortion_grows_with_severity(images, name, size):
    x = images[size]
    c = corruptions.get(name)
    # the same random draws at every severity, so only the severity changes
    d = [(c.fn(x.clone(), c.params(s, size), _draws(name, 0, len(x))).clamp(0, 1) - x).abs().mean().item()
         for s in range(1, 6)]
    assert all(a < b for a, b in zip(d, d[1:])), d


@pytest.mark.parametrize("name", NAMES)
def test_dtype_shape_range_and_batch_independence(images, name):
    x = images[32][:4]
    u8 = (x * 255).round().to(torch.uint8)
    out8 = corruptions.apply(u8, name, 4, seed=1)
    assert out8.dtype == torch.uint8 and out8.shape == u8.shape
    out = corruptions.apply(x, name, 4, seed=1)
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)
    perm = torch.tensor([3, 1, 0, 2])
    assert torch.allclose(corruptions.apply(x[perm], name, 4, seed=1, sample_ids=perm), out[perm], atol=1e-5)
    assert torch.allclose(corruptions.apply(x[2:], name, 4, seed=1, sample_ids=[2, 3]), out[2:], atol=1e-5)
    assert not torch.allclose(corruptions.apply(x, name, 4, seed=2), out)
    # non-square images work too
    assert corruptions.apply(torch.rand(2, 3, 20, 28), name, 4).shape == (2, 3, 20, 28)


# --------------------------------------------------------------------------- reference formulas

@pytest.mark.parametrize("severity", [1, 5])
def test_single_frequency_is_a_plane_wave_of_the_csv_amplitude(severity):
    x = torch.full((3, 3, 40, 40), 0.5)
    out = corruptions.apply(x, "single_frequency_greyscale", severity)
    s = IMAGENET_CSV["single_frequency_greyscale"][severity - 1]
    p = cbar.single_frequency_params(_draws("single_frequency_greyscale", severity, 3), s)
    amplitude = s * 196 / 10 / 255
    assert p["amplitude"] == pytest.approx(amplitude)
    ys, xs = np.mgrid[0:40, 0:40]
    for b in range(3):
        fx, fy, phase = (float(p[k][b]) for k in ("freq_x", "freq_y", "phase"))
        assert abs(fy) <= abs(fx) or abs(fx) <= abs(fy)  # one is the magnitude, the other within it
        assert max(abs(fx), abs(fy)) <= math.pi
        wave = amplitude * np.sin(xs * fx + ys * fy + phase)
        assert np.allclose(out[b] - 0.5, wave[None], atol=1e-5)


def _checkerboard_reference(image, angle, scale, grid):
    """The reference's per-pixel mask_kernel with Python indexing (negative indices wrap)."""
    out = image.copy()
    for y in range(image.shape[1]):
        for x in range(image.shape[2]):
            nx = (math.cos(angle) * y + math.sin(angle) * x) / scale
            ny = (-math.sin(angle) * y + math.cos(angle) * x) / scale
            if not (int(nx % 2) != int(ny % 2) or not grid[int(nx), int(ny)]):
                out[:, y, x] = 128 / 255
    return out


@pytest.mark.parametrize("size,severity", [(32, 5), (224, 3)])
def test_checkerboard_geometry_matches_the_reference(size, severity):
    x = torch.rand(2, 3, size, size)
    out = corruptions.apply(x, "checkerboard_cutout", severity)
    s = corruptions.get("checkerboard_cutout").params(severity, size)
    p = cbar.checkerboard_params(_draws("checkerboard_cutout", severity, 2), s, size)
    for b in range(2):
        scale = float(p["scale"][b])
        assert 0.1 * size <= scale <= 0.25 * size
        g = int(4 * size // scale)
        assert int(p["cells"][b]) == g
        ref = _checkerboard_reference(x[b].numpy(), float(p["angle"][b]), scale, p["grid"][b, :g, :g].numpy())
        mismatch = (np.abs(out[b].numpy() - ref).max(0) > 1e-6).mean()
        assert mismatch < 0.003  # float32 vs float64 at square borders


def test_checkerboard_cuts_the_csv_fraction_of_one_colour():
    x = torch.ones(64, 1, 32, 32)
    for severity, s in enumerate(CIFAR_CSV["checkerboard_cutout"], 1):
        grey = (corruptions.apply(x, "checkerboard_cutout", severity) == 128 / 255).float().mean().item()
        assert grey == pytest.approx(s / 10 / 2, abs=0.04)  # half the squares, each cut with p = s / 10


def _sparkle_reference(image, centre, radius_lengths, amount, colour, inverse):
    """The reference's per-pixel sparkle kernel (with image values in [0, 1])."""
    out = image.copy()
    rays = len(radius_lengths)
    for y in range(image.shape[1]):
        for x in range(image.shape[2]):
            dp = np.array([y, x]) - centre
            dist = np.linalg.norm(dp)
            d = (np.arctan2(dp[1], dp[0]) + np.pi) / (2 * np.pi) * rays
            i = int(d)
            f = d - i
            length = radius_lengths[i % rays] + f * (radius_lengths[(i + 1) % rays] - radius_lengths[i % rays])
            g = (length ** 2 / (dist ** 2 + 1e-4)) ** ((100 - amount) / 50.0)
            f = np.clip((1 - (f - 0.5) ** 2) * g, 0, 1)
            v = image[:, y, x]
            out[:, y, x] = colour + f * (v - colour) if inverse else v + f * (colour - v)
    return out


def test_sparkles_match_the_per_pixel_reference():
    x = torch.rand(2, 3, 24, 24)
    out = corruptions.apply(x, "sparkles", 5)  # a 24 px image uses the CIFAR table
    s = CIFAR_CSV["sparkles"][4]
    p = cbar.sparkles_params(_draws("sparkles", 5, 2), s, 24)
    for b in range(2):
        ref = x[b].numpy().astype(np.float64)
        for k in range(5):
            rays = int(p["rays"][b, k])
            assert 50 <= rays < 200
            ref = _sparkle_reference(ref, p["centres"][b, k].double().numpy(),
                                     p["lengths"][b, k, :rays].double().numpy(), 50, 1.0, inverse=False)
        assert np.allclose(out[b].numpy(), np.clip(ref, 0, 1), atol=1e-4)


def test_inverse_sparkles_match_the_per_pixel_reference():
    x = torch.rand(2, 3, 24, 24)
    out = corruptions.apply(x, "inverse_sparkles", 4)
    s = CIFAR_CSV["inverse_sparkles"][3]
    p = cbar.inverse_sparkles_params(_draws("inverse_sparkles", 4, 2), s, 24)
    assert p["exponent"] == pytest.approx(s * 65 / 10 / 50)  # amount = 100 - 6.5 s
    for b in range(2):
        rays = int(p["rays"][b])
        ref = _sparkle_reference(x[b].numpy().astype(np.float64), p["centre"][b].double().numpy(),
                                 p["lengths"][b, :rays].double().numpy(), 100 - s * 6.5, 1.0, inverse=True)
        assert np.allclose(out[b].numpy(), np.clip(ref, 0, 1), atol=1e-4)


def _plasma_reference(y, x, rand, iters, sharp, scale):
    """The reference's plasma kernel, including its i[3] bookkeeping."""
    x, y = x / scale, y / scale
    i = np.array([1.0, 1.0, 1.0, 0.0])
    for _ in range(iters):
        r = np.array([np.cos(y * i[0] - i[3] + rand / i[1]), np.sin(x * i[0] - i[3] + rand / i[1])]) / i[2]
        r += np.array([-r[1], r[0]]) * 0.3
        x += r[0]
        y += r[1]
        i *= np.array([1.93, 1.15, (2.25 - sharp), rand * i[1]])
    return [np.sin(x - rand), np.sin((x + y + np.sin(rand)) * 0.5), np.sin(y + rand)]


def test_plasma_matches_the_per_pixel_reference():
    p = cbar.plasma_params(_draws("plasma_noise", 1, 3), 224)
    ours = cbar.plasma(p, 12, 12).double().numpy()
    for b in range(3):
        args = [float(p["time"][b]), int(p["iterations"][b]), float(p["sharpness"][b]), float(p["scale"][b])]
        ref = np.array([[_plasma_reference(y, x, *args) for x in range(12)] for y in range(12)]).transpose(2, 0, 1)
        assert np.allclose(ours[b], ref, atol=1e-4)


def _perlin_reference(perm, g, x, y):
    """PerlinNoiseGenerator.noise with the doubled tables p[B + i] = p[i]."""
    p = np.concatenate([perm, perm, perm[:2]])
    t = x + 4096
    bx0, rx0 = int(t) % 256, t % 1
    bx1, rx1 = (bx0 + 1) % 256, t % 1 - 1
    t = y + 4096
    by0, ry0 = int(t) % 256, t % 1
    by1, ry1 = (by0 + 1) % 256, t % 1 - 1
    i, j = p[bx0], p[bx1]
    b00, b10, b01, b11 = p[i + by0], p[j + by0], p[i + by1], p[j + by1]
    sx, sy = rx0 ** 2 * (3 - 2 * rx0), ry0 ** 2 * (3 - 2 * ry0)
    a = rx0 * g[b00, 0] + ry0 * g[b00, 1]
    a += sx * (rx1 * g[b10, 0] + ry0 * g[b10, 1] - a)
    b = rx0 * g[b01, 0] + ry1 * g[b01, 1]
    b += sx * (rx1 * g[b11, 0] + ry1 * g[b11, 1] - b)
    return 1.5 * (a + sy * (b - a))


def test_perlin_noise_matches_the_per_pixel_reference():
    x = torch.rand(2, 3, 16, 16)
    out = corruptions.apply(x, "perlin_noise", 2)
    perm, g = cbar.perlin_tables(_draws("perlin_noise", 2, 2))
    assert sorted(perm[0].tolist()) == list(range(256))
    assert torch.allclose(g.norm(dim=-1), torch.ones(2, 256))
    alpha = IMAGENET_CSV["perlin_noise"][1] * 0.05
    period = 32 * 16 / 224
    for b in range(2):
        pb, gb = perm[b].numpy(), g[b].double().numpy()
        octaves = (1, 2, 4, 8, 16)
        turb = np.array([[sum(abs(_perlin_reference(pb, gb, f * y / period, f * x / period)) / f for f in octaves)
                          for x in range(16)] for y in range(16)])
        ref = (1 - alpha) * x[b].numpy() + alpha * np.clip(0.5 * turb + 0.5, 0, 1)
        assert np.allclose(out[b].numpy(), ref, atol=1e-4)


def test_perlin_shuffle_is_the_references_biased_swap():
    """Replaying the swaps with j drawn from all 256 positions (not 0..i) gives the table."""
    rng = _draws("perlin_noise", 1, 2)
    perm, _ = cbar.perlin_tables(rng)
    replay = _draws("perlin_noise", 1, 2)
    replay.integers(0, 512, 256, 2)  # the gradient draws come first
    swaps = replay.integers(0, 256, 256)
    for b in range(2):
        p = list(range(256))
        for i in range(255, -1, -1):
            j = int(swaps[b, i])
            p[i], p[j] = p[j], p[i]
        assert perm[b].tolist() == p


def test_refraction_closed_form_matches_the_rotation_matrix():
    torch.manual_seed(0)
    gr, gc = torch.randn(50, dtype=torch.float64) * 0.5, torch.randn(50, dtype=torch.float64) * 0.5
    gr[0], gc[0] = 0.01, 0.0  # nearly flat: passes straight through
    rows, cols = cbar.refraction_offsets(gr, gc, 4.0, 10.0)
    for k in range(50):
        n = np.array([gr[k].item(), gc[k].item(), 1.0])
        n /= np.linalg.norm(n)
        incident = np.array([0.0, 0.0, 1.0])
        if abs(incident @ n) >= 1 - 1e-3:
            expected = incident
        else:
            out_angle = np.arcsin(np.sin(np.arccos(incident @ n)) / 4.0)
            spectator = np.cross(incident, n)
            spectator /= np.linalg.norm(spectator)
            rotation = np.stack((n, np.cross(n, spectator), spectator))
            expected = np.linalg.inv(rotation) @ np.array([np.cos(out_angle), np.sin(out_angle), 0.0])
        expected = np.round(expected * 10.0, 3)
        assert rows[k].item() == pytest.approx(expected[0], abs=1.1e-3)
        assert cols[k].item() == pytest.approx(expected[1], abs=1.1e-3)


def test_caustic_light_stays_within_the_reference_range():
    c = cbar.caustics(torch.tensor([0.5, 1.9]), torch.tensor([200.0, 250.0]), 40, 40)
    assert c.shape == (2, 40, 40) and c.min() >= 0 and c.max() <= 1 and c.std() > 0


@pytest.mark.parametrize("name,maxval,severity", [("brownish_noise", 64, 1), ("cocentric_sine_waves", 128, 5)])
def test_additive_noise_amplitude(name, maxval, severity):
    x = torch.full((4, 3, 32, 32), 0.5)
    s = corruptions.get(name).params(severity, 32)
    amplitude = s * maxval / 10 / 255
    residual = corruptions.apply(x, name, severity) - 0.5
    if name == "brownish_noise":  # unit-std noise per channel (the whole square map is kept)
        std = residual.flatten(2).std(dim=2, correction=0)
        assert torch.allclose(std, torch.full_like(std, amplitude), rtol=0.02)
    else:  # a sawtooth in [-1/2, 1/2) times the amplitude
        assert residual.min() >= -amplitude / 2 - 1e-6 and residual.max() < amplitude / 2
        assert residual.max() > 0.4 * amplitude and residual.min() < -0.4 * amplitude


def test_blue_noise_sample_drops_the_gaussian_share_of_pixels():
    x = torch.ones(16, 1, 64, 64)
    for severity in (1, 5):
        threshold = IMAGENET_CSV["blue_noise_sample"][severity - 1] * 0.3 - 2.5
        dropped = (corruptions.apply(x, "blue_noise_sample", severity, resolution=224) == 0).float().mean().item()
        expected = 0.5 * (1 + math.erf(threshold / math.sqrt(2)))
        assert dropped == pytest.approx(expected, abs=0.02)
