"""Training recipes: the paper's settings (arXiv 2410.03030, appendix A.3, table 4) by name.

A :class:`Recipe` holds everything that determines a training run's result: model,
data, optimisation, augmentation and the DST method. Named recipes live in a
registry (:func:`register_recipe`, :func:`get_recipe`, :func:`list_recipes`); users
change any field with a YAML file or ``key=value`` overrides (:func:`apply_overrides`),
which are type-checked against the dataclass so a typo is an error, not a silently
ignored setting.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Per-method options shared by the paper's recipes (appendix A.3.2): MEST's soft memory
# bound is 10% of the target density, GraNet starts at density 0.8.
PAPER_METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "mest_r": {"soft_bound": 0.1},
    "mest_g": {"soft_bound": 0.1},
    "granet_r": {"initial_density": 0.8},
    "granet_g": {"initial_density": 0.8},
}


def _paper_method_options(**granet: Any) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in PAPER_METHOD_OPTIONS.items()}
    for name in ("granet_r", "granet_g"):
        out[name].update(granet)
    return out


@dataclass
class Recipe:
    """One training setting. ``batch_size`` is global (summed over processes).

    Fields marked ``runtime`` (workers, device, compile) choose how to run, not what
    is computed: they may change on ``--resume``; every other field may not.
    """

    name: str = "custom"
    description: str = ""
    # model and data
    model: str = "resnet34_cifar"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "cifar10"
    num_classes: int | None = None
    input_size: tuple[int, ...] | None = None
    augmentation: str = "cifar"
    crop_padding: int = 4
    auto_augment: str | None = None
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.0
    # optimisation
    epochs: int = 160
    batch_size: int = 100
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    no_decay_norm_bias: bool = False
    clip_grad: float | None = None
    lr_schedule: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    decay_epochs: float = 30.0
    decay_rate: float = 0.1
    # sparse training (sparse_zoo.dst)
    method: str = "dense"
    sparsity: float = 0.0
    distribution: str = "uniform"
    delta_t: int = 500
    dst_options: dict[str, Any] = field(default_factory=lambda: {"drop_fraction": 0.1, "drop_schedule": "polynomial"})
    method_options: dict[str, dict[str, Any]] = field(default_factory=_paper_method_options)
    # run
    seed: int = 0
    train_subset: int | None = None
    eval_subset: int | None = None
    amp: str = "none"
    channels_last: bool = False
    compile: bool = field(default=False, metadata={"runtime": True})
    workers: int = field(default=2, metadata={"runtime": True})
    device: str | None = field(default=None, metadata={"runtime": True})

    def replace(self, **changes: Any) -> Recipe:
        return apply_overrides(self, changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def result_dict(self) -> dict[str, Any]:
        """The fields that determine the result (everything but runtime fields)."""
        runtime = {f.name for f in dataclasses.fields(self) if f.metadata.get("runtime")}
        return {k: v for k, v in self.to_dict().items() if k not in runtime}

    def config_hash(self) -> str:
        blob = json.dumps(self.result_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def dst_kwargs(self) -> dict[str, Any]:
        """Keyword options for ``sparse_zoo.dst.create`` of this recipe's method."""
        return {**self.dst_options, **self.method_options.get(self.method, {})}


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    if recipe.name in RECIPES:
        raise ValueError(f"recipe {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def list_recipes() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str) -> Recipe:
    """A fresh copy of the named recipe (mutating it never changes the registry)."""
    if name not in RECIPES:
        close = difflib.get_close_matches(name, RECIPES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown recipe {name!r}{hint}; valid recipes: {', '.join(list_recipes())}")
    return dataclasses.replace(RECIPES[name], model_kwargs=dict(RECIPES[name].model_kwargs),
                               dst_options=dict(RECIPES[name].dst_options),
                               method_options={k: dict(v) for k, v in RECIPES[name].method_options.items()})


# ---------------------------------------------------------------------------------------
# overrides

def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Recipe)}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a field's type hint, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            try:
                return _coerce(value, arm, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: {value!r} is not a valid {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise ValueError(f"{key}: expected null")
    if hint is Any:
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(hint)
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML reads 1e-3 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and (type(value) is hint):
        return value
    raise ValueError(f"{key}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> Recipe:
    """A new recipe with ``overrides`` applied; keys may be dotted into dict fields
    (``model_kwargs.width``, ``method_options.granet_r.initial_density``).

    Unknown keys and values of the wrong type raise ValueError naming the valid choices.
    """
    fields = _fields()
    hints = typing.get_type_hints(Recipe)
    data = recipe.to_dict()
    for key, value in overrides.items():
        head, *rest = str(key).split(".")
        if head not in fields:
            close = difflib.get_close_matches(head, fields, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown recipe field {head!r}{hint}; valid fields: {', '.join(fields)}")
        if rest:
            if typing.get_origin(hints[head]) is not dict:
                raise ValueError(f"{key}: field {head!r} is not a mapping, set it as {head}=VALUE")
            _set_path(data[head], rest, value)
        elif isinstance(value, Mapping) and typing.get_origin(hints[head]) is dict:
            merged = dict(data[head])
            merged.update(value)
            data[head] = merged
        else:
            data[head] = value
    return Recipe(**{k: _coerce(v, hints[k], k) for k, v in data.items()})


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["lr=0.05", "model_kwargs.width=0.25"]`` -> ``{"lr": 0.05, ...}``; values are YAML scalars/lists."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form KEY=VALUE")
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Overrides from a YAML mapping (``safe_load``: nothing in it is executed)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of recipe fields, got {type(data).__name__}")
    return data


def diff(a: Recipe, b: Recipe) -> dict[str, tuple[Any, Any]]:
    """Result-determining fields that differ: ``{field: (a_value, b_value)}``."""
    da, db = a.result_dict(), b.result_dict()
    return {k: (da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)}


# ---------------------------------------------------------------------------------------
# the paper's recipes (table 4) and DeiT (Chen et al. 2021)

def _cifar(name: str, model: str, dataset: str, paper: bool) -> Recipe:
    origin = "table 4" if paper else "table 4's CIFAR setting applied to this pair"
    return Recipe(name=name, description=f"{model} on {dataset.upper()}: 160 epochs, SGD lr 0.1, batch 100, cosine ({origin})",
                  model=model, dataset=dataset, augmentation="cifar", epochs=160, batch_size=100, lr=0.1,
                  weight_decay=5e-4, distribution="uniform", delta_t=500)


def _video(model: str) -> Recipe:
    return Recipe(name=f"{model}_ucf101", description=f"{model} on UCF101: 80 epochs, SGD lr 0.1, batch 8, cosine (table 4)",
                  model=model, dataset="ucf101", augmentation="video", epochs=80, batch_size=8, lr=0.1,
                  weight_decay=1e-3, distribution="erk", delta_t=300)


for _recipe in (
    _cifar("vgg16_cifar10", "vgg16_cifar", "cifar10", paper=True),
    _cifar("resnet34_cifar100", "resnet34_cifar", "cifar100", paper=True),
    _cifar("vgg16_cifar100", "vgg16_cifar", "cifar100", paper=False),
    _cifar("resnet34_cifar10", "resnet34_cifar", "cifar10", paper=False),
    Recipe(name="efficientnet_b0_tinyimagenet",
           description="EfficientNet-B0 on Tiny-ImageNet (64 px): 100 epochs, SGD lr 0.1, batch 128, cosine (table 4)",
           model="efficientnet_b0", dataset="tiny-imagenet", input_size=(3, 64, 64), augmentation="tiny-imagenet",
           crop_padding=8, epochs=100, batch_size=128, lr=0.1, weight_decay=5e-4, distribution="uniform", delta_t=100),
    Recipe(name="resnet50_imagenet",
           description="ResNet-50 on ImageNet: 90 epochs, SGD lr 0.1, batch 256, step x0.1 every 30 epochs, ERK (table 4)",
           model="resnet50", dataset="imagenet", augmentation="imagenet", epochs=90, batch_size=256, lr=0.1,
           weight_decay=1e-4, lr_schedule="step", decay_epochs=30, decay_rate=0.1, distribution="erk", delta_t=2000,
           method_options=_paper_method_options(initial_density=0.95)),
    # Chen et al. 2021 (SViTE) train DeiT-Base with DeiT's recipe (global batch 1024, AdamW lr 5e-4 x 1024/512,
    # wd 0.05, 5 warm-up epochs, cosine to 1e-5, RandAugment m9, random erasing 0.25, mixup 0.8 / cutmix 1.0,
    # label smoothing 0.1, drop path 0.1) with ERK masks updated every 7000 steps and a drop fraction of 0.5
    # decayed by a cosine, ending at 80% of training; the paper trains it for 200 epochs.
    Recipe(name="deit_base_imagenet",
           description="DeiT-Base on ImageNet: DeiT/SViTE recipe (Chen et al. 2021), 200 epochs, AdamW lr 1e-3, batch 1024",
           model="deit_base_patch16_224", model_kwargs={"drop_path_rate": 0.1}, dataset="imagenet",
           augmentation="deit", auto_augment="rand-m9-mstd0.5-inc1", random_erasing=0.25, mixup=0.8, cutmix=1.0,
           label_smoothing=0.1, epochs=200, batch_size=1024, optimizer="adamw", lr=1e-3, weight_decay=0.05,
           no_decay_norm_bias=True, lr_schedule="cosine", warmup_epochs=5, warmup_lr=1e-6, min_lr=1e-5,
           distribution="erk", delta_t=7000,
           dst_options={"drop_fraction": 0.5, "drop_schedule": "cosine", "end_fraction": 0.8}),
    _video("r3d50"),
    _video("i3d"),
):
    register_recipe(_recipe)
