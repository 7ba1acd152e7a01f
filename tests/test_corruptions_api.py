"""The corruption API: registry, apply(), table lookup, reproducibility and bad input."""
import numpy as np
import pytest
import torch

from sparse_zoo import corruptions

# the corruptions of noise.py, blur.py and digital.py
MINE = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "glass_blur", "zoom_blur",
        "gaussian_blur", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"]
RANDOM = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "elastic_transform"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch():
    """Six smooth 32 px RGB images in [0, 1] (smooth so that blurs change them measurably)."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(6, 3, 36, 36, generator=g), 5, 1)
    return (x - x.amin((1, 2, 3), keepdim=True)) / (x.amax((1, 2, 3), keepdim=True) - x.amin((1, 2, 3), keepdim=True))


def test_suites_name_registered_corruptions():
    assert corruptions.names("cifar-c") == corruptions.names("imagenet-c") + corruptions.names("imagenet-c-extra")
    assert len(corruptions.names("cifar-c")) == 19
    for name in MINE:
        assert name in corruptions.names("cifar-c")
        assert sorted(corruptions.get(name).tables) == [32, 64, 224]


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="gaussian_noise"):
        corruptions.get("gausian_noise")
    with pytest.raises(ValueError, match="cifar-c"):
        corruptions.names("cifar")


@pytest.mark.parametrize("name", MINE)
def test_dtype_shape_and_range(batch, name):
    for images in (batch, batch.double(), (batch * 255).round().to(torch.uint8)):
        out = corruptions.apply(images, name, 3)
        assert out.dtype == images.dtype and out.shape == images.shape and out.device == images.device
        if out.is_floating_point():
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and not out.isnan().any()


@pytest.mark.parametrize("name", MINE)
def test_a_sample_does_not_depend_on_its_batch(batch, name):
    ids = torch.tensor([10, 11, 12, 13, 14, 15])
    full = corruptions.apply(batch, name, 4, seed=7, sample_ids=ids)
    perm = torch.tensor([3, 5, 0, 2, 1, 4])
    shuffled = corruptions.apply(batch[perm], name, 4, seed=7, sample_ids=ids[perm])
    torch.testing.assert_close(shuffled, full[perm], atol=2e-5, rtol=0)
    pair = corruptions.apply(batch[2:4], name, 4, seed=7, sample_ids=ids[2:4])
    torch.testing.assert_close(pair, full[2:4], atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", corruptions.names("cifar-c"))
def test_cpu_chunks_give_the_whole_batch_result(batch, name, monkeypatch):
    """``apply`` runs CPU batches in chunks of ``cpu_chunk`` elements (per corruption): the result must not change."""
    extra = corruptions.get(name).extra
    for images in (batch, (batch * 255).round().to(torch.uint8)):
        monkeypatch.setitem(extra, "cpu_chunk", 1 << 40)
        whole = corruptions.apply(images, name, 4, seed=3)
        monkeypatch.setitem(extra, "cpu_chunk", batch[0].numel())  # one float image, two uint8 ones per call
        torch.testing.assert_close(corruptions.apply(images, name, 4, seed=3), whole, atol=2e-5, rtol=0)


def test_cpu_chunk_may_depend_on_the_parameters(batch, monkeypatch):
    """A callable ``cpu_chunk`` gets the severity's parameters and sizes the chunks by its answer."""
    extra, seen = corruptions.get("defocus_blur").extra, []
    whole = corruptions.apply(batch, "defocus_blur", 2)

    def chunk(p):
        seen.append(p)
        return batch[0].numel()
    monkeypatch.setitem(extra, "cpu_chunk", chunk)
    torch.testing.assert_close(corruptions.apply(batch, "defocus_blur", 2), whole, atol=2e-5, rtol=0)
    assert seen == [corruptions.get("defocus_blur").params(2, batch.shape[-1], None)]


def test_empty_batches_come_back_empty():
    for name in sorted(corruptions.REGISTRY):
        for images in (torch.zeros(0, 3, 32, 32), torch.zeros(0, 3, 32, 32, dtype=torch.uint8)):
            out = corruptions.apply(images, name, 2)
            assert out.shape == images.shape and out.dtype == images.dtype
    with pytest.raises(ValueError, match="severity"):
        corruptions.apply(torch.zeros(0, 3, 32, 32), "contrast", 6)  # still validated


@pytest.mark.parametrize("name", RANDOM)
def test_seed_and_sample_id_change_the_draws(batch, name):
    a = corruptions.apply(batch[:2], name, 5, seed=0)
    assert not torch.equal(a, corruptions.apply(batch[:2], name, 5, seed=1))
    assert not torch.equal(a, corruptions.apply(batch[:2], name, 5, seed=0, sample_ids=[5, 6]))
    assert torch.equal(a, corruptions.apply(batch[:2], name, 5, seed=0))


def test_closest_table_rule():
    gaussian = corruptions.get("gaussian_noise")
    assert gaussian.table_for(40)[0] == 32
    assert gaussian.table_for(100)[0] == 64
    assert gaussian.table_for(150)[0] == 224
    assert gaussian.table_for(512)[0] == 224
    assert gaussian.params(5, 32) == 0.10 and gaussian.params(5, 224) == 0.38
    assert gaussian.params(5, 32, resolution=224) == 0.38
    with pytest.raises(ValueError, match="no table for resolution 100"):
        gaussian.params(1, 32, resolution=100)


def test_resolution_override_picks_the_table(batch):
    # brightness has no randomness: the 32 px image with the 224 px table equals brightness at shift 0.5
    out = corruptions.apply(batch, "brightness", 5, resolution=224)
    v = batch.amax(1, keepdim=True)
    torch.testing.assert_close(out, (batch * ((v + 0.5).clamp(max=1) / v)).clamp(0, 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("severity", [0, 6, 2.0, True, "3"])
def test_bad_severity(batch, severity):
    with pytest.raises(ValueError, match="severity"):
        corruptions.apply(batch, "contrast", severity)


def test_bad_images():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        corruptions.apply(torch.rand(3, 32, 32), "contrast", 1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        corruptions.apply(torch.rand(1, 2, 32, 32), "contrast", 1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        corruptions.apply([[0.5]], "contrast", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corruptions.apply(torch.rand(1, 3, 8, 8) * 255, "contrast", 1)
    with pytest.raises(ValueError, match="uint8 or float"):
        corruptions.apply(torch.zeros(1, 3, 8, 8, dtype=torch.int32), "contrast", 1)
    with pytest.raises(ValueError, match="sample_ids"):
        corruptions.apply(torch.rand(2, 3, 8, 8), "gaussian_noise", 1, sample_ids=[1, 2, 3])
    with pytest.raises(ValueError, match="depth"):
        corruptions.apply(torch.rand(2, 3, 8, 8), "contrast", 1, depth=torch.rand(2, 1, 4, 4))


def test_saturate_needs_colour():
    with pytest.raises(ValueError, match="RGB"):
        corruptions.apply(torch.rand(1, 1, 8, 8), "saturate", 1)


def test_greyscale_images_work(batch):
    grey = batch[:, :1]
    for name in ("gaussian_noise", "contrast", "brightness", "jpeg_compression", "defocus_blur", "zoom_blur"):
        assert corruptions.apply(grey, name, 2).shape == grey.shape


def test_input_is_not_modified(batch):
    before = batch.clone()
    for name in MINE:
        corruptions.apply(batch, name, 5)
    assert torch.equal(batch, before)


def _tiny_folder(root, size=16):
    from PIL import Image
    g = torch.Generator().manual_seed(1)
    for c, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            image = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(image).save(root / cls / f"{c}{i}.png")
    return root


def test_corrupt_command_writes_the_cifar_c_layout(tmp_path):
    import numpy as np

    from sparse_zoo.cli import main
    from sparse_zoo.data import CorruptedArrays, ImageFolder
    src = _tiny_folder(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["corrupt", str(src), str(out), "--format", "npy", "--corruptions", "shot_noise", "contrast",
                 "--batch-size", "4", "--seed", "3"]) == 0
    clean = torch.stack([ImageFolder(src)[i][0] for i in range(6)])
    array, labels = np.load(out / "shot_noise.npy"), np.load(out / "labels.npy")
    assert array.shape == (30, 16, 16, 3) and array.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1] * 5
    for severity in (1, 5):
        expected = corruptions.apply(clean, "shot_noise", severity, seed=3)
        assert np.array_equal(array[(severity - 1) * 6:severity * 6], expected.permute(0, 2, 3, 1).numpy())
    assert len(CorruptedArrays(out, "contrast", 2)) == 6
    assert sorted(p.name for p in out.iterdir()) == ["contrast.npy", "labels.npy", "shot_noise.npy"]


def test_corrupt_command_writes_the_imagenet_c_layout_and_resumes(tmp_path):
    from PIL import Image

    from sparse_zoo.cli import main
    src = _tiny_folder(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["corrupt", str(src), str(out), "--corruptions", "pixelate", "--severities", "2", "4"]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.JPEG"))
    assert files == [f"pixelate/{s}/{c}/{n}.JPEG" for s in (2, 4) for c, n in
                     [("cat", "00"), ("cat", "01"), ("cat", "02"), ("dog", "10"), ("dog", "11"), ("dog", "12")]]
    image = Image.open(out / "pixelate/4/dog/11.JPEG")
    assert image.format == "JPEG" and image.size == (16, 16)
    stamp = (out / "pixelate/2/cat/00.JPEG").stat().st_mtime_ns
    assert main(["corrupt", str(src), str(out), "--corruptions", "pixelate", "--severities", "2", "4"]) == 0
    assert (out / "pixelate/2/cat/00.JPEG").stat().st_mtime_ns == stamp  # complete sets are kept


def test_corrupt_command_rejects_bad_arguments_before_writing(tmp_path, capsys):
    from sparse_zoo.cli import main
    src = _tiny_folder(tmp_path / "in")
    for extra in (["--severities", "6"], ["--corruptions", "no_such"], ["--format", "npy", "--severities", "1"]):
        with pytest.raises(SystemExit) as exc:
            main(["corrupt", str(src), str(tmp_path / "out"), *extra])
        assert exc.value.code == 2 and "sparse-zoo corrupt: error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode,numpy_mode", [("mirror", "reflect"), ("reflect", "symmetric"), ("nearest", "edge"),
                                             ("wrap", "wrap"), ("constant", "constant")])
@pytest.mark.parametrize("widths", [(1, 2, 3, 0), (0, 0, 0, 0), (8, 10, 8, 7), (10, 12, 9, 30)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_pad_equals_numpy_pad(mode, numpy_mode, widths, dtype):
    """Both of ops.pad's routes (torch's own padding, index gathering for the rest) against numpy.pad."""
    from sparse_zoo.corruptions import ops
    x = (torch.rand(2, 3, 9, 11) * 255).to(dtype)
    left, right, top, bottom = widths
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode=numpy_mode)
    assert np.array_equal(ops.pad(x, left, right, top, bottom, mode).numpy(), expected)



@pytest.mark.parametrize("op", [torch.lt, torch.le, torch.gt, torch.ge, torch.eq])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.uint8])
def test_compare_gives_the_comparison_as_zeros_and_ones(op, dtype):
    """ops.compare against the bool comparison, for scalar and broadcast tensor operands."""
    from sparse_zoo.corruptions import ops
    a = torch.randint(0, 6, (2, 3, 4, 5)).to(dtype)
    b = torch.randint(0, 6, (2, 1, 4, 5)).to(dtype)
    for other in (3, b):
        out = ops.compare(op, a, other)
        assert out.dtype == dtype and out.shape == a.shape
        assert torch.equal(out, op(a, other).to(dtype))
    assert torch.equal(ops.compare(op, a, b, torch.int32), op(a, b).to(torch.int32))


@pytest.mark.parametrize("threshold", [0.69, 0.8, 0.0, -0.25])
def test_zero_below_equals_where(threshold):
    """ops.zero_below keeps values equal to the threshold (in float32) and zeroes those below."""
    from sparse_zoo.corruptions import ops
    x = torch.cat((torch.randn(1000), torch.full((5,), threshold), torch.tensor([-1.0, 2.0])))
    assert torch.equal(ops.zero_below(x, threshold), torch.where(x < threshold, 0.0, x))


def test_truncate_uint8_equals_the_direct_cast():
    """ops.truncate_uint8 (int32 blocks on CPU) against .to(uint8), across a block boundary and on a strided view."""
    from sparse_zoo.corruptions import ops
    x = torch.rand(2, 3, 300, 500) * 255.0  # 900,000 elements: two blocks of 2^19
    x.view(-1)[:4] = torch.tensor([0.0, 254.9999, 255.0, 127.5])
    assert torch.equal(ops.truncate_uint8(x), x.to(torch.uint8))
    view = x.permute(0, 2, 3, 1)
    assert torch.equal(ops.truncate_uint8(view), view.to(torch.uint8))

ALL = sorted({n for suite in ("cifar-c", "imagenet-c-bar", "3dcc") for n in corruptions.names(suite)})


@pytest.mark.parametrize("name", ALL)
def test_apply_never_writes_to_or_returns_its_input(batch, name):
    """The caller's batch is left as it was and the result is a new tensor (float32 input included,
    which ``apply`` hands to the corruption without a conversion)."""
    for images in (batch[:2].clone(), (batch[:2] * 255).round().to(torch.uint8)):
        before = images.clone()
        for severity in (1, 5):
            out = corruptions.apply(images, name, severity)
            assert torch.equal(images, before)
            assert out.untyped_storage().data_ptr() != images.untyped_storage().data_ptr()
