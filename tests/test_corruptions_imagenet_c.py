"""ImageNet-C noise, blur and digital corruptions against the reference formulas and tables."""
import io

import matplotlib.colors
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, stats

from sparse_zoo import corruptions
from sparse_zoo.corruptions import blur, ops
from sparse_zoo.corruptions.rng import Stream, sample_keys
from conftest import cifar_test_images


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def images():
    """uint8 images: 8 CIFAR-10 test images (32 px) and 2 upscaled to 224 px."""
    x32 = cifar_test_images("*/0000.jpg", 8)
    x224 = torch.nn.functional.interpolate(x32[:2].float(), size=224, mode="bicubic", align_corners=False)
    return {32: x32, 224: x224.round().clamp(0, 255).to(torch.uint8)}


def _distortion(name, x, severity):
    return float((corruptions.apply(x, name, severity).float() - x.float()).abs().mean())


MONOTONE = {
    32: ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "zoom_blur",
         "gaussian_blur", "brightness", "contrast", "pixelate", "jpeg_compression"],
    224: ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "zoom_blur",
          "gaussian_blur", "brightness", "contrast", "pixelate", "jpeg_compression"],
}
# Not monotone in pixel distance in the reference tables themselves:
# glass_blur (a larger sigma smooths the swapped pixels: severity 1 at 32 px moves pixels more than 3),
# elastic_transform (severities 1-2 are large affine warps, 3-5 small warps plus local elastic
# displacement) and saturate (severities 1-2 desaturate, 3-5 saturate; see its own test below).


@pytest.mark.parametrize("size", [32, 224])
def test_distortion_grows_with_severity(images, size):
    for name in MONOTONE[size]:
        d = [_distortion(name, images[size], s) for s in range(1, 6)]
        assert all(a < b for a, b in zip(d, d[1:])), (name, d)


def test_saturate_desaturates_then_saturates(images):
    # the tables scale saturation by 0.3 and 0.1 at severities 1-2, then by >= 1.5 (plus a shift)
    def saturation(x):  # HSV's s = (max - min) / max, 0 where black
        return float(((x.amax(1) - x.amin(1)) / x.amax(1).clamp(min=1e-12)).mean())
    x = images[32].float() / 255
    mean_s = [saturation(corruptions.apply(x, "saturate", s)) for s in range(1, 6)]
    clean = saturation(x)
    assert mean_s[1] < mean_s[0] < clean < mean_s[2] < mean_s[3] < mean_s[4], (clean, mean_s)


def test_glass_blur_with_more_iterations_or_sigma_distorts_more(images):
    d = [_distortion("glass_blur", images[224], s) for s in range(1, 6)]
    assert d[0] < d[2] < d[4] and d[1] < d[3]


# --------------------------------------------------------------------------- noises

def test_gaussian_and_speckle_noise_std_match_the_table():
    x = torch.full((4, 3, 64, 64), 0.5)
    for size, ref in ((32, 32), (224, 224)):
        for severity in (1, 5):
            std = corruptions.get("gaussian_noise").params(severity, size)
            out = corruptions.apply(x, "gaussian_noise", severity, resolution=ref)
            # independent reference: numpy's normal through the same clipping
            expected = np.clip(0.5 + np.random.default_rng(0).normal(0, std, 10 ** 6), 0, 1).std()
            assert float(out.std()) == pytest.approx(expected, rel=0.02)
            assert float(out.mean()) == pytest.approx(0.5, abs=0.003)
            std = corruptions.get("speckle_noise").params(severity, size)
            out = corruptions.apply(x, "speckle_noise", severity, resolution=ref)
            expected = np.clip(0.5 + 0.5 * np.random.default_rng(0).normal(0, std, 10 ** 6), 0, 1).std()
            assert float(out.std()) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("level,severity,resolution", [(0.05, 5, 224), (0.9, 5, 224), (0.5, 3, 224), (0.3, 1, 224),
                                                       (0.6, 5, 32)])
def test_shot_noise_is_poisson(level, severity, resolution):
    photons = corruptions.get("shot_noise").params(severity, resolution)
    lam = level * photons  # covers both samplers: inversion below 10, PTRS above
    x = torch.full((4, 3, 100, 100), level)
    counts = corruptions.apply(x, "shot_noise", severity, resolution=resolution).double() * photons
    _check_poisson_counts(counts, lam, photons)


@pytest.mark.parametrize("level,severity,resolution", [(13, 5, 224), (230, 5, 224), (128, 1, 224), (255, 1, 224),
                                                       (153, 1, 32), (1, 3, 224)])
def test_shot_noise_on_8bit_levels_is_poisson(level, severity, resolution):
    """Images on the 8-bit grid take the table sampler (uint8 and float batches alike)."""
    photons = corruptions.get("shot_noise").params(severity, resolution)
    x = torch.full((4, 3, 100, 100), level, dtype=torch.uint8)
    out = corruptions.apply(x / 255.0, "shot_noise", severity, resolution=resolution)
    assert torch.equal(corruptions.apply(x, "shot_noise", severity, resolution=resolution), (out * 255.0).to(torch.uint8))
    _check_poisson_counts(out.double() * photons, float(torch.tensor(level / 255.0, dtype=torch.float32)) * photons,
                          photons)
    assert not corruptions.apply(torch.zeros_like(x), "shot_noise", severity, resolution=resolution).any()


def _check_poisson_counts(counts, lam, photons):
    assert torch.allclose(counts, counts.round(), atol=1e-3)  # integer counts / photons
    k = counts.round().flatten()
    if lam * 1.0 + 8 * lam ** 0.5 < photons:  # clipping at 1 is negligible: check the moments
        se = (lam / k.numel()) ** 0.5
        assert float(k.mean()) == pytest.approx(lam, abs=5 * se)
        assert float(k.var()) == pytest.approx(lam, rel=0.03)
    # chi-square against the Poisson pmf, with the clipping at 1 folding k >= photons into one bin
    values, observed = np.unique(k.numpy(), return_counts=True)
    pmf = np.where(values < photons, stats.poisson.pmf(values, lam), stats.poisson.sf(photons - 1, lam))
    keep = pmf * k.numel() > 20
    expected = pmf[keep] * k.numel()
    chi2 = (((observed[keep] - expected) ** 2) / expected).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_poisson_levels_sampler_across_rates():
    photons = 500.0  # rates up to 500 (CIFAR-C severity 1)
    levels = torch.tensor([1, 5, 20, 60, 128, 255], dtype=torch.uint8).repeat_interleave(20000).expand(2, -1)
    k = ops.poisson_levels(Stream(sample_keys(0, torch.arange(2), "poisson-test", 1)), levels, photons)
    k = k.reshape(2, 6, 20000).transpose(0, 1).reshape(6, -1).double()
    for level, draws in zip(levels[0, ::20000].tolist(), k):
        rate = float(torch.tensor(level, dtype=torch.float32) / 255.0 * photons)
        assert float(draws.mean()) == pytest.approx(rate, abs=5 * (rate / draws.numel()) ** 0.5)
        assert float(draws.var()) == pytest.approx(rate, rel=0.05)


class EveryDraw:
    """A one-sample stream whose 23-bit draws are each of the 2^23 values once (in place of ``Stream``)."""

    def uniform_ints(self, *shape):
        return torch.arange(1 << 23, dtype=torch.int32).reshape(1, *shape)


@pytest.mark.parametrize("photons", [3.0, 60.0, 500.0])
def test_poisson_levels_sampler_is_the_quantised_pmf_exactly(photons):
    """Every one of the 2^23 draws goes through the alias table: the counts are the weights, to the unit."""
    weights = ops.poisson_level_weights(photons)
    assert (weights.sum(1) == 1 << 23).all() and (weights >= 0).all()
    for level in (0, 1, 77, 255):
        k = ops.poisson_levels(EveryDraw(), torch.full((1, 1 << 23), level, dtype=torch.uint8), photons)
        assert torch.equal(torch.bincount(k.flatten().long(), minlength=weights.shape[1]), weights[level])
        rate = float(torch.tensor(level / 255.0, dtype=torch.float32)) * photons
        pmf = stats.poisson.pmf(np.arange(weights.shape[1] - 1), rate) * (1 << 23)
        assert np.abs(weights[level, :-1].numpy() - pmf).max() < 1.0 + 1e-6  # floor(2^23 CDF) differences


@pytest.mark.parametrize("name,severity,resolution", [("gaussian_noise", 1, 32), ("gaussian_noise", 5, 224),
                                                      ("speckle_noise", 1, 32), ("speckle_noise", 5, 224)])
def test_normal_noise_uint8_table_is_the_float_paths_distribution(name, severity, resolution):
    """uint8 gaussian/speckle noise samples trunc(255 clip(v)) exactly: every 2^23 draw against scipy's normal CDF."""
    from sparse_zoo.corruptions import noise
    std = corruptions.get(name).params(severity, resolution)
    table = noise._normal_alias_table(std, name == "speckle_noise", torch.device("cpu"))
    for level in (0, 1, 100, 254, 255):
        out = ops.alias_levels(EveryDraw(), torch.full((1, 1 << 23), level, dtype=torch.uint8), table, torch.uint8)
        counts = torch.bincount(out.flatten().long(), minlength=256).numpy()
        x = float(np.float32(level) / np.float32(255))
        edges = np.arange(1, 256) / 255.0  # out <= j  <=>  v < (j + 1) / 255
        if name == "speckle_noise":
            cdf = np.ones(255) if level == 0 else stats.norm.cdf((edges / x - 1) / std)
        else:
            cdf = stats.norm.cdf((edges - x) / std)
        pmf = np.diff(np.concatenate([[0.0], cdf, [1.0]])) * (1 << 23)
        assert counts.sum() == 1 << 23 and np.abs(counts - pmf).max() < 1.0 + 1e-6


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise"])
def test_normal_noise_uint8_matches_float_path_moments(name):
    """The uint8 kernel (table draws) and the float path (Box-Muller) agree in mean and spread per level."""
    x8 = torch.tensor([3, 60, 128, 200, 250], dtype=torch.uint8)[:, None, None, None].expand(-1, 3, 160, 160)
    via_table = corruptions.apply(x8, name, 4, resolution=224).double().flatten(1)
    via_float = (corruptions.apply(x8 / 255.0, name, 4, resolution=224, seed=1) * 255.0).to(torch.uint8)  # truncates
    for a, b in zip(via_table, via_float.double().flatten(1)):
        se = float(b.std()) / (b.numel() ** 0.5)
        assert float(a.mean()) == pytest.approx(float(b.mean()), abs=6 * se + 1e-9)
        assert float(a.std()) == pytest.approx(float(b.std()), rel=0.02, abs=1e-9)


def test_poisson_sampler_across_rates():
    rng = Stream(sample_keys(0, torch.arange(2), "poisson-test", 1))
    lam = torch.tensor([0.0, 0.3, 2.0, 9.99, 10.0, 25.0, 140.0, 500.0]).repeat_interleave(20000).expand(2, -1)
    k = ops.poisson(rng, lam).reshape(2, 8, 20000).transpose(0, 1).reshape(8, -1)
    for rate, draws in zip(lam[0, ::20000].tolist(), k):
        assert float(draws.mean()) == pytest.approx(rate, abs=5 * (max(rate, 1e-3) / draws.numel()) ** 0.5 + 1e-9)
        assert float(draws.var()) == pytest.approx(rate, rel=0.05, abs=1e-9)


def test_impulse_noise_flips_the_table_fraction():
    x = torch.full((4, 3, 64, 64), 0.5)
    for severity in (1, 5):
        amount = corruptions.get("impulse_noise").params(severity, 224)
        out = corruptions.apply(x, "impulse_noise", severity, resolution=224)
        assert float((out == 1).float().mean()) == pytest.approx(amount / 2, rel=0.1)
        assert float((out == 0).float().mean()) == pytest.approx(amount / 2, rel=0.1)
        assert float(((out == 0) | (out == 1) | (out == 0.5)).float().mean()) == 1.0
        x8 = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)  # the uint8 kernel: same draws, same values
        out = corruptions.apply(x8 / 255.0, "impulse_noise", severity, resolution=224)
        assert torch.equal(corruptions.apply(x8, "impulse_noise", severity, resolution=224), (out * 255).to(torch.uint8))


def test_impulse_noise_uint8_thresholds_equal_the_float_comparisons():
    """The uint8 kernel's integer thresholds flip exactly the draws the float path flips, at every table amount."""
    from sparse_zoo.corruptions import noise

    class Draws:  # the same 23-bit draws k for both paths: the float path sees (k + 0.5) / 2^23
        def __init__(self, k):
            self.k = k

        def map_uniform_ints(self, fn, width, *shape):
            return torch.stack(fn(self.k.reshape(1, *shape)), 1)

        def uniform(self, *shape):
            return ((self.k.float() + 0.5) * (1.0 / (1 << 23))).reshape(1, *shape)
    for amount in {a for table in corruptions.get("impulse_noise").tables.values() for a in table}:
        edges = [int(float(np.float32(t)) * (1 << 23)) for t in (amount, amount / 2)]
        k = torch.cat([torch.arange(e - 64, e + 64, dtype=torch.int32) for e in edges])
        x8 = torch.full((1, 1, 16, 16), 100, dtype=torch.uint8)
        ours = noise.impulse_noise_uint8(x8, amount, Draws(k))
        float_path = (noise.impulse_noise(x8 / 255.0, amount, Draws(k)) * 255).to(torch.uint8)
        assert torch.equal(ours, float_path) and (ours == 0).any() and (ours == 255).any() and (ours == 100).any()


# --------------------------------------------------------------------------- blurs

def _impulse(size=65):
    x = torch.zeros(1, 3, size, size)
    x[..., size // 2, size // 2] = 1.0
    return x


def _support(response):
    nz = (response[0, 0] > 1e-7).nonzero()
    return int((nz - response.shape[-1] // 2).abs().max())


def test_gaussian_blur_kernel_support_and_values(images):
    for severity in range(1, 6):
        sigma = corruptions.get("gaussian_blur").params(severity, 224)
        response = corruptions.apply(_impulse(), "gaussian_blur", severity, resolution=224)
        assert _support(response) == int(4 * sigma + 0.5)  # skimage/scipy truncate=4
    x = images[32].double() / 255
    for severity in (1, 5):
        sigma = corruptions.get("gaussian_blur").params(severity, 32)
        expected = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest", truncate=4.0)
        np.testing.assert_allclose(corruptions.apply(x, "gaussian_blur", severity).numpy(), expected, atol=1e-5)


def _reference_disk(radius, alias_blur):
    """make_imagenet_c.py's disk(): numpy grid, then a cv2-style 3x3 (5x5) Gaussian with reflect-101 border."""
    half, ksize = (8, 3) if radius <= 8 else (int(radius), 5)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    taps = np.exp(-((np.arange(ksize) - ksize // 2) ** 2) / (2 * alias_blur ** 2))
    taps /= taps.sum()
    return ndimage.correlate(disk, np.outer(taps, taps), mode="mirror")


def test_defocus_blur_is_the_reference_disk():
    for size in (32, 64, 224):
        for severity in range(1, 6):
            p = corruptions.get("defocus_blur").params(severity, size)
            kernel = _reference_disk(p.radius, p.alias_blur)
            response = corruptions.apply(_impulse(), "defocus_blur", severity, resolution=size)[0, 0].numpy()
            c, h = 32, kernel.shape[0] // 2
            np.testing.assert_allclose(response[c - h:c + h + 1, c - h:c + h + 1], kernel[::-1, ::-1], atol=2e-6)
            assert response.sum() == pytest.approx(kernel.sum(), abs=1e-5)
            # no subnormal weights (32 px severity 5 had 5e-46 corners: 15x slower, same output)
            weights = ops.disk_kernel(p.radius, p.alias_blur)
            assert int(((weights != 0) & (weights.abs() < torch.finfo(torch.float32).tiny)).sum()) == 0


def _reference_zoom_blur(x, zooms):
    """make_cifar_c.py's zoom_blur on an (H, W, C) float array, with scipy.ndimage.zoom."""
    h = x.shape[0]
    out = np.zeros_like(x)
    for z in zooms:
        ch = int(np.ceil(h / z))
        top = (h - ch) // 2
        img = ndimage.zoom(x[top:top + ch, top:top + ch], (z, z, 1), order=1)
        trim = (img.shape[0] - h) // 2
        out += img[trim:trim + h, trim:trim + h]
    return (x + out) / (len(zooms) + 1)


def test_zoom_blur_matches_scipy_zoom(images):
    x = images[32][:2].float() / 255
    for severity in (1, 5):
        zooms = corruptions.get("zoom_blur").params(severity, 32)
        np.testing.assert_array_equal(zooms, np.arange(1, [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1], 0.01))
        ours = corruptions.apply(x, "zoom_blur", severity)
        for i in range(2):
            ref = _reference_zoom_blur(x[i].permute(1, 2, 0).numpy(), zooms)
            np.testing.assert_allclose(ours[i].permute(1, 2, 0).numpy(), np.clip(ref, 0, 1), atol=1e-5)


@pytest.mark.parametrize("h,w,delta", [(12, 12, 1), (13, 10, 2), (20, 18, 4)])
def test_glass_blur_swaps_equal_the_sequential_loop(h, w, delta):
    offsets = torch.randint(-delta, delta, (3, 2, h, w), generator=torch.Generator().manual_seed(h))
    ours = blur.shuffle(torch.arange(h * w).expand(3, h * w), offsets[:, 0] * w + offsets[:, 1], h, w, delta)
    for i in range(3):
        x = np.arange(h * w).reshape(h, w)
        for row in range(h - delta, delta, -1):
            for col in range(w - delta, delta, -1):
                r2, c2 = row + int(offsets[i, 0, row, col]), col + int(offsets[i, 1, row, col])
                x[row, col], x[r2, c2] = x[r2, c2], x[row, col]
        np.testing.assert_array_equal(ours[i].numpy(), x.reshape(-1))


# --------------------------------------------------------------------------- digital

def test_contrast_is_the_reference_formula(images):
    x = images[32].double() / 255
    for severity in range(1, 6):
        c = corruptions.get("contrast").params(severity, 32)
        means = x.numpy().mean(axis=(2, 3), keepdims=True)
        expected = np.clip((x.numpy() - means) * c + means, 0, 1)
        np.testing.assert_allclose(corruptions.apply(x, "contrast", severity).numpy(), expected, atol=1e-6)


def _hsv_reference(x, fn):
    """skimage's rgb2hsv -> fn -> hsv2rgb, with matplotlib's independent implementation of the same formulas."""
    hsv = matplotlib.colors.rgb_to_hsv(x.permute(0, 2, 3, 1).numpy())
    fn(hsv)
    return np.clip(matplotlib.colors.hsv_to_rgb(hsv), 0, 1).transpose(0, 3, 1, 2)


def test_brightness_and_saturate_match_hsv_reference(images):
    x = images[32].double() / 255
    x[0, :, 0, :4] = torch.tensor([0.0, 1.0, 0.5, 0.2], dtype=x.dtype)  # grey pixels (hue 0): black, white, greys
    for severity in range(1, 6):
        shift = corruptions.get("brightness").params(severity, 32)
        expected = _hsv_reference(x, lambda hsv: hsv.__setitem__((..., 2), np.clip(hsv[..., 2] + shift, 0, 1)))
        np.testing.assert_allclose(corruptions.apply(x, "brightness", severity).numpy(), expected, atol=1e-5)
        p = corruptions.get("saturate").params(severity, 224)
        expected = _hsv_reference(x, lambda hsv: hsv.__setitem__((..., 1), np.clip(hsv[..., 1] * p.scale + p.shift, 0, 1)))
        np.testing.assert_allclose(corruptions.apply(x, "saturate", severity, resolution=224).numpy(), expected,
                                   atol=1e-5)


def _pil(x):
    return [Image.fromarray(a) for a in x.permute(0, 2, 3, 1).numpy()]


@pytest.mark.parametrize("size", [32, 224])
def test_pixelate_equals_pil_box_resize(images, size):
    for severity in (1, 2, 3, 5):  # 224 px: 2 and 5 are integer factors (strided runs), 1 and 3 are not
        c = corruptions.get("pixelate").params(severity, size)
        s = int(size * c)
        expected = np.stack([np.array(im.resize((s, s), Image.BOX).resize((size, size), Image.BOX))
                             for im in _pil(images[size])])
        for batch in (images[size], images[size].contiguous(memory_format=torch.channels_last)):
            ours = corruptions.apply(batch, "pixelate", severity).permute(0, 2, 3, 1).numpy()
            np.testing.assert_array_equal(ours, expected)
        # the float path (PIL passes as matrices) lands on the same 8-bit values
        ours = corruptions.apply(images[size] / 255.0, "pixelate", severity)
        np.testing.assert_array_equal(ops.to_uint8(ours).permute(0, 2, 3, 1).numpy(), expected)


@pytest.mark.parametrize("size", [32, 224])
def test_jpeg_equals_pil_at_the_table_quality(images, size):
    assert corruptions.get("jpeg_compression").tables[224] == (25, 18, 15, 10, 7)
    for severity in (1, 5):
        quality = corruptions.get("jpeg_compression").params(severity, size)
        expected = []
        for im in _pil(images[size]):
            buffer = io.BytesIO()
            im.save(buffer, "JPEG", quality=quality)
            expected.append(np.array(Image.open(buffer)))
        ours = corruptions.apply(images[size], "jpeg_compression", severity)
        assert ours.is_contiguous() and torch.equal(
            ours, ops.to_uint8(corruptions.apply(images[size] / 255.0, "jpeg_compression", severity)))
        last = corruptions.apply(images[size].contiguous(memory_format=torch.channels_last), "jpeg_compression",
                                 severity)
        assert last.is_contiguous(memory_format=torch.channels_last) and torch.equal(last, ours)
        with torch.inference_mode():  # the result is made and filled in inference mode too
            assert torch.equal(corruptions.apply(images[size], "jpeg_compression", severity), ours)
        ours = ours.permute(0, 2, 3, 1).numpy()
        diff = np.abs(ours.astype(int) - np.stack(expected))
        assert diff.max() <= 1 and diff.mean() < 0.01


def test_remap_matches_scipy_map_coordinates():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 16, 20, generator=g, dtype=torch.float64)
    rows = torch.rand(1, 16, 20, generator=g, dtype=torch.float64) * 22 - 3
    cols = torch.rand(1, 16, 20, generator=g, dtype=torch.float64) * 26 - 3
    ours = ops.remap(x.float(), rows, cols, "reflect")[0, 0].numpy()
    expected = ndimage.map_coordinates(x[0, 0].numpy(), [rows[0].numpy(), cols[0].numpy()], order=1, mode="reflect")
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    ours = ops.remap(x.float(), rows, cols, "mirror")[0, 0].numpy()
    expected = ndimage.map_coordinates(x[0, 0].numpy(), [rows[0].numpy(), cols[0].numpy()], order=1, mode="mirror")
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_elastic_severity_one_at_32px_is_a_pure_affine_warp(images):
    # alpha = sigma = 0 in make_cifar_c.py's first row: only the random affine is left
    x = images[32][:2].float() / 255
    out = corruptions.apply(x, "elastic_transform", 1)
    p = corruptions.get("elastic_transform").params(1, 32)
    assert p.alpha == 0 and p.affine == pytest.approx(32 * 0.08)
    # rebuild the same affine from the same stream draws and warp with scipy (mirror = BORDER_REFLECT_101)
    rng = Stream(sample_keys(0, torch.arange(2), "elastic_transform", 1))
    jitter = rng.uniform(3, 2, low=-p.affine, high=p.affine).double()
    src = torch.tensor([[16.0 + 10, 16 + 10], [16 + 10, 16 - 10], [16 - 10, 16 - 10]], dtype=torch.float64)
    matrices = ops.affine_from_points(src.expand(2, 3, 2), src + jitter)
    for i in range(2):
        inv = np.linalg.inv(np.vstack([matrices[i].numpy(), [0, 0, 1]]))
        rows, cols = np.mgrid[0:32, 0:32].astype(np.float64)
        src_x = inv[0, 0] * cols + inv[0, 1] * rows + inv[0, 2]
        src_y = inv[1, 0] * cols + inv[1, 1] * rows + inv[1, 2]
        expected = np.stack([ndimage.map_coordinates(x[i, c].numpy(), [src_y, src_x], order=1, mode="mirror")
                             for c in range(3)])
        np.testing.assert_allclose(out[i].numpy(), np.clip(expected, 0, 1), atol=1e-4)


def test_elastic_tables_follow_the_reference():
    e = corruptions.get("elastic_transform")
    assert e.params(1, 224) == pytest.approx((244 * 2, 244 * 0.7, 244 * 0.1))
    assert e.params(5, 64) == pytest.approx((64 * 0.16, 64 * 0.03, 64 * 0.02))
    assert e.params(2, 32) == pytest.approx((32 * 0.05, 32 * 0.2, 32 * 0.07))
