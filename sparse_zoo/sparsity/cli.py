"""``sparse-zoo report MODEL``: per-layer sparsity and FLOPs of a model.

MODEL is a timm / zoo name (built without downloading unless ``--pretrained``;
zoo variants come with their masks), an ``hf-hub:`` id, or a local folder or
``.safetensors`` file written by the zoo or the training tool.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from .report import report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="timm/zoo name, hf-hub:ORG/NAME, or a local folder / .safetensors file")
    parser.add_argument("--input-size", type=int, nargs="+", metavar="N",
                        help="input without the batch, C H W (or C T H W for video); default: the model's "
                             "pretrained_cfg input_size")
    parser.add_argument("--pretrained", action="store_true", help="load the pretrained weights of a timm name")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra keyword for the model constructor, e.g. num_classes=10 or width=0.25")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _model_args(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-arg {pair!r}: expected KEY=VALUE, e.g. num_classes=10")
        out[key] = yaml.safe_load(value)
    return out


def _load(spec: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    import timm

    import sparse_zoo  # noqa: F401  (registers the zoo with timm)
    from ..hub import load_model

    if Path(spec).expanduser().exists() or spec.startswith(("hf-hub:", "local-dir:")) or pretrained:
        return load_model(spec, **kwargs)
    if not timm.is_model(spec):
        return load_model(spec, **kwargs)  # raises a ValueError with close matches
    return timm.create_model(spec, pretrained=False, **kwargs)


def run(args: argparse.Namespace) -> int:
    input_size = tuple(args.input_size) if args.input_size else None
    if input_size is not None and len(input_size) not in (3, 4):
        raise ValueError(f"--input-size takes C H W or C T H W, got {len(input_size)} numbers")
    model = _load(args.model, args.pretrained, _model_args(args.model_arg))
    result = report(model, input_size)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(result.table())
    print(f"parameters: {result.total_params} total, {result.nonzero_params} nonzero; "
          f"sparsity over conv/linear weights {result.sparsity:.4f}")
    if result.dense_flops:
        print(f"training FLOPs per example and step (3x sparse inference): {result.training_flops():.4g}")
    return 0
