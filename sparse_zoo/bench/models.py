"""Resolving model specs for the benchmark, and what the leaderboard needs to know about a model.

``load(spec)`` is ``sparse_zoo.hub.load_model`` (timm names with pretrained weights,
``hf-hub:`` ids, local folders and files); ``describe`` gathers the method from the
model's zoo metadata (or its zoo name) and measures its sparsity from the weights.
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
from torch import nn

from ..sparsity import MASK_SUFFIX, report

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


def load(spec: str) -> nn.Module:
    """The model of a spec, in eval mode (timm name with pretrained weights, ``hf-hub:`` id or local path)."""
    from ..hub import load_model
    return load_model(spec).eval()


def _metadata(spec: str) -> dict:
    """What a local model says about itself: config.json (and its ``sparse_zoo`` entry), then the weights' header."""
    path = Path(spec).expanduser()
    if not path.exists():
        return {}
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    config_path = weights.parent / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    with safe_open(str(weights), "pt") as f:
        header = dict(f.metadata() or {})
    return {**config, **config.get("sparse_zoo", {}), **header}


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
    zoo_info = getattr(model, "zoo_info", None)
    meta = {**_metadata(spec), **(asdict(zoo_info) if zoo_info is not None else {})}
    architecture = meta.get("model") or meta.get("architecture") or cfg.get("architecture") or display_name(spec)
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
