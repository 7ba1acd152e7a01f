"""The ``sparse-zoo`` console command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; the table below names them so that ``--help`` and start-up
stay fast: a subcommand's module (and torch) is imported only when it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from .version import __version__


@dataclass(frozen=True)
class Command:
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "bench": Command("sparse_zoo.bench.cli", "evaluate models on corruption suites (no arguments: a small offline demo run)"),
    "leaderboard": Command("sparse_zoo.bench.leaderboard_cli", "tables and plots from a results directory"),
    "corrupt": Command("sparse_zoo.corruptions.cli", "write a corrupted copy of a dataset in the reference layouts"),
    "train": Command("sparse_zoo.train.cli", "train a model with a named recipe and a DST method"),
    "publish": Command("sparse_zoo.hub.cli", "export a training run as a Hub model folder and upload it"),
    "analyze": Command("sparse_zoo.analysis.cli", "frequency, kernel-map and Grad-CAM analyses with figures"),
    "report": Command("sparse_zoo.sparsity.cli", "per-layer sparsity and FLOPs of a model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-zoo",
        description="Dynamically sparse vision models and a corruption-robustness benchmark.",
        epilog="Run 'sparse-zoo COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"sparse-zoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    cmd = COMMANDS[name]
    module = importlib.import_module(cmd.module)
    sub = argparse.ArgumentParser(prog=f"sparse-zoo {name}", description=cmd.help)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as exc:  # bad input: one clear line, not a traceback
        sub.exit(2, f"sparse-zoo {name}: error: {exc}\n")
