"""Datasets in their exact on-disk layouts (written by the tests), on-the-fly corruption, batching."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

import sparse_zoo.data as data
from sparse_zoo import corruptions
from sparse_zoo.bench.suites import get_suite

NOISE = "data_test_noise"
if NOISE not in corruptions.REGISTRY:
    @corruptions.register(NOISE, [0.1, 0.2, 0.3, 0.4, 0.5])
    def _noise(x, p, rng, depth=None):
        return x + p * rng.normal(*x.shape[1:])


def images(n, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def write_folder(root, classes, per_class, size=(32, 32), ext="png", seed=0):
    arrays = {}
    for i, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            a = images(1, *size, seed=seed + 100 * i + k)[0]
            Image.fromarray(a).save(root / c / f"{k:04d}.{ext}")
            arrays[(c, k)] = a
    return arrays


def test_cifar_torchvision_format_round_trip(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    x = images(6)
    flat = x.transpose(0, 3, 1, 2).reshape(6, -1)
    for name, rows in [("test_batch", slice(0, 6))] + [(f"data_batch_{i}", slice(0, 2)) for i in range(1, 6)]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": flat[rows], b"labels": list(range(6))[rows]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": list(data.CIFAR10_CLASSES)}, f)
    ds = data.CIFAR(tmp_path, 10)
    assert len(ds) == 6 and ds.classes == list(data.CIFAR10_CLASSES)
    image, label = ds[4]
    assert torch.equal(image, torch.from_numpy(x[4]).permute(2, 0, 1)) and label == 4
    assert len(data.CIFAR(tmp_path, 10, train=True)) == 10


def test_cifar_batch_loader_refuses_code_in_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data.CIFAR(tmp_path, 10)


def test_cifar_image_folder_and_missing_data_message(tmp_path):
    arrays = write_folder(tmp_path / "test", data.CIFAR10_CLASSES, 2)
    ds = data.CIFAR(tmp_path, 10)
    assert len(ds) == 20 and ds.classes == list(data.CIFAR10_CLASSES)
    image, label = ds[5]  # sorted class folders, then files: class 2 (bird), file 1
    assert label == 2 and torch.equal(image, torch.from_numpy(arrays[("bird", 1)]).permute(2, 0, 1))
    with pytest.raises(data.DatasetNotFoundError, match=r"(?s)cifar100.*Expected layout.*cifar-100-python.*toronto"):
        data.CIFAR(tmp_path / "nothing", 100)
    with pytest.raises(data.DatasetNotFoundError, match="10 class folders, expected 100"):
        data.CIFAR(tmp_path, 100)


def test_cifar_c_npy_layout_gives_each_severity_its_block(tmp_path):
    x = images(15)  # 5 severities x 3 images
    np.save(tmp_path / "fog.npy", x)
    np.save(tmp_path / "labels.npy", np.array([7, 8, 9] * 5))
    assert data.npy_corruptions(tmp_path) == ["fog"]
    for s in range(1, 6):
        ds = data.CorruptedArrays(tmp_path, "fog", s)
        assert len(ds) == 3 and [ds[i][1] for i in range(3)] == [7, 8, 9]
        assert torch.equal(ds[2][0], torch.from_numpy(x[3 * (s - 1) + 2]).permute(2, 0, 1))
    with pytest.raises(data.DatasetNotFoundError, match=r"(?s)snow.npy not found.*labels.npy.*zenodo"):
        data.CorruptedArrays(tmp_path, "snow", 1)
    with pytest.raises(ValueError, match="severity"):
        data.CorruptedArrays(tmp_path, "fog", 6)


def test_corrupted_folders_with_integer_and_float_severity_names(tmp_path):
    classes = ["n01", "n02", "n03"]
    write_folder(tmp_path / "fog" / "3", classes, 2, size=(8, 8))
    write_folder(tmp_path / "fog" / "1", ["n02"], 1, size=(8, 8))  # a folder that lacks some classes
    ds = data.CorruptedFolder(tmp_path, "fog", 3)
    assert len(ds) == 6 and ds[0][0].shape == (3, 8, 8)  # read at the stored size, no resize
    partial = data.CorruptedFolder(tmp_path, "fog", 1, classes=classes)
    assert [label for _, label in partial.samples] == [1]
    for value in ("0.5", "1.25", "2.5", "3.5", "10"):  # ImageNet-C-bar names folders by float severity
        write_folder(tmp_path / "sparkles" / value, classes[:1], 1, size=(8, 8))
    assert data.severity_folder(tmp_path, "sparkles", 2, "imagenet-c-bar").name == "1.25"
    assert data.severity_folder(tmp_path, "sparkles", 5, "imagenet-c-bar").name == "10"
    with pytest.raises(data.DatasetNotFoundError, match=r"(?s)snow/1/ not found.*<corruption>/<severity"):
        data.CorruptedFolder(tmp_path, "snow", 1)


def test_tiny_imagenet_val_and_train_layouts(tmp_path):
    wnids = ["n2", "n1"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (tmp_path / "val" / "images").mkdir(parents=True)
    for i, w in enumerate(["n1", "n2", "n2"]):
        Image.fromarray(images(1, 64, 64, seed=i)[0]).save(tmp_path / "val" / "images" / f"val_{i}.JPEG")
    (tmp_path / "val" / "val_annotations.txt").write_text(
        "".join(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63\n" for i, w in enumerate(["n1", "n2", "n2"])))
    for w in wnids:
        (tmp_path / "train" / w / "images").mkdir(parents=True)
        Image.fromarray(images(1, 64, 64)[0]).save(tmp_path / "train" / w / "images" / f"{w}_0.JPEG")
    val = data.TinyImageNet(tmp_path, "val")
    assert val.classes == ["n1", "n2"] and [label for _, label in val.samples] == [0, 1, 1]
    assert val[0][0].shape == (3, 64, 64)
    train = data.TinyImageNet(tmp_path, "train")
    assert [label for _, label in train.samples] == [0, 1]
    with pytest.raises(data.DatasetNotFoundError, match="wnids.txt"):
        data.TinyImageNet(tmp_path / "val")


def test_imagenet_val_resize_and_centre_crop_match_torchvision(tmp_path):
    write_folder(tmp_path / "val", ["n01440764", "n01443537"], 1, size=(10, 14), ext="png")
    ds = data.ImageNetVal(tmp_path, size=8, crop=6)
    image, _ = ds[1]
    pil = Image.open(ds.samples[1][0]).convert("RGB")
    ref = transforms.Compose([transforms.Resize(8, interpolation=transforms.InterpolationMode.BILINEAR),
                              transforms.CenterCrop(6), transforms.PILToTensor()])(pil)
    assert torch.equal(image, ref)


def test_on_the_fly_items_equal_batched_corruption_in_any_order():
    ds = data.ArrayDataset(images(12), np.arange(12) % 3)
    fly = data.OnTheFlyCorrupted(ds, NOISE, 4, seed=3)
    order = torch.tensor([5, 0, 11, 3, 7])
    batch, labels = ds.get_batch(order.numpy())
    batched = data.CorruptBatch(NOISE, 4, seed=3)(batch, order)
    for row, i in enumerate(order.tolist()):
        image, label = fly[i]
        assert torch.equal(image, batched[row]) and label == labels[row]
    assert not torch.equal(fly[0][0], ds[0][0])
    with pytest.raises(ValueError, match="unknown corruption"):
        data.CorruptBatch("no_such_corruption", 1)


def test_index_batches_array_path_equals_loader_path():
    ds = data.ArrayDataset(images(10), np.arange(10))

    class Plain(torch.utils.data.Dataset):  # no get_batch: goes through a DataLoader
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]
    indices = [9, 2, 4, 7, 0]
    fast = list(data.index_batches(ds, indices, 2))
    slow = list(data.index_batches(Plain(), indices, 2))
    assert len(fast) == len(slow) == 3
    for (a, b, c), (x, y, z) in zip(fast, slow):
        assert torch.equal(a, x) and torch.equal(b, y) and torch.equal(c, z)
    assert torch.cat([c for _, _, c in fast]).tolist() == indices


def test_suite_finds_prerendered_or_clean_data_or_explains_both_layouts(tmp_path):
    suite = get_suite("cifar10-c")
    pre = tmp_path / "root" / "CIFAR-10-C"
    pre.mkdir(parents=True)
    np.save(pre / "fog.npy", images(5))
    np.save(pre / "labels.npy", np.zeros(5, dtype=np.int64))
    write_folder(tmp_path / "root" / "cifar10" / "test", data.CIFAR10_CLASSES, 1)
    found = suite.open(tmp_path / "root")
    assert found.source == "prerendered" and found.identity["path"] == str(pre)
    assert found.clean is not None and len(found.clean) == 10  # the clean set beside it, for clean accuracy
    fly = suite.open(tmp_path / "root", source="onthefly")
    assert fly.source == "onthefly" and fly.transform("fog", 2, 0) == data.CorruptBatch("fog", 2, 0)
    with pytest.raises(data.DatasetNotFoundError, match=r"(?s)cifar10-c \(pre-rendered\).*zenodo.*cifar10 \(clean"):
        suite.open(tmp_path / "empty")
    with pytest.raises(ValueError, match="valid: auto, prerendered, onthefly"):
        suite.open(tmp_path, source="cache")


def test_video_classes_are_exported_lazily():
    assert {"UCF101", "VideoFolder"} <= set(data.__all__)
    with pytest.raises(AttributeError):
        data.NoSuchThing  # noqa: B018
