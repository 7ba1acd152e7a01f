"""``sparse-zoo bench``: evaluate models on corruption suites; with no arguments, the offline default run."""
from __future__ import annotations

import argparse
import os
import sys

from .suites import SOURCES, suite_names


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _data(text: str | None) -> str | dict[str, str] | None:
    """PATH, or suite=PATH,suite=PATH for different suites."""
    if text is None or "=" not in text:
        return text
    return dict(part.split("=", 1) for part in _csv(text))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("With no arguments: a small offline benchmark of the models shipped with the package "
                     f"on CIFAR-10-C. Suites: {', '.join(suite_names())}.")
    parser.add_argument("--model", type=_csv, help="comma-separated: timm names, hf-hub:ORG/NAME ids or local "
                                                    "model folders / model.safetensors files")
    parser.add_argument("--suite", type=_csv, help=f"comma-separated suites: {', '.join(suite_names())}")
    parser.add_argument("--data", help="the pre-rendered suite or its clean dataset (corrupted on the fly); "
                                       "suite=PATH,suite=PATH for several")
    parser.add_argument("--clean-data", help="clean test set for the clean accuracy of a pre-rendered suite")
    parser.add_argument("--out", default=None, help="results directory (default: results; the default run uses "
                                                    "sparse_zoo_results/default)")
    parser.add_argument("--corruptions", type=_csv, help="only these corruptions")
    parser.add_argument("--severities", type=lambda t: [int(s) for s in _csv(t)], help="only these severities")
    parser.add_argument("--limit", type=int, help="evaluate N evenly spaced images of each cell (class-balanced on sorted folders)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="seed of on-the-fly corruptions")
    parser.add_argument("--source", choices=SOURCES, default="auto",
                        help="pre-rendered data or on-the-fly corruption (auto: whatever --data holds)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: the local GPU when there is one)")
    parser.add_argument("--workers", type=int, default=0, help="data loading processes for image folders")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--compile-corruptions", action="store_true",
                        help="torch.compile the on-the-fly corruptions that gain from it (gaussian, impulse and "
                             "speckle noise, brightness, contrast, saturate): worth it from a few thousand images "
                             "per cell; results within 1/255 of eager, kept apart in the results store")
    parser.add_argument("--no-clean", action="store_true", help="skip the clean accuracy")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--format", choices=("md", "csv", "html"), default="md", help="leaderboard printed at the end")


def run(args: argparse.Namespace) -> int:
    from .store import CorruptResultsError
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, CorruptResultsError) as e:  # bad input: the message says what to do
        print(f"sparse-zoo bench: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from . import default, leaderboard
    from .runner import evaluate
    if args.model is None and args.suite is None and args.data is None:
        default.run(args.out or "sparse_zoo_results/default", progress=not args.no_progress)
        return 0
    if not args.model or not args.suite:
        raise SystemExit("sparse-zoo bench: give both --model and --suite (or no arguments for the default run); "
                         f"suites: {', '.join(suite_names())}")
    out = args.out or "results"
    evaluate(args.model, args.suite, data=_data(args.data), out=out, clean_data=_data(args.clean_data),
             batch_size=args.batch_size, seed=args.seed, limit=args.limit, corruptions=args.corruptions,
             severities=args.severities, clean=not args.no_clean, source=args.source, device=args.device,
             workers=args.workers, progress=not args.no_progress, threads=args.threads,
             compile_corruptions=args.compile_corruptions)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone prints the table
        return 0
    print(leaderboard.render(out, fmt=args.format))
    return 0
