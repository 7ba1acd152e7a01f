"""The results store: one JSON file per (model, suite, corruption, severity), written atomically.

Layout of a results directory::

    RESULTS/<model>/<suite>-<config hash>/config.json          what was run (config, model info)
    RESULTS/<model>/<suite>-<config hash>/<corruption>-<s>.json  one record per cell
    (the clean set is the cell ``clean-0``)

The config hash covers everything that changes the numbers (model weights and masks,
suite, data source and identity, seed, images per cell, corruption engine version),
so a changed config writes to a new folder and never mixes with old records;
re-running the same config skips the cells already there. Every file is written to
a temporary name and moved into place with ``os.replace``: a killed run leaves whole
files or none. A file that exists but cannot be read is reported
(:class:`CorruptResultsError`) and never overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CLEAN = "clean"
CONFIG_NAME = "config.json"
RECORD_FIELDS = ("model", "suite", "corruption", "severity", "n", "correct", "config_hash")


class CorruptResultsError(RuntimeError):
    """A results file exists but is unreadable or inconsistent; it was left untouched."""


@dataclass
class Record:
    model: str
    suite: str
    corruption: str
    severity: int
    n: int
    correct: int
    config_hash: str
    seed: int = 0
    device: str = "cpu"
    world_size: int = 1
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy": self.accuracy,
                "images_per_s": self.n / self.seconds if self.seconds else None}


def versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers."""
    import numpy
    import timm
    import torch
    import torchvision

    from ..version import __version__
    return {"sparse_zoo": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=6).hexdigest()


def safe_name(name: str) -> str:
    """A file-system safe form of a model name (``org/name`` -> ``org--name``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "--", name).strip("-") or "model"


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, flush it to disk, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptResultsError(f"results file {path} is unreadable ({e.__class__.__name__}: {e}); it was left "
                                  f"untouched: move or delete it to re-run its cell") from None


def _record(path: Path, data: Any, expected_hash: str | None = None) -> Record:
    if not isinstance(data, dict) or any(k not in data for k in RECORD_FIELDS):
        raise CorruptResultsError(f"results file {path} lacks the fields {', '.join(RECORD_FIELDS)}; it was left "
                                  f"untouched: move or delete it to re-run its cell")
    if expected_hash is not None and data["config_hash"] != expected_hash:
        raise CorruptResultsError(f"results file {path} has config hash {data['config_hash']} inside a folder for "
                                  f"{expected_hash}; it was left untouched: move or delete it")
    known = set(Record.__dataclass_fields__)
    return Record(**{k: v for k, v in data.items() if k in known})


class RunStore:
    """The folder of one (model, suite, config): its config file and its records."""

    def __init__(self, root: str | Path, model: str, suite: str, config: dict[str, Any], info: dict[str, Any]):
        self.config, self.info = config, info
        self.hash = config_hash(config)
        self.model, self.suite = model, suite
        self.dir = Path(root) / safe_name(model) / f"{suite}-{self.hash}"

    def cell_path(self, corruption: str, severity: int) -> Path:
        return self.dir / f"{corruption}-{severity}.json"

    def done(self) -> dict[tuple[str, int], Record]:
        """Records already written; raises CorruptResultsError (touching nothing) if any file is bad."""
        out = {}
        if (self.dir / CONFIG_NAME).exists():
            _read_json(self.dir / CONFIG_NAME)
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            if path.name == CONFIG_NAME:
                continue
            rec = _record(path, _read_json(path), self.hash)
            out[(rec.corruption, rec.severity)] = rec
        return out

    def write(self, record: Record) -> None:
        if not (self.dir / CONFIG_NAME).exists():
            atomic_write_json(self.dir / CONFIG_NAME, {"config_hash": self.hash, "model": self.model,
                                                       "suite": self.suite, "config": self.config,
                                                       "model_info": self.info})
        path = self.cell_path(record.corruption, record.severity)
        if path.exists():  # never overwrite: a finished cell is final
            raise CorruptResultsError(f"results file {path} appeared while this cell ran; left untouched")
        atomic_write_json(path, record.as_dict())


@dataclass
class RunResults:
    """The records of one (model, suite, config) as read back from a results directory."""

    model: str
    suite: str
    config_hash: str
    config: dict[str, Any]
    info: dict[str, Any]
    records: dict[tuple[str, int], Record]
    modified: float

    def table(self) -> dict[str, dict[int, float]]:
        """corruption -> severity -> accuracy, without the clean cell."""
        out: dict[str, dict[int, float]] = {}
        for (c, s), rec in sorted(self.records.items()):
            if c != CLEAN:
                out.setdefault(c, {})[s] = rec.accuracy
        return out

    @property
    def clean_accuracy(self) -> float | None:
        rec = self.records.get((CLEAN, 0))
        return rec.accuracy if rec else None


def read_results(root: str | Path) -> tuple[list[RunResults], list[str]]:
    """Every run folder under ``root`` and the problems met (unreadable files are skipped, never changed)."""
    runs, problems = [], []
    for config_path in sorted(Path(root).glob(f"*/*/{CONFIG_NAME}")):
        folder = config_path.parent
        try:
            head = _read_json(config_path)
            records = {}
            for path in sorted(folder.glob("*.json")):
                if path.name != CONFIG_NAME:
                    try:
                        rec = _record(path, _read_json(path), head["config_hash"])
                        records[(rec.corruption, rec.severity)] = rec
                    except CorruptResultsError as e:
                        problems.append(str(e))
            modified = max(p.stat().st_mtime for p in folder.glob("*.json"))
            runs.append(RunResults(head["model"], head["suite"], head["config_hash"], head.get("config", {}),
                                   head.get("model_info", {}), records, modified))
        except (CorruptResultsError, KeyError) as e:
            problems.append(str(e) if isinstance(e, CorruptResultsError) else f"{config_path}: missing {e}")
    return runs, problems


def latest_runs(runs: list[RunResults]) -> Iterator[RunResults]:
    """Per (model, suite), the most recently written config (older configs stay on disk, unused)."""
    best: dict[tuple[str, str], RunResults] = {}
    for run in runs:
        key = (run.model, run.suite)
        if key not in best or run.modified > best[key].modified:
            best[key] = run
    yield from best.values()
