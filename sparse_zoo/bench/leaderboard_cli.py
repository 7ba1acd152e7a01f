"""``sparse-zoo leaderboard RESULTS_DIR``: the leaderboard of a results directory as md, csv or html."""
from __future__ import annotations

import argparse
import sys

from .leaderboard import FORMATS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="results directory written by sparse-zoo bench")
    parser.add_argument("--baseline", help="the model every row is compared with (default: each model's dense "
                                           "counterpart)")
    parser.add_argument("--format", choices=FORMATS, default="md")
    parser.add_argument("--sort", help="column to sort by (default: the first suite's mean robust accuracy)")
    parser.add_argument("--output", help="write here instead of stdout (html: default RESULTS/leaderboard.html)")


def run(args: argparse.Namespace) -> int:
    from .leaderboard import render
    try:
        text = render(args.results, fmt=args.format, baseline=args.baseline, sort=args.sort, output=args.output)
    except ValueError as e:  # no results, unknown baseline or column: the message lists the valid ones
        print(f"sparse-zoo leaderboard: error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0
