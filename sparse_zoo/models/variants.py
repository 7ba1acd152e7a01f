"""Every zoo variant, registered with timm: one builder, many named variants.

Names are ``{arch}_{method}_s{NN}`` (NN = sparsity in percent) and ``{arch}_dense``.
Each name has one pretrained cfg per training set, tagged ``c10``, ``c100``, ``tin``,
``in1k`` or ``ucf101`` (the first listed is the default), pointing at
``hf_hub_id='<org>/<name>.<tag>'``; the org is ``sparse-zoo`` unless the environment
variable ``SPARSE_ZOO_HF_ORG`` names another one when ``sparse_zoo`` is imported.

``timm.create_model(name)`` builds the architecture and registers bool masks for
the variant's sparsity, drawn with the layer-wise distribution of the paper's
recipe for the training set (table 4: uniform for CIFAR and Tiny-ImageNet, ERK for
ImageNet and UCF101). ``pretrained=True`` goes through timm's own loader
(Hub/cache, ``pretrained_cfg_overlay=dict(file=...)``, ``local-dir:``) with
:func:`sparse_zoo.weights.pretrained_filter`, which makes the masks those of the
file and checks them. The variant's metadata rides on the model as ``model.zoo_info``.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import timm
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError
from safetensors import SafetensorError
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import PretrainedCfg, build_model_with_cfg, generate_default_cfgs, register_model
from timm.models import get_pretrained_cfg as timm_pretrained_cfg
from timm.models import resolve_pretrained_cfg
from torch import nn

from ..sparsity import sparsify
from ..weights import pretrained_filter
from .cifar import CifarResNet, VggCifar
from .video import I3D, ResNet3d

ORG_ENV = "SPARSE_ZOO_HF_ORG"
DEFAULT_ORG = "sparse-zoo"
PAPER_ID = "arXiv:2410.03030"
METHODS = ("set", "rigl", "mest_r", "mest_g", "granet_r", "granet_g", "static", "acdc")


def hf_org() -> str:
    """The Hub organisation of the zoo's repos (``SPARSE_ZOO_HF_ORG``, default ``sparse-zoo``)."""
    return os.environ.get(ORG_ENV, DEFAULT_ORG)


@dataclass(frozen=True)
class Dataset:
    """A training set: its tag in the zoo's names, data config and sparsity distribution (table 4)."""

    tag: str
    title: str
    hub_dataset: str
    num_classes: int
    input_size: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    distribution: str
    crop_pct: float = 1.0
    interpolation: str = "bilinear"
    aliases: tuple[str, ...] = ()


DATASETS: dict[str, Dataset] = {d.tag: d for d in (
    Dataset("c10", "CIFAR-10", "cifar10", 10, (3, 32, 32),
            (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "uniform", aliases=("cifar10", "cifar-10")),
    Dataset("c100", "CIFAR-100", "cifar100", 100, (3, 32, 32),
            (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "uniform", aliases=("cifar100", "cifar-100")),
    Dataset("tin", "Tiny-ImageNet", "zh-plus/tiny-imagenet", 200, (3, 64, 64),
            IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, "uniform", aliases=("tiny-imagenet", "tinyimagenet")),
    Dataset("in1k", "ImageNet-1k", "imagenet-1k", 1000, (3, 224, 224),
            IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, "erk", crop_pct=0.875, interpolation="bicubic",
            aliases=("imagenet", "imagenet-1k", "imagenet1k")),
    Dataset("ucf101", "UCF101", "ucf101", 101, (3, 16, 112, 112),  # Kinetics statistics, as torchvision's video models
            (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989), "erk"),
    # any labelled image folder (``sparse-zoo train --recipe ... --data DIR``); no pretrained tag uses it
    Dataset("folder", "an image folder", "imagefolder", 0, (3, 224, 224),
            IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, "uniform", aliases=("imagefolder",)),
)}


def dataset_tag(name: str) -> str:
    """The zoo tag of a training set given by tag or name (``'cifar10'`` -> ``'c10'``)."""
    for ds in DATASETS.values():
        if name.lower() in (ds.tag, *ds.aliases):
            return ds.tag
    valid = sorted(t for ds in DATASETS.values() for t in (ds.tag, *ds.aliases))
    raise ValueError(f"unknown training set {name!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class Arch:
    """One base architecture of the zoo: how to build it and which variants it has."""

    name: str
    title: str
    build: Callable[..., nn.Module]
    tags: tuple[str, ...]
    sparsities: tuple[int, ...]
    first_conv: str
    classifier: str
    input_size: tuple[int, ...] | None = None  # overrides the dataset's (video clip sizes)
    fixed_input_size: bool = False
    feature_cfg: dict[str, Any] = field(default_factory=dict)
    video: bool = False


def _timm_base(name: str) -> Callable[..., nn.Module]:
    """Build a timm architecture without weights (the zoo builder adds cfg, masks and loading)."""
    def build(**kwargs: Any) -> nn.Module:
        return timm.create_model(name, pretrained=False, **kwargs)
    return build


def _timm_arch(name: str, title: str, tags: tuple[str, ...], sparsities: tuple[int, ...],
               **kwargs: Any) -> Arch:
    base = timm_pretrained_cfg(name)
    return Arch(name, title, _timm_base(name), tags, sparsities, base.first_conv, base.classifier,
                fixed_input_size=base.fixed_input_size, **kwargs)


SMALL_GRID = tuple(range(10, 80, 10))  # CIFAR and Tiny-ImageNet: 10-70 %
LARGE_GRID = tuple(range(10, 60, 10))  # ImageNet and UCF101: 10-50 %

ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("vgg16_cifar", "VGG-16 (CIFAR)", VggCifar, ("c10", "c100"), SMALL_GRID, "features.0", "head.fc",
         feature_cfg=dict(flatten_sequential=True)),
    Arch("resnet34_cifar", "ResNet-34 (CIFAR)", CifarResNet, ("c100", "c10"), SMALL_GRID, "conv1", "fc"),
    _timm_arch("efficientnet_b0", "EfficientNet-B0", ("tin", "in1k"), SMALL_GRID,
               feature_cfg=dict(feature_cls="getter")),
    _timm_arch("resnet50", "ResNet-50", ("in1k",), LARGE_GRID),
    _timm_arch("deit_base_patch16_224", "DeiT-Base/16", ("in1k",), LARGE_GRID,
               feature_cfg=dict(feature_cls="getter", out_indices=3)),
    Arch("r3d50", "3D ResNet-50", ResNet3d, ("ucf101",), LARGE_GRID, "conv1", "fc", video=True),
    Arch("i3d", "I3D (Inflated Inception-v1)", I3D, ("ucf101",), LARGE_GRID, "features.conv_1a.0", "fc",
         input_size=(3, 16, 224, 224), feature_cfg=dict(flatten_sequential=True), video=True),
)}


@dataclass(frozen=True)
class ZooInfo:
    """What a zoo model is: the metadata saved with its weights and shown on its card."""

    model: str
    arch: str
    method: str
    sparsity: float
    distribution: str
    dataset: str

    def as_metadata(self) -> dict[str, str]:
        return {k: (f"{v:g}" if isinstance(v, float) else str(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ZooInfo:
        missing = [k for k in cls.__dataclass_fields__ if k not in metadata]
        if missing:
            raise ValueError(f"weight metadata lacks {', '.join(missing)}")
        return cls(**{k: metadata[k] for k in cls.__dataclass_fields__ if k != "sparsity"},
                   sparsity=float(metadata["sparsity"]))


@dataclass(frozen=True)
class Variant:
    name: str
    arch: str
    method: str
    sparsity: float


def _variants() -> dict[str, Variant]:
    out = {}
    for arch in ARCHS.values():
        out[f"{arch.name}_dense"] = Variant(f"{arch.name}_dense", arch.name, "dense", 0.0)
        for method in METHODS:
            for s in arch.sparsities:
                name = f"{arch.name}_{method}_s{s:02d}"
                out[name] = Variant(name, arch.name, method, s / 100)
    return out


VARIANTS: dict[str, Variant] = _variants()

# ``name.tag`` of every variant whose weights are on the Hub. Nothing is published
# yet; ``pretrained=True`` still finds weights placed in the local Hub cache.
PUBLISHED: frozenset[str] = frozenset()


def info(name: str, tag: str | None = None) -> ZooInfo:
    """The metadata of a registered variant (``name`` may carry a ``.tag``)."""
    name, _, dot_tag = name.partition(".")
    if name not in VARIANTS:
        raise ValueError(f"{name!r} is not a sparse-zoo model; see timm.list_models('*_rigl_*') for the names")
    v = VARIANTS[name]
    arch = ARCHS[v.arch]
    tag = tag or dot_tag or arch.tags[0]
    if tag not in arch.tags:
        raise ValueError(f"{name} has no training-set tag {tag!r}; valid: {', '.join(arch.tags)}")
    return ZooInfo(name, v.arch, v.method, v.sparsity, DATASETS[tag].distribution, tag)


def run_info(arch: str, method: str, sparsity: float, dataset: str, distribution: str | None = None) -> ZooInfo:
    """The metadata of a trained model (e.g. by ``sparse-zoo train``), from what the run used.

    ``model`` is the zoo name when the run hits the grid (``resnet34_cifar_rigl_s50``),
    else ``{arch}_dense`` (the masks come from the weight file either way).
    """
    tag = dataset_tag(dataset)
    method = "dense" if method == "dense" or sparsity == 0 else method
    grid = "dense" if method == "dense" else f"{method}_s{round(sparsity * 100):02d}"
    name = f"{arch}_{grid}"
    if name not in VARIANTS or abs(VARIANTS[name].sparsity - sparsity) > 1e-9:
        name = f"{arch}_dense" if f"{arch}_dense" in VARIANTS else arch
    return ZooInfo(name, arch, method, float(sparsity), distribution or DATASETS[tag].distribution, tag)


def _describe(v: Variant, ds: Dataset) -> str:
    arch = ARCHS[v.arch].title
    if v.method == "dense":
        return f"{arch} trained dense on {ds.title} (the baseline of the sparse variants)"
    return f"{arch} trained with {v.method} at {v.sparsity:.0%} sparsity ({ds.distribution}) on {ds.title}"


def _pretrained_cfg(v: Variant, tag: str) -> PretrainedCfg:
    arch, ds = ARCHS[v.arch], DATASETS[tag]
    return PretrainedCfg(
        hf_hub_id=f"{hf_org()}/{v.name}.{tag}", input_size=arch.input_size or ds.input_size,
        fixed_input_size=arch.fixed_input_size, mean=ds.mean, std=ds.std, num_classes=ds.num_classes,
        crop_pct=ds.crop_pct, interpolation=ds.interpolation, first_conv=arch.first_conv,
        classifier=arch.classifier, license="apache-2.0", paper_ids=PAPER_ID, description=_describe(v, ds))


default_cfgs = generate_default_cfgs({
    f"{v.name}.{tag}": _pretrained_cfg(v, tag) for v in VARIANTS.values() for tag in ARCHS[v.arch].tags})


def _not_published(name: str, cfg: PretrainedCfg, zoo: ZooInfo) -> str:
    key = f"{name}.{cfg.tag}"
    where = f"{cfg.hf_hub_id!r} is neither on the Hub nor in the local Hugging Face cache"
    head = (f"No weights are published for {key} yet" if key not in PUBLISHED
            else f"The weights of {key} could not be fetched")
    return (f"{head}: {where}. Train them with `sparse-zoo train --method {zoo.method} "
            f"--sparsity {zoo.sparsity:g} --recipe RECIPE --data PATH --out RUN_DIR` (`sparse-zoo train --help` "
            f"lists the recipes of the paper; {ARCHS[zoo.arch].title} on {DATASETS[zoo.dataset].title}), then "
            f"load the run with sparse_zoo.hub.load_model('RUN_DIR'), or use pretrained=False.")


def _zoo_weights_missing(name: str, cfg: PretrainedCfg, cache_dir: Any) -> bool:
    """True when ``pretrained=True`` would ask the Hub for zoo weights that are known not to exist.

    Only the zoo's own repos (default org, registry source) are judged: those not in
    ``PUBLISHED`` and not in the local cache fail at once instead of after the Hub's
    retries. File, URL, ``local-dir:`` and ``hf-hub:`` sources go to timm unchanged.
    """
    if cfg.file or cfg.url or cfg.state_dict or cfg.source or hf_org() != DEFAULT_ORG:
        return False
    if f"{name}.{cfg.tag}" in PUBLISHED:
        return False
    cached = try_to_load_from_cache(cfg.hf_hub_id, "model.safetensors", cache_dir=cache_dir)
    return not isinstance(cached, str)


def _create(name: str, pretrained: bool = False, *, pretrained_cfg: Any = None,
            pretrained_cfg_overlay: dict[str, Any] | None = None, mask_seed: int = 0, **kwargs: Any) -> nn.Module:
    """The one builder behind every variant: architecture, masks, cfg and timm's weight loading."""
    if isinstance(pretrained_cfg, str):
        info(name, pretrained_cfg)  # an unknown tag fails here, listing the valid ones
    cfg = resolve_pretrained_cfg(name, pretrained_cfg, pretrained_cfg_overlay)
    zoo = info(name, cfg.tag)
    arch = ARCHS[zoo.arch]
    cfg = replace(cfg, tag=zoo.dataset)

    def build(**model_kwargs: Any) -> nn.Module:
        model = arch.build(**model_kwargs)
        if zoo.sparsity > 0:
            sparsify(model, zoo.sparsity, zoo.distribution, seed=mask_seed)
        return model

    if pretrained and _zoo_weights_missing(name, cfg, kwargs.get("cache_dir")):
        raise RuntimeError(_not_published(name, cfg, zoo))
    cfg_dict = cfg.to_dict()
    # timm's builder takes input_size as (C, H, W); clips carry (C, T, H, W): build without T, then restore it.
    build_cfg = dict(cfg_dict, input_size=(cfg.input_size[0], *cfg.input_size[-2:])) if arch.video else cfg_dict
    try:
        model = build_model_with_cfg(build, name, pretrained, pretrained_cfg=build_cfg,
                                     feature_cfg=dict(arch.feature_cfg), pretrained_filter_fn=pretrained_filter,
                                     **kwargs)
    except (LocalEntryNotFoundError, RepositoryNotFoundError, EntryNotFoundError) as e:
        raise RuntimeError(_not_published(name, cfg, zoo)) from e
    except SafetensorError as e:
        source = cfg.file or cfg.hf_hub_id
        raise ValueError(f"the weights of {name} ({source}) are truncated or corrupt: {e}. "
                         "Delete the file (or its Hub cache entry) and fetch or export it again.") from e
    if arch.video:
        model.pretrained_cfg = model.default_cfg = dict(model.pretrained_cfg, input_size=cfg.input_size)
    model.zoo_info = zoo
    return model


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    def create(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _create(name, pretrained, **kwargs)
    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"{name}: {_describe(VARIANTS[name], DATASETS[ARCHS[VARIANTS[name].arch].tags[0]])}."
    return create


_module = sys.modules[__name__]
for _name in VARIANTS:
    setattr(_module, _name, register_model(_entrypoint(_name)))
