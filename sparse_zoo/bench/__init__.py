"""The corruption-robustness benchmark: suites, the resumable runner, metrics and the leaderboard.

``evaluate(models, suites, data=..., out=...)`` runs and records; ``leaderboard(out)``
builds the tables and plots from what was recorded.
"""
from .runner import BenchOptions, evaluate
from .store import CorruptResultsError, Record, RunResults, read_results
from .suites import SUITES, Suite, SuiteData, get_suite, register_suite, suite_names

__all__ = ["BenchOptions", "CorruptResultsError", "Record", "RunResults", "SUITES", "Suite", "SuiteData",
           "evaluate", "get_suite", "read_results", "register_suite", "suite_names"]
