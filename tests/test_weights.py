"""Mask-aware safetensors: layout, round trips, and bad files that must not half-load."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import sparse_zoo  # noqa: F401
from sparse_zoo import weights
from sparse_zoo.sparsity import check_masks, masked_modules

torch.set_num_threads(1)
NAME = "resnet34_cifar_rigl_s50"


def _model(name: str = NAME, **kwargs):
    torch.manual_seed(kwargs.pop("seed", 0))
    return timm.create_model(name, num_classes=10, width=0.125, **kwargs)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def saved(tmp_path):
    model = _model()
    return model, weights.save(model, tmp_path / "model.safetensors")


def test_layout_and_metadata(saved):
    model, path = saved
    masks = dict(masked_modules(model))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
        for name in masks:
            mask, weight = f.get_tensor(f"{name}.weight_mask"), f.get_tensor(f"{name}.weight")
            assert mask.dtype == torch.bool and mask.shape == weight.shape
            assert torch.count_nonzero(weight[~mask]) == 0
    assert keys == set(model.state_dict())
    assert meta["format"] == "pt" and meta["sparse_zoo_format"] == weights.FORMAT_VERSION
    assert {k: meta[k] for k in ("model", "arch", "method", "sparsity", "distribution", "dataset")} == {
        "model": NAME, "arch": "resnet34_cifar", "method": "rigl", "sparsity": "0.5", "distribution": "uniform",
        "dataset": "c100"}
    assert json.loads(meta["model_args"]) == {"num_classes": 10, "width": 0.125}
    assert weights.read_metadata(path) == meta
    assert weights.read_metadata(path.parent) == meta  # a folder means its model.safetensors


def test_round_trip_restores_masks(saved):
    model, path = saved
    other = _model(mask_seed=7, seed=1)
    assert not _same(_state(model), _state(other))
    weights.load_into(other, path)
    assert _same(_state(model), _state(other))
    check_masks(other)


def test_masks_of_the_file_win(saved):
    model, path = saved
    dense = _model("resnet34_cifar_dense")  # no masks: the file adds them
    weights.load_into(dense, path)
    assert _same(_state(model), _state(dense))
    # a file whose first conv is dense drops that layer's mask in the loading model
    state = _state(model)
    del state["conv1.weight_mask"]
    partly = path.parent / "partly.safetensors"
    save_file(state, str(partly))
    target = _model(mask_seed=3)
    weights.load_into(target, partly)
    assert not hasattr(target.conv1, "weight_mask") and _same(_state(target), state)


def test_save_refuses_invalid_models_and_keeps_old_file(saved, tmp_path):
    model, path = saved
    before = path.read_bytes()
    with torch.no_grad():
        model.layer1[0].conv1.weight.add_(1.0)  # breaks the invariant
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight has \d+ nonzero values outside"):
        weights.save(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left behind
    plain = torch.nn.Linear(4, 2)
    with pytest.raises(ValueError, match="metadata lacks arch, method, sparsity, distribution, dataset"):
        weights.save(plain, tmp_path / "plain.safetensors")
    path2 = weights.save(plain, tmp_path / "plain.safetensors", dict(arch="linear", method="dense", sparsity=0,
                                                                       distribution="uniform", dataset="c10"))
    assert weights.read_metadata(path2)["arch"] == "linear"


def _rejects(model, path, match):
    before = _state(model)
    masks_before = [n for n, _ in masked_modules(model)]
    with pytest.raises(ValueError, match=match):
        weights.load_into(model, path)
    assert _same(before, _state(model)), "a failed load changed the model"
    assert masks_before == [n for n, _ in masked_modules(model)]


def test_invariant_violation_names_the_tensor(saved):
    model, path = saved
    state = _state(model)
    state["layer2.0.conv2.weight"] = state["layer2.0.conv2.weight"] + 1.0
    bad = path.parent / "bad.safetensors"
    save_file(state, str(bad))
    _rejects(_model(mask_seed=5), bad, r"layer2\.0\.conv2\.weight in .* nonzero values outside layer2\.0\.conv2\.weight_mask")


def test_mask_shape_and_dtype_errors(saved):
    model, path = saved
    state = _state(model)
    state["fc.weight_mask"] = state["fc.weight_mask"][:, :-1].contiguous()
    bad = path.parent / "shape.safetensors"
    save_file(state, str(bad))
    _rejects(_model(mask_seed=5), bad, r"fc\.weight_mask .* shape \(10, 63\) but fc\.weight has \(10, 64\)")
    state = _state(model)
    state["fc.weight_mask"] = state["fc.weight_mask"].to(torch.uint8)
    save_file(state, str(bad))
    _rejects(_model(mask_seed=5), bad, r"fc\.weight_mask .* torch\.uint8, masks must be bool")


def test_other_width_does_not_fit(saved):
    _, path = saved
    wide = timm.create_model(NAME, num_classes=10, width=0.25)
    _rejects(wide, path, r"has shape .*another num_classes or width")


def test_truncated_and_corrupt_files(saved):
    model, path = saved
    data = path.read_bytes()
    truncated = path.parent / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    _rejects(_model(mask_seed=5), truncated, "truncated or corrupt")
    garbage = path.parent / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    _rejects(_model(mask_seed=5), garbage, "truncated or corrupt")
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF  # inside the tensor data: only the checksum notices
    corrupt = path.parent / "flipped.safetensors"
    corrupt.write_bytes(bytes(flipped))
    _rejects(_model(mask_seed=5), corrupt, "do not match the checksum")
    with pytest.raises(FileNotFoundError):
        weights.load_into(_model(), path.parent / "missing.safetensors")


def test_dense_checkpoint_into_sparse_model_says_what_to_do(tmp_path):
    dense = _model("resnet34_cifar_dense")
    path = weights.save(dense, tmp_path / "dense.safetensors")
    _rejects(_model(), path, r"dense checkpoint .* Load it into 'resnet34_cifar_dense' .*sparsify")
    with pytest.raises(ValueError, match="dense checkpoint"):
        timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125,
                          pretrained_cfg_overlay=dict(file=str(path), num_classes=10))


def test_timm_file_overlay_restores_masks(saved):
    model, path = saved
    loaded = timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125, mask_seed=9,
                               pretrained_cfg_overlay=dict(file=str(path), num_classes=10))
    assert _same(_state(model), _state(loaded))
    # a new head: the backbone's masks come from the file, the head keeps a fresh mask of its own
    head5 = timm.create_model(NAME, pretrained=True, num_classes=5, width=0.125, mask_seed=9,
                              pretrained_cfg_overlay=dict(file=str(path), num_classes=10))
    state = _state(model)
    for key, value in _state(head5).items():
        if not key.startswith("fc."):
            assert torch.equal(value, state[key]), key
    assert head5.fc.weight_mask.shape == (5, 64) and int(head5.fc.weight_mask.sum()) == 160
    check_masks(head5)


def test_timm_file_overlay_rejects_bad_files(saved):
    model, path = saved
    state = _state(model)
    state["layer3.1.conv1.weight"] = state["layer3.1.conv1.weight"] + 1.0
    bad = path.parent / "bad.safetensors"
    save_file(state, str(bad))
    with pytest.raises(ValueError, match=r"layer3\.1\.conv1\.weight .* nonzero values outside"):
        timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125,
                          pretrained_cfg_overlay=dict(file=str(bad), num_classes=10))
    truncated = path.parent / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125,
                          pretrained_cfg_overlay=dict(file=str(truncated), num_classes=10))
