"""Resolving model specs for the benchmark, and what the leaderboard needs to know about a model.

``load(spec)`` goes through ``sparse_zoo.hub.load_model`` when the hub module is
installed; until then (and as a fallback) it reads local ``model.safetensors`` +
``config.json`` folders itself and hands timm names and ``hf-hub:`` ids to
``timm.create_model(..., pretrained=True)``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from ..sparsity import MASK_SUFFIX, report, set_mask

_NAME_PATTERN = re.compile(r"^(?P<arch>.+?)_(?:(?P<method>[a-z_]+?)_s(?P<sparsity>\d{2})|dense)$")
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


@dataclass
class ModelInfo:
    """What the results and the leaderboard record about a model."""

    name: str
    spec: str
    architecture: str
    method: str
    sparsity: float
    param_count: int
    nonzero_params: int
    num_classes: int
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fingerprint: str

    def as_dict(self) -> dict:
        return asdict(self)


def display_name(spec: str) -> str:
    """A short name for a spec: the timm name, the Hub id, or the folder / file name."""
    if spec.startswith("hf-hub:"):
        return spec[len("hf-hub:"):]
    path = Path(spec)
    if path.exists():
        path = path.resolve()
        return path.parent.name if path.is_file() and path.name == WEIGHTS_FILE else path.stem
    return spec


def _local_files(path: Path) -> tuple[Path, Path]:
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    config = weights.parent / CONFIG_FILE
    if not weights.is_file() or not config.is_file():
        raise ValueError(f"{path}: a local model needs {WEIGHTS_FILE} and {CONFIG_FILE} side by side "
                         f"(as written by sparse_zoo.hub.save_pretrained or sparse-zoo train)")
    return weights, config


def _load_local(path: Path) -> nn.Module:
    weights, config_path = _local_files(path)
    config = json.loads(config_path.read_text())
    if "architecture" not in config:
        raise ValueError(f"{config_path}: no 'architecture' entry")
    model = timm.create_model(config["architecture"], pretrained=False, num_classes=config.get("num_classes", 1000),
                              **config.get("model_args", {}))
    state = load_file(weights)
    modules = dict(model.named_modules())
    for key, mask in state.items():
        if key.endswith(f".weight{MASK_SUFFIX}"):
            set_mask(modules[key.rsplit(".", 1)[0]], mask.bool())
    model.load_state_dict(state, strict=True)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    cfg.update(config.get("pretrained_cfg", {}))
    model.pretrained_cfg = cfg
    return model


def _fallback_load(spec: str) -> nn.Module:
    path = Path(spec).expanduser()
    if path.exists():
        return _load_local(path)
    if spec.startswith("hf-hub:") or spec in timm.list_models():
        return timm.create_model(spec, pretrained=True)
    close = timm.list_models(f"*{spec.split('_')[0]}*")[:10] if spec else []
    raise ValueError(f"unknown model {spec!r}: not a local file or folder, an hf-hub: id or a timm model name"
                     + (f"; similar timm names: {', '.join(close)}" if close else ""))


def load(spec: str) -> nn.Module:
    """The model of a spec, in eval mode (timm name with pretrained weights, ``hf-hub:`` id or local path)."""
    import sparse_zoo  # noqa: F401  (registers the zoo's variants with timm)
    try:
        from ..hub import load_model
    except ImportError:
        load_model = _fallback_load
    return load_model(spec).eval()


def _metadata(spec: str) -> dict:
    """Method/sparsity metadata of a local model: safetensors header first, then config.json."""
    path = Path(spec).expanduser()
    if not path.exists():
        return {}
    weights, config = _local_files(path)
    with safe_open(str(weights), "pt") as f:
        meta = dict(f.metadata() or {})
    return {**json.loads(config.read_text()), **meta}


def fingerprint(model: nn.Module) -> str:
    """A hash of every tensor in the state dict: the same weights and masks give the same string."""
    h = hashlib.blake2b(digest_size=12)
    for key, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def describe(spec: str, model: nn.Module, name: str | None = None) -> ModelInfo:
    """ModelInfo of a loaded model; method from metadata or the zoo name, sparsity measured from its weights."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    meta = _metadata(spec)
    architecture = meta.get("architecture") or cfg.get("architecture") or display_name(spec)
    match = _NAME_PATTERN.match(architecture.split("/")[-1].split(".")[0])
    sparsity_report = report(model)
    masked = any(n.endswith(f".weight{MASK_SUFFIX}") for n, _ in model.named_buffers())
    method = meta.get("method") or (match and (match["method"] or "dense")) or ("sparse" if masked else "dense")
    num_classes = getattr(model, "num_classes", None) or cfg.get("num_classes")
    if num_classes is None:
        raise ValueError(f"{spec}: cannot tell the model's number of classes (no num_classes attribute or config)")
    return ModelInfo(
        name=name or display_name(spec), spec=spec, architecture=architecture, method=str(method),
        sparsity=round(sparsity_report.sparsity, 6), param_count=sparsity_report.total_params,
        nonzero_params=sparsity_report.nonzero_params, num_classes=int(num_classes),
        img_size=int(cfg.get("input_size", (3, 224, 224))[-1]),
        mean=tuple(cfg.get("mean", timm.data.IMAGENET_DEFAULT_MEAN)),
        std=tuple(cfg.get("std", timm.data.IMAGENET_DEFAULT_STD)), fingerprint=fingerprint(model))
