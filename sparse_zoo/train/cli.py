"""``sparse-zoo train``: train a recipe with a DST method into a run directory.

Examples::

    sparse-zoo train --recipe resnet34_cifar10 --method rigl --sparsity 0.5 \\
        --data ../shared/data/cifar10 --out runs/r34_rigl_s50 --set model_kwargs.width=0.25 epochs=3
    sparse-zoo train --recipe resnet34_cifar10 ... --out runs/r34_rigl_s50 --resume
    torchrun --nproc-per-node 2 -m sparse_zoo train --recipe ... --out ...
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

from .recipes import RECIPES, Recipe, apply_overrides, get_recipe, list_recipes, load_yaml, parse_set

def _recipes_table() -> str:
    return "\n".join(f"  {name:30s} {RECIPES[name].description}" for name in list_recipes())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sparse_zoo.dst import methods
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (f"recipes (--recipe):\n{_recipes_table()}\n\nmethods (--method): {', '.join(methods())}\n\n"
                     "Any recipe field can be overridden: --set lr=0.05 epochs=3 model_kwargs.width=0.25 "
                     "(--show-recipe prints them all).\nA run directory ends with model.safetensors and config.json "
                     "(sparse_zoo.hub.load_model reads it), log.csv / log.jsonl, run.json and checkpoint.safetensors.")
    parser.add_argument("--recipe", required=True, metavar="NAME", help="a named recipe (listed below)")
    parser.add_argument("--method", default=None, help="DST method (default: the recipe's, dense)")
    parser.add_argument("--sparsity", type=float, default=None, help="target sparsity in [0, 1) (e.g. 0.4)")
    parser.add_argument("--data", metavar="PATH", help="dataset root in the recipe's layout")
    parser.add_argument("--out", metavar="RUN_DIR", help="run directory (new, or this run's with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--config", metavar="YAML", action="append", default=[],
                        help="YAML file of recipe fields to override (repeatable; applied before --set)")
    parser.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="extend", default=[], dest="overrides",
                        help="override recipe fields; dotted keys reach into mappings (model_kwargs.width=0.25)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default=None, help="mixed precision")
    parser.add_argument("--channels-last", action="store_true", default=None, help="channels_last memory format")
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--workers", type=int, default=None, help="data loader processes")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="stop after this global step as on Ctrl-C (checkpointed; --resume continues)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--show-recipe", action="store_true", help="print the resolved recipe as JSON and exit")


def build_recipe(args: argparse.Namespace) -> Recipe:
    """The named recipe with YAML files, then ``--set``, then the dedicated flags applied."""
    recipe = get_recipe(args.recipe)
    overrides: dict[str, Any] = {}
    for path in args.config:
        overrides.update(load_yaml(path))
    overrides.update(parse_set(args.overrides))
    flags = {"method": args.method, "sparsity": args.sparsity, "device": args.device, "amp": args.amp,
             "channels_last": args.channels_last, "compile": args.compile, "workers": args.workers}
    overrides.update({k: v for k, v in flags.items() if v is not None})
    return apply_overrides(recipe, overrides)


def run(args: argparse.Namespace) -> int:
    try:
        recipe = build_recipe(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.show_recipe:
        print(json.dumps(recipe.to_dict(), indent=2))
        return 0
    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
    if missing:
        print(f"error: {' and '.join(missing)} required to train", file=sys.stderr)
        return 2
    from .trainer import train
    try:
        result = train(recipe, args.data, args.out, resume=args.resume, progress=not args.no_progress,
                       stop_at_step=args.stop_at_step)
    except ValueError as err:
        print("error: " + textwrap.indent(str(err), "  ").lstrip(), file=sys.stderr)
        return 2
    if result.interrupted:
        print(f"stopped at step {result.global_step}; continue with the same command and --resume "
              f"(checkpoint in {result.run_dir})")
        return 0 if args.stop_at_step is not None and result.global_step >= args.stop_at_step else 130
    last = result.last
    print(f"done: {result.epochs_done} epochs, eval acc {last.get('eval_acc', float('nan')):.2f}%, "
          f"density {last.get('density', float('nan')):.4f}; model in {result.run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tools/train.py`` (the same code as ``sparse-zoo train``)."""
    parser = argparse.ArgumentParser(prog="train.py", description="Train a model with a named recipe and a DST method.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
