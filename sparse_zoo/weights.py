"""Mask-aware ``model.safetensors``: weights, masks and what the model is.

Layout (format version 1). The file is a plain safetensors file holding the model's
``state_dict()``: every parameter and buffer under its usual key, and every mask as
the bool tensor ``<module>.weight_mask`` (safetensors dtype ``BOOL``, one byte per
element, same shape as ``<module>.weight``), exactly as
:mod:`sparse_zoo.sparsity` registers it. Pruned weights are stored as zeros. So any
timm loader reads it as an ordinary checkpoint, and ``model.load_state_dict`` of a
model with the same masks restores it. Bool rather than bit-packed masks: measured by
``tools/bench_weights.py`` on ``resnet34_cifar_rigl_s50``, packing makes the file 17.5%
smaller but loading 2.55x slower (unpacking), and timm's own loader could not read it.

The safetensors metadata (all strings) holds ``format='pt'``, ``sparse_zoo_format``
(the version above), ``model`` (timm name), ``arch``, ``method``, ``sparsity``,
``distribution``, ``dataset`` (training-set tag), ``model_args`` (JSON of the
create_model arguments, e.g. ``num_classes``, ``width``) and ``sha256`` (of every
tensor's key, dtype, shape and bytes, in key order) so corruption inside the data is
caught too.

Loading validates everything against the model before changing it: bad files,
masks that do not fit, weights that are nonzero outside their mask, and dense
checkpoints loaded into sparse models give a ValueError naming the file or tensor,
and leave the model untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .sparsity import MASK_SUFFIX, check_masks, has_mask, masked_modules

FORMAT_VERSION = "1"
WEIGHTS_NAME = "model.safetensors"
REQUIRED_METADATA = ("arch", "method", "sparsity", "distribution", "dataset")
_MASK_KEY = ".weight" + MASK_SUFFIX


def resolve(path: str | os.PathLike) -> Path:
    """A weight file, or the ``model.safetensors`` inside a directory."""
    path = Path(path)
    return path / WEIGHTS_NAME if path.is_dir() else path


def _model_args(model: nn.Module) -> dict:
    args = {k: v for k, v in getattr(model, "_model_args", {}).items() if _jsonable(v)}
    if isinstance(getattr(model, "num_classes", None), int):
        args["num_classes"] = model.num_classes  # after reset_classifier
    return args


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def checksum(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's key, dtype, shape and bytes, in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save(model: nn.Module, path: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` (weights and masks) to ``path`` atomically; returns the file written.

    ``metadata`` adds to / overrides what ``model.zoo_info`` provides; ``arch``,
    ``method``, ``sparsity``, ``distribution`` and ``dataset`` must end up known.
    The mask invariant is checked first, so an invalid model never reaches disk.
    """
    check_masks(model)
    meta = {"format": "pt", "sparse_zoo_format": FORMAT_VERSION}
    zoo = getattr(model, "zoo_info", None)
    if zoo is not None:
        meta.update(zoo.as_metadata())
    meta["model_args"] = json.dumps(_model_args(model), sort_keys=True)
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ValueError(f"metadata lacks {', '.join(missing)}: pass them in metadata= (the model has no zoo_info)")
    try:
        float(meta["sparsity"])
    except ValueError:
        raise ValueError(f"metadata sparsity must be a number, got {meta['sparsity']!r}") from None
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta["sha256"] = checksum(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors metadata of a weight file (raises ValueError if it is unreadable)."""
    path = resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is truncated or corrupt (not a readable safetensors file): {e}") from e


def read_state_dict(path: str | os.PathLike, *, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a weight file; with ``verify``, the checksum must match when present."""
    path = resolve(path)
    metadata = read_metadata(path)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is truncated or corrupt: {e}") from e
    if verify and "sha256" in metadata and checksum(state) != metadata["sha256"]:
        raise ValueError(f"{path} is corrupt: its tensors do not match the checksum stored in it")
    return state, metadata


def check_state_dict(state: Mapping[str, torch.Tensor], source: str = "the checkpoint") -> None:
    """Each mask is bool, fits its weight, and the weight is zero outside it (ValueError names the tensor)."""
    for key, mask in state.items():
        if not key.endswith(_MASK_KEY):
            continue
        wkey = key[: -len(MASK_SUFFIX)]
        weight = state.get(wkey)
        if mask.dtype != torch.bool:
            raise ValueError(f"{key} in {source} is {mask.dtype}, masks must be bool")
        if weight is None:
            raise ValueError(f"{key} in {source} has no {wkey} beside it")
        if weight.shape != mask.shape:
            raise ValueError(f"{key} in {source} has shape {tuple(mask.shape)} but {wkey} has {tuple(weight.shape)}")
        outside = int(torch.count_nonzero(weight[~mask]))
        if outside:
            raise ValueError(f"{wkey} in {source} has {outside} nonzero values outside {key}: "
                             "not a valid sparse checkpoint")


def _dense_into_sparse(model: nn.Module, source: str) -> ValueError:
    zoo = getattr(model, "zoo_info", None)
    dense = f"'{zoo.arch}_dense'" if zoo else "the dense model"
    n = sum(1 for _ in masked_modules(model))
    return ValueError(
        f"{source} is a dense checkpoint (it has no masks) but the model is sparse ({n} masked layers). "
        f"Load it into {dense} instead. To get a sparse model from it, load it dense, prune it with "
        "sparse_zoo.sparsity.sparsify(model, sparsity, distribution, scores=sparse_zoo.sparsity.magnitude_scores) "
        "and fine-tune with the masks frozen (examples/finetune.py), or train the variant with `sparse-zoo train`.")


def adopt_masks(model: nn.Module, state: dict[str, torch.Tensor], *, source: str = "the checkpoint",
                lenient: Iterable[str] = ()) -> None:
    """Make the model's masks those of ``state`` (add, replace or drop), after validating them.

    Layers named in ``lenient`` (classifiers being replaced for a new number of
    classes) keep their own mask when the checkpoint's does not fit; their mask key
    is dropped from ``state``. Nothing changes in ``model`` unless everything fits.
    """
    check_state_dict(state, source)
    modules = dict(model.named_modules())
    file_masks = {k[: -len(_MASK_KEY)]: v for k, v in state.items() if k.endswith(_MASK_KEY)}
    if not file_masks and any(True for _ in masked_modules(model)):
        raise _dense_into_sparse(model, source)
    keep_own = {name for name in lenient if name in modules and name + ".weight" in state
                and state[name + ".weight"].shape != modules[name].weight.shape}
    for name, mask in file_masks.items():
        weight = getattr(modules.get(name), "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"{name}{_MASK_KEY} in {source} has no layer {name!r} with a weight in the model")
        if weight.shape != mask.shape and name not in keep_own:
            raise ValueError(f"{name}{_MASK_KEY} in {source} has shape {tuple(mask.shape)}, "
                             f"but the model's {name}.weight is {tuple(weight.shape)}")
    for name in keep_own:
        state.pop(name + _MASK_KEY, None)
    for name, module in modules.items():
        if name in keep_own:
            continue
        if name in file_masks:
            if not has_mask(module):
                module.register_buffer("weight" + MASK_SUFFIX, torch.ones_like(module.weight, dtype=torch.bool))
        elif has_mask(module):
            del module._buffers["weight" + MASK_SUFFIX]


def pretrained_filter(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm ``pretrained_filter_fn``: restore the file's masks on the model before timm loads the state."""
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    heads = [classifier] if isinstance(classifier, str) else list(classifier or [])
    adopt_masks(model, state_dict, source="the pretrained weights", lenient=heads)
    return state_dict


def load_into(model: nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load weights and masks of ``path`` into ``model`` (strict); returns the file's metadata.

    Keys and shapes are all checked before the model is touched, so a failure leaves
    it as it was.
    """
    path = resolve(path)
    state, metadata = read_state_dict(path)
    source = str(path)
    check_state_dict(state, source)
    file_masks = {k for k in state if k.endswith(_MASK_KEY)}
    if not file_masks and any(True for _ in masked_modules(model)):
        raise _dense_into_sparse(model, source)
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith(_MASK_KEY)}
    params = {k: v for k, v in state.items() if k not in file_masks}
    missing, unexpected = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source} does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
                         + (" (is it another architecture or width?)" if missing else ""))
    for key, tensor in params.items():
        if tensor.shape != expected[key]:
            raise ValueError(f"{key} in {source} has shape {tuple(tensor.shape)}, "
                             f"the model's has {tuple(expected[key])} (another num_classes or width?)")
    adopt_masks(model, state, source=source)
    model.load_state_dict(state, strict=True)
    return metadata
