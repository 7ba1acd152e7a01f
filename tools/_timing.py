"""Timing helper shared by the benchmark scripts (run them as ``python tools/NAME.py``)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls: robust to the odd slow run on a shared machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def best_pass(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    """Wall time of the fastest call: at least ``repeats`` calls, and more until ``min_time`` seconds are spent.

    For throughput on a shared machine: a few passes of milliseconds can all land in a
    slow spell; many passes over a second or more give a stable best.
    """
    best, spent, done = float("inf"), 0.0, 0
    while done < repeats or spent < min_time:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, done = min(best, elapsed), spent + elapsed, done + 1
    return best
