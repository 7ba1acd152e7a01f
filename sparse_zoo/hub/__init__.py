"""Saving, publishing and loading zoo models in the Hugging Face Hub's timm layout.

A model folder holds what timm's Hub loader reads: ``model.safetensors`` (mask-aware,
see :mod:`sparse_zoo.weights`), ``config.json`` (``architecture``, ``num_classes``,
``model_args``, ``pretrained_cfg``, as timm writes it, plus a ``sparse_zoo`` entry
with the model's metadata) and the model card ``README.md``.
"""
from __future__ import annotations

import difflib
import json
import os
import tempfile
from dataclasses import asdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
from timm.models._hub import save_config_for_hf
from torch import nn

from .. import weights
from ..models import ARCHS, VARIANTS, ZooInfo
from ..sparsity import has_mask, report
from .card import Results, model_card

CONFIG_NAME = "config.json"
CARD_NAME = "README.md"

__all__ = ["CARD_NAME", "CONFIG_NAME", "Results", "load_model", "model_info", "push_to_hub",
           "save_pretrained", "upload_folder"]


def model_info(model: nn.Module, info: ZooInfo | None = None) -> ZooInfo:
    """The metadata to save: ``info`` if given, else ``model.zoo_info``, checked against the masks."""
    info = info or getattr(model, "zoo_info", None)
    if info is None:
        raise ValueError("the model carries no zoo_info (not built by timm.create_model from a zoo name): "
                         "pass info=sparse_zoo.models.run_info(arch, method, sparsity, dataset)")
    masked = any(has_mask(m) for m in model.modules())
    if masked and info.method == "dense":
        raise ValueError(f"the model has masks but its metadata says dense ({info.model}): pass "
                         "info=sparse_zoo.models.run_info(arch, method, sparsity, dataset) naming how it was trained")
    return info


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _results(results: Mapping[str, Any] | Results | None) -> Results | None:
    if results is None or isinstance(results, Results):
        return results
    return Results.from_dict(results)


def save_pretrained(model: nn.Module, save_directory: str | os.PathLike, *,
                    results: Mapping[str, Any] | Results | None = None, info: ZooInfo | None = None,
                    repo_id: str | None = None) -> Path:
    """Write ``model.safetensors``, ``config.json`` and the card ``README.md`` into ``save_directory``.

    ``results``: benchmark numbers for the card (see :class:`Results`); ``info``: the
    model's metadata when ``model.zoo_info`` does not describe it (e.g. a dense
    architecture trained with a DST engine); ``repo_id``: the Hub id the card's usage
    example names.
    """
    info = model_info(model, info)
    card_results = _results(results)
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    weights.save(model, out / weights.WEIGHTS_NAME, info.as_metadata())
    config_path = out / CONFIG_NAME
    tmp = config_path.with_name(f".{CONFIG_NAME}.{os.getpid()}.tmp")
    save_config_for_hf(model, str(tmp))
    config = json.loads(tmp.read_text())
    tmp.unlink()
    if info.model in VARIANTS:
        config["architecture"] = info.model
    cfg_input = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if cfg_input is not None and len(cfg_input) == 4:  # timm writes (C, H, W); keep the clip length
        config["pretrained_cfg"]["input_size"] = list(cfg_input)
    config["pretrained_cfg"]["tag"] = info.dataset
    config["sparse_zoo"] = info.as_metadata()
    if card_results is not None:
        config["results"] = asdict(card_results)
    _write_atomic(config_path, json.dumps(config, indent=2) + "\n")
    card = model_card(info.model, info, report=report(model), repo_id=repo_id, results=card_results)
    _write_atomic(out / CARD_NAME, card)
    return out


def upload_folder(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
                  commit_message: str | None = None) -> Any:
    """Create the Hub repo (if needed) and upload ``folder`` to it with huggingface_hub."""
    from huggingface_hub import create_repo
    from huggingface_hub import upload_folder as hf_upload_folder

    folder = Path(folder)
    missing = [n for n in (weights.WEIGHTS_NAME, CONFIG_NAME, CARD_NAME) if not (folder / n).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a model folder: {', '.join(missing)} missing (write it with save_pretrained)")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must be ORG/NAME, got {repo_id!r}")
    create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=token)
    return hf_upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", token=token,
                            commit_message=commit_message or f"Upload {repo_id.split('/')[1]} (sparse-zoo)")


def push_to_hub(model: nn.Module, repo_id: str, *, results: Mapping[str, Any] | Results | None = None,
                info: ZooInfo | None = None, private: bool = False, token: str | None = None,
                commit_message: str | None = None) -> Any:
    """Save the model folder to a temporary directory and upload it to ``repo_id``."""
    with tempfile.TemporaryDirectory(prefix="sparse-zoo-push-") as tmp:
        save_pretrained(model, tmp, results=results, info=info, repo_id=repo_id)
        return upload_folder(tmp, repo_id, private=private, token=token, commit_message=commit_message)


def _load_local(path: Path, **kwargs: Any) -> nn.Module:
    """A folder or weight file written by save_pretrained / the training tool / weights.save."""
    file = weights.resolve(path)
    metadata = weights.read_metadata(file)
    config_path = file.parent / CONFIG_NAME
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    name = config.get("architecture") or metadata.get("model")
    if not name:
        raise ValueError(f"{file}: neither a config.json 'architecture' beside it nor a 'model' in its metadata "
                         "says which architecture to build")
    args = dict(config.get("model_args") or json.loads(metadata.get("model_args", "{}")))
    args.setdefault("num_classes", config.get("num_classes"))
    args.update(kwargs)
    # the saved pretrained_cfg (mean/std of the training set's tag) over the architecture's default
    model = timm.create_model(name, pretrained=False, pretrained_cfg_overlay=config.get("pretrained_cfg"), **args)
    weights.load_into(model, file)
    if metadata.keys() >= set(weights.REQUIRED_METADATA) and "model" in metadata:
        model.zoo_info = ZooInfo.from_metadata(metadata)
    return model


def _unknown(name: str) -> ValueError:
    base = name.split(".")[0]
    close = difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return ValueError(f"{name!r} is not a local file or folder, an hf-hub:/local-dir: id or a timm model name"
                      f"{hint}. Zoo names look like resnet50_rigl_s10 or vgg16_cifar_dense "
                      f"(architectures: {', '.join(ARCHS)}).")


def load_model(spec: str | os.PathLike, **kwargs: Any) -> nn.Module:
    """A model from a timm name (pretrained weights), an ``hf-hub:``/``local-dir:`` id, or a local folder/file.

    Local folders and ``.safetensors`` files are loaded with their checksum verified
    and the mask invariant checked; everything else goes through
    ``timm.create_model(spec, pretrained=True, **kwargs)``.
    """
    spec_str = str(spec)
    path = Path(spec_str).expanduser()
    if path.exists():
        return _load_local(path, **kwargs)
    if spec_str.startswith(("hf-hub:", "local-dir:")):
        return timm.create_model(spec_str, pretrained=True, **kwargs)
    if not timm.is_model(spec_str.split(".")[0]):
        raise _unknown(spec_str)
    return timm.create_model(spec_str, pretrained=True, **kwargs)
