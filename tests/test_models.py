"""The zoo's registry and timm conformance of every registered variant.

Cheap checks run for every registered name (cfg, metadata, entrypoint); models are
built at a tiny size once per (architecture, method), and the heavier conformance
checks (backward, head reset, features_only, TorchScript) once per architecture.
Full-size parameter counts are checked on the meta device against independent
references (timm/torchvision builds of the same networks).
"""
from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

import sparse_zoo  # noqa: F401
from sparse_zoo.models import ARCHS, DATASETS, METHODS, VARIANTS, info
from sparse_zoo.sparsity import check_masks, masked_modules, maskable_layers, plan

torch.set_num_threads(1)

TINY = {  # tiny but structurally complete settings per architecture
    "vgg16_cifar": dict(width=0.125),
    "resnet34_cifar": dict(width=0.125),
    "efficientnet_b0": dict(),
    "resnet50": dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64)),
    "deit_base_patch16_224": dict(embed_dim=32, depth=1, num_heads=2, img_size=32),
    "r3d50": dict(width=0.125),
    "i3d": dict(width=0.125),
}
TINY_INPUT = {"video": (3, 4, 32, 32), "image": (3, 32, 32)}
GRID = {"vgg16_cifar": range(10, 80, 10), "resnet34_cifar": range(10, 80, 10), "efficientnet_b0": range(10, 80, 10),
        "resnet50": range(10, 60, 10), "deit_base_patch16_224": range(10, 60, 10), "r3d50": range(10, 60, 10),
        "i3d": range(10, 60, 10)}


def _input(arch: str, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *TINY_INPUT["video" if ARCHS[arch].video else "image"])


def _tiny(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, num_classes=7, **{**TINY[VARIANTS[name].arch], **kwargs})


def test_registry_holds_exactly_the_grid():
    expected = {f"{a}_dense" for a in GRID}
    expected |= {f"{a}_{m}_s{s:02d}" for a, grid in GRID.items() for m in METHODS for s in grid}
    assert set(VARIANTS) == expected
    assert expected <= set(timm.list_models())
    assert set(timm.list_models("*_rigl_*")) == {n for n in expected if "_rigl_" in n}
    assert len(expected) == 3 * (8 * 7 + 1) + 4 * (8 * 5 + 1)


@pytest.fixture(scope="module")
def reference_models() -> dict[str, nn.Module]:
    return {arch: _tiny(f"{arch}_dense") for arch in ARCHS}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_cfg(name, reference_models):
    v = VARIANTS[name]
    arch = ARCHS[v.arch]
    assert timm.models.model_entrypoint(name).__name__ == name
    assert name == (f"{v.arch}_dense" if v.method == "dense" else f"{v.arch}_{v.method}_s{round(v.sparsity * 100):02d}")
    tags = [t.split(".", 1)[1] for t in timm.list_pretrained(f"{name}.*") if t.split(".", 1)[0] == name]
    assert sorted(tags) == sorted(arch.tags)
    assert timm.models.get_pretrained_cfg(name).tag == arch.tags[0]
    ref = reference_models[v.arch]
    modules = dict(ref.named_modules())
    for tag in tags:
        cfg = timm.models.get_pretrained_cfg(f"{name}.{tag}")
        ds = DATASETS[tag]
        assert cfg.hf_hub_id == f"sparse-zoo/{name}.{tag}"
        assert cfg.num_classes == ds.num_classes
        assert cfg.input_size == (arch.input_size or ds.input_size)
        assert len(cfg.input_size) == (4 if arch.video else 3) and cfg.input_size[0] == 3
        assert cfg.mean == ds.mean and cfg.std == ds.std and len(cfg.mean) == len(cfg.std) == 3
        first, head = modules[cfg.first_conv], modules[cfg.classifier]
        assert isinstance(first, (nn.Conv2d, nn.Conv3d)) and first.in_channels == 3
        assert isinstance(head, nn.Linear) and head.out_features == 7
        zoo = info(f"{name}.{tag}")
        assert (zoo.arch, zoo.method, zoo.sparsity, zoo.dataset) == (v.arch, v.method, v.sparsity, tag)
        assert zoo.distribution == ("uniform" if tag in ("c10", "c100", "tin") else "erk")
    # the default tag is the paper's training set of the architecture
    assert info(name).dataset == {"vgg16_cifar": "c10", "resnet34_cifar": "c100", "efficientnet_b0": "tin"}.get(
        v.arch, "in1k" if v.arch in ("resnet50", "deit_base_patch16_224") else "ucf101")


@pytest.mark.parametrize("name", [f"{a}_{m}_s50" for a in ARCHS for m in METHODS] + [f"{a}_dense" for a in ARCHS])
def test_build_masks_and_forward(name, reference_models):
    """Each architecture x method builds with exact per-layer counts and runs at a tiny size."""
    model = _tiny(name)
    zoo = model.zoo_info
    assert zoo.model == name
    x = _input(zoo.arch)
    assert model(x).shape == (2, 7)
    check_masks(model)
    masked = dict(masked_modules(model))
    if zoo.method == "dense":
        assert not masked
        return
    counts = plan(reference_models[zoo.arch], zoo.sparsity, zoo.distribution)  # same net, built without masks
    modules = dict(model.named_modules())
    for layer, k in counts.items():
        mask = getattr(modules[layer], "weight_mask", None)
        assert (int(mask.sum()) if mask is not None else modules[layer].weight.numel()) == k, layer
    total = sum(modules[n].weight.numel() for n in maskable_layers(model))
    assert sum(counts.values()) == round((1 - zoo.sparsity) * total)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("arch", list(ARCHS))
def test_conformance(arch):
    """timm's API on a sparse variant: backward, head reset, features_only, TorchScript."""
    name = f"{arch}_rigl_s30"
    model = _tiny(name)
    x = _input(arch)
    model(x).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    assert model.get_classifier() is dict(model.named_modules())[model.pretrained_cfg["classifier"]]
    model.reset_classifier(5)
    assert model(x).shape == (2, 5)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.num_features)

    taps = dict(out_indices=(0,)) if arch == "deit_base_patch16_224" else {}  # its tiny version has one block
    features = _tiny(name, features_only=True, **taps).eval()
    outs = features(x)
    assert len(outs) == (1 if taps else 5)
    assert [o.shape[1] for o in outs] == features.feature_info.channels()
    assert any(True for _ in masked_modules(features))

    model = _tiny(name).eval()
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), model(x))


def _googlenet_inflated_params(num_classes: int) -> int:
    """I3D's size from torchvision's Inception-v1: every k x k kernel gains a k-long time axis."""
    from torchvision.models import GoogLeNet
    g = GoogLeNet(num_classes=num_classes, aux_logits=False, init_weights=False)
    return sum(p.numel() * (p.shape[-1] if p.ndim == 4 else 1) for p in g.parameters())


def _video_resnet50_params(num_classes: int) -> int:
    """3D ResNet-50 from torchvision's VideoResNet blocks; its stem is 3x7x7, ours 7x7x7."""
    from torchvision.models.video.resnet import BasicStem, Bottleneck, Conv3DSimple, VideoResNet
    v = VideoResNet(Bottleneck, [Conv3DSimple] * 4, [3, 4, 6, 3], BasicStem, num_classes=num_classes)
    return sum(p.numel() for p in v.parameters()) + 64 * 3 * 7 * 7 * (7 - 3)


def _vgg16_bn_params(num_classes: int) -> int:
    from torchvision.models.vgg import cfgs, make_layers
    return sum(p.numel() for p in make_layers(cfgs["D"], batch_norm=True).parameters()) + 512 * num_classes + num_classes


REFERENCE_PARAMS = {
    "vgg16_cifar": (10, lambda: _vgg16_bn_params(10)),
    "resnet34_cifar": (100, lambda: 21_328_292),  # CIFAR-100 ResNet-34 (3x3 stem): the published 21.33M
    "efficientnet_b0": (200, lambda: sum(p.numel() for p in timm.create_model("efficientnet_b0", num_classes=200)
                                         .parameters())),
    "resnet50": (1000, lambda: sum(p.numel() for p in timm.create_model("resnet50").parameters())),
    "deit_base_patch16_224": (1000, lambda: sum(p.numel() for p in timm.create_model("deit_base_patch16_224")
                                                .parameters())),
    "r3d50": (400, lambda: _video_resnet50_params(400)),
    "i3d": (400, lambda: _googlenet_inflated_params(400)),
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_full_size_matches_reference(arch):
    num_classes, reference = REFERENCE_PARAMS[arch]
    with torch.device("meta"):
        model = timm.create_model(f"{arch}_dense", num_classes=num_classes)
        expected = reference()
    assert sum(p.numel() for p in model.parameters()) == expected
    if ARCHS[arch].video:
        assert model.pretrained_cfg["input_size"][1] == 16


def test_masks_follow_seed_and_distribution():
    a, b = _tiny("resnet34_cifar_set_s50"), _tiny("resnet34_cifar_set_s50", mask_seed=1)
    assert any(not torch.equal(ma, mb) for (_, ma), (_, mb) in
               zip(((n, m.weight_mask) for n, m in masked_modules(a)), ((n, m.weight_mask) for n, m in masked_modules(b))))
    densities = {n: m.weight_mask.float().mean().item() for n, m in masked_modules(a)}
    assert all(math.isclose(d, 0.5, abs_tol=0.02) for d in densities.values())
    video = _tiny("r3d50_set_s50")
    video_densities = [m.weight_mask.float().mean().item() for _, m in masked_modules(video)]
    assert max(video_densities) - min(video_densities) > 0.3  # ERK: small layers denser


def test_bad_names_and_tags():
    with pytest.raises(RuntimeError, match="Unknown model"):
        timm.create_model("resnet50_rigl_s15")
    with pytest.raises(ValueError, match="no training-set tag 'c10'.*in1k"):
        timm.create_model("resnet50_rigl_s10.c10")
    with pytest.raises(ValueError, match="width must be > 0"):
        timm.create_model("vgg16_cifar_dense", width=0)
