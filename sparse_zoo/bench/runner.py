"""Evaluating models on corruption suites: planning, sharding across processes, and recording.

Work is a list of *cells* (suite, corruption, severity; the clean set is the cell
``clean``/0), each evaluated for every model that lacks it: a batch is loaded and
corrupted once and goes through all those models, so on-the-fly corruption costs the
same for one model or ten. Under ``torchrun`` every rank takes a contiguous shard of each
cell's images (like DistributedSampler without padding: every image is counted once)
and the counts are all-reduced, so the numbers equal a one-process run; rank 0
plans (reading the store) and writes. Everything that can fail on bad input (unknown
names, missing data, class-count mismatch, unreadable results files) fails before
the first image is evaluated.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from ..corruptions.registry import check_compile
from ..data import CorruptBatch, index_batches
from ..train import distributed
from . import models as model_lib
from .store import CLEAN, Record, RunResults, RunStore, versions
from .suites import SuiteData, check_corruptions, get_suite


@dataclass
class BenchOptions:
    """How to run; only ``seed``, ``limit`` and ``compile_corruptions`` change the numbers (they enter the config hash).

    ``compile_corruptions`` runs on-the-fly corruptions through ``torch.compile``
    (``corruptions.apply(..., compile=True)``): faster on large runs, within 1/255 of eager.
    """

    batch_size: int = 256
    seed: int = 0
    limit: int | None = None
    corruptions: Sequence[str] | None = None
    severities: Sequence[int] | None = None
    clean: bool = True
    source: str = "auto"
    device: str | None = None
    workers: int = 0
    progress: bool = True
    threads: int | None = None
    compile_corruptions: bool = False


@dataclass
class _Cell:
    runs: list[int]
    corruption: str
    severity: int
    n: int


@dataclass
class _Run:
    name: str
    model: nn.Module
    info: model_lib.ModelInfo
    data: SuiteData
    store: RunStore


def _device(device: str | None) -> torch.device:
    """The given device, else this process's GPU (``LOCAL_RANK`` under torchrun), else the CPU."""
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _selected(suite, options: BenchOptions, all_suites: list) -> tuple[list[str], list[int]]:
    """The corruptions and severities of ``suite`` that this run evaluates (validated)."""
    names = list(suite.corruptions)
    if options.corruptions is not None:
        valid = sorted({c for s in all_suites for c in s.corruptions})
        unknown = [c for c in options.corruptions if c not in valid]
        if unknown:
            raise ValueError(f"unknown corruption(s) {', '.join(unknown)} for suite(s) "
                             f"{', '.join(s.name for s in all_suites)}; valid: {', '.join(valid)}")
        names = [c for c in options.corruptions if c in suite.corruptions]
        if not names:
            check_corruptions(suite, options.corruptions)
    severities = list(suite.severities if options.severities is None else options.severities)
    bad = [s for s in severities if s not in suite.severities]
    if bad:
        raise ValueError(f"severities {bad} not in suite {suite.name}; valid: {list(suite.severities)}")
    return names, severities


def _spread(total: int, n: int) -> Sequence[int]:
    """``n`` evenly spaced indices of ``total`` (all when n >= total): a limit keeps class-sorted folders balanced."""
    return range(total) if n >= total else [i * total // n for i in range(n)]


def _shard(indices: Sequence[int], rank: int, world: int) -> Sequence[int]:
    n = len(indices)
    return indices[rank * n // world:(rank + 1) * n // world]


def _normalizer(info: model_lib.ModelInfo, device: torch.device, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1) + (1,) * (dims - 2)
    return (torch.tensor(info.mean, device=device).view(shape) * 255.0,
            torch.tensor(info.std, device=device).view(shape) * 255.0)


@torch.inference_mode()
def _evaluate_cell(runs: list[_Run], cell: _Cell, options: BenchOptions, rank: int, world: int,
                   device: torch.device, bar: tqdm | None) -> list[tuple[int, int]]:
    """(correct, n) of each run on one cell; all runs share the suite data, hence each corrupted batch."""
    data = runs[0].data
    dataset = data.clean if cell.corruption == CLEAN else data.cell(cell.corruption, cell.severity, options.seed)
    corrupt = None if cell.corruption == CLEAN else data.transform(cell.corruption, cell.severity, options.seed)
    if options.compile_corruptions and isinstance(corrupt, CorruptBatch):
        corrupt = replace(corrupt, compile=True)
    correct = torch.zeros(len(runs), dtype=torch.int64, device=device)
    count = 0
    for images, labels, indices in index_batches(dataset, _shard(_spread(len(dataset), cell.n), rank, world), options.batch_size,
                                                 options.workers):
        images = images.to(device, non_blocking=True)
        if corrupt is not None:
            images = corrupt(images, indices)
        labels = labels.to(device)
        pixels = images.float()
        for i, run in enumerate(runs):
            mean, std = _normalizer(run.info, device, images.dim())
            correct[i] += (run.model((pixels - mean) / std).argmax(dim=1) == labels).sum()
        count += len(labels)
        if bar is not None:
            bar.update(len(labels) * world)
    totals = torch.stack([correct, torch.full_like(correct, count)], dim=1)
    if world > 1:
        dist.all_reduce(totals)
    return [(int(c), int(n)) for c, n in totals.tolist()]


def _plan(runs: list[_Run], options: BenchOptions, all_suites: list) -> list[_Cell]:
    """The cells still to do, per suite in order, each with the runs (models) that lack it."""
    done = [run.store.done() for run in runs]
    cells = []
    suite_datas: list[SuiteData] = []
    for run in runs:
        if all(run.data is not d for d in suite_datas):
            suite_datas.append(run.data)
    for suite_data in suite_datas:
        members = [i for i, run in enumerate(runs) if run.data is suite_data]
        names, severities = _selected(suite_data.suite, options, all_suites)
        wanted = ([(CLEAN, 0)] if options.clean and suite_data.clean is not None else []) + \
                 [(c, s) for c in names for s in severities]
        for corruption, severity in wanted:
            todo = [i for i in members if (corruption, severity) not in done[i]]
            if not todo:
                continue
            dataset = (suite_data.clean if corruption == CLEAN
                       else suite_data.cell(corruption, severity, options.seed))
            n = len(dataset) if options.limit is None else min(options.limit, len(dataset))
            cells.append(_Cell(todo, corruption, severity, n))
    return cells


def _broadcast(obj: Any, rank: int, world: int) -> Any:
    if world == 1:
        return obj
    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def evaluate(models: Sequence[str], suites: Sequence[str], data: Any = None, out: str = "results", *,
             clean_data: Any = None, **options: Any) -> list[RunResults]:
    """Evaluate every model on every suite; write one record per cell under ``out``; return the results.

    ``data`` is a path (or a {suite: path} dict) holding the pre-rendered suite or
    its clean set (then corrupted on the fly), or a clean Dataset. ``options`` are the
    fields of :class:`BenchOptions` (batch_size, seed, limit images per cell,
    corruptions, severities, clean, source, device, workers, progress, threads).
    Re-running with the same arguments skips the cells already recorded.
    """
    opts = BenchOptions(**options)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if not models or not suites:
        raise ValueError("give at least one model and one suite")
    device = _device(opts.device)
    ctx = distributed.setup(device)
    try:
        return _evaluate(models, suites, data, out, clean_data, opts, ctx.rank, ctx.world, device)
    finally:
        distributed.cleanup(ctx)  # a gloo group left to interpreter exit can abort the process


def _evaluate(models: Sequence[str], suites: Sequence[str], data: Any, out: str, clean_data: Any,
              opts: BenchOptions, rank: int, world: int, device: torch.device) -> list[RunResults]:
    if opts.compile_corruptions:
        check_compile(device)
    suite_objs = [get_suite(s) for s in suites]
    for suite in suite_objs:
        _selected(suite, opts, suite_objs)
    suite_data = [s.open(data.get(s.name) if isinstance(data, dict) else data,
                         clean_data.get(s.name) if isinstance(clean_data, dict) else clean_data, opts.source)
                  for s in suite_objs]
    loaded = []
    for spec in models:
        model = model_lib.load(spec)
        loaded.append((spec, model, model_lib.describe(spec, model)))
    names = [info.name for _, _, info in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name: {names}; give distinct files or folders")
    runs = []
    for _, model, info in loaded:
        for sd in suite_data:
            classes = len(sd.classes) if sd.classes else sd.suite.num_classes  # the data's, when it names them
            if info.num_classes != classes:
                raise ValueError(f"model {info.name} has {info.num_classes} classes but suite {sd.suite.name} has "
                                 f"{classes}; use a model trained for {sd.suite.name}'s dataset")
            config = {"model": info.name, "weights": info.fingerprint, "suite": sd.suite.name,
                      "data": sd.identity, "seed": opts.seed, "limit": opts.limit,
                      "preprocessing": sd.suite.preprocessing,
                      **({"compiled_corruptions": True} if opts.compile_corruptions else {})}
            runs.append(_Run(info.name, model, info, sd, RunStore(out, info.name, sd.suite.name, config,
                                                                   info.as_dict())))
    plan: Any
    if rank == 0:
        try:
            plan = _plan(runs, opts, suite_objs)
        except Exception as e:  # share the failure so that no rank waits forever
            plan = e
    else:
        plan = None
    plan = _broadcast(plan, rank, world)
    if isinstance(plan, Exception):
        raise plan
    _run_cells(runs, plan, opts, rank, world, device)
    return [RunResults(r.name, r.data.suite.name, r.store.hash, r.store.config, r.store.info,
                       r.store.done() if rank == 0 else {}, time.time()) for r in runs]


def _run_cells(runs: list[_Run], plan: list[_Cell], opts: BenchOptions, rank: int, world: int,
               device: torch.device) -> None:
    bar = tqdm(total=sum(c.n for c in plan), unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not opts.progress or rank != 0) if plan else None
    package_versions = versions()
    for run in runs:
        run.model.to(device)
    try:
        for cell in plan:
            cell_runs = [runs[i] for i in cell.runs]
            if bar is not None:
                label = "clean" if cell.corruption == CLEAN else f"{cell.corruption} s{cell.severity}"
                bar.set_description(f"{'+'.join(r.name for r in cell_runs)} | {cell_runs[0].data.suite.name} "
                                    f"| {label}")
            start = time.perf_counter()
            counts = _evaluate_cell(cell_runs, cell, opts, rank, world, device, bar)
            seconds = time.perf_counter() - start
            if rank == 0:
                for run, (correct, n) in zip(cell_runs, counts):
                    run.store.write(Record(run.name, run.data.suite.name, cell.corruption, cell.severity, n,
                                           correct, run.store.hash, opts.seed, str(device), world,
                                           round(seconds, 4), package_versions))
    finally:
        if bar is not None:
            bar.close()
