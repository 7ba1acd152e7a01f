"""The default run: ``sparse-zoo bench`` with no arguments, offline, in minutes on two CPU cores.

It evaluates the small pretrained models shipped in ``sparse_zoo/assets/models/``
(each a ``model.safetensors`` + ``config.json`` folder) on CIFAR-10-C generated on
the fly by ``sparse_zoo.corruptions`` (all 19 corruptions, 5 severities) from a fixed,
class-balanced subset of real CIFAR-10 test images shipped in
``sparse_zoo/assets/cifar10_test_subset.npz`` (``tools/make_bench_assets.py``
regenerates it), then prints the leaderboard and writes its HTML page. It is the
same code path as a full run; only the data and models are small.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import ArrayDataset
from . import leaderboard
from .runner import evaluate

ASSETS = Path(__file__).resolve().parents[1] / "assets"
IMAGES = ASSETS / "cifar10_test_subset.npz"
MODELS = ASSETS / "models"
SUITE = "cifar10-c"


@dataclass
class DefaultRun:
    """What the default run evaluates: images per cell (a class-balanced prefix of the subset), corruptions
    and severities (None: all of the suite's), and CPU threads."""

    images: int = 200
    batch_size: int = 250
    threads: int = 2
    seed: int = 0
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None


def demo_dataset(path: Path = IMAGES) -> ArrayDataset:
    if not path.is_file():
        raise FileNotFoundError(f"the default run's image subset {path} is missing; regenerate it with "
                                f"'python tools/make_bench_assets.py' from a CIFAR-10 image folder")
    with np.load(path) as f:
        return ArrayDataset(f["images"], f["labels"], [str(c) for c in f["classes"]])


def demo_models(folder: Path = MODELS) -> list[str]:
    """Every model folder (model.safetensors + config.json) under ``folder``, by name."""
    found = sorted(str(d) for d in folder.iterdir() if (d / "model.safetensors").is_file()
                   and (d / "config.json").is_file()) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no demo models in {folder} (expected <name>/model.safetensors + config.json); "
                                f"run a real benchmark instead: sparse-zoo bench --model NAME --suite cifar10-c "
                                f"--data PATH")
    return found


REAL_SUITES = """\
To run the real suites (datasets are not downloaded at run time; see the layouts printed when one is missing):
  sparse-zoo bench --model resnet34_cifar_rigl_s50,resnet34_cifar_dense --suite cifar10-c --data PATH/TO/CIFAR-10-C \\
      --clean-data PATH/TO/cifar10 --out results
  sparse-zoo bench --model resnet50_rigl_s10,resnet50_dense --suite imagenet-c,imagenet-c-bar --data PATH/TO/ImageNet-C
  (a clean set instead of a pre-rendered one, e.g. --data ../shared/data/cifar10, is corrupted on the fly)
  sparse-zoo leaderboard results --format html     # tables and plots
  torchrun --nproc-per-node 4 -m sparse_zoo bench ...   # several processes or GPUs, same numbers"""


def run(out: str | Path = "sparse_zoo_results/default", config: DefaultRun | None = None, *,
        models_dir: Path = MODELS, images: Path = IMAGES, progress: bool = True) -> leaderboard.Leaderboard:
    """Run the default benchmark, print what ran and the leaderboard; returns the leaderboard."""
    config = config or DefaultRun()
    dataset = demo_dataset(images)
    models = demo_models(models_dir)
    n = min(config.images, len(dataset))
    from .suites import get_suite
    suite = get_suite(SUITE)
    n_corruptions = len(config.corruptions or suite.corruptions)
    n_severities = len(config.severities or suite.severities)
    grid = f"{n_corruptions} corruptions x {n_severities} severities"
    print(f"sparse-zoo default benchmark (offline): {len(models)} model(s) shipped with the package "
          f"({', '.join(Path(m).name for m in models)})\n"
          f"on {SUITE}: {grid} generated on the "
          f"fly from {n} real CIFAR-10 test images ({n // len(dataset.classes)} per class) shipped with the package, "
          f"plus the clean images; {config.threads} CPU threads. Results: {out}\n")
    start = time.perf_counter()
    evaluate(models, [SUITE], data=ArrayDataset(dataset.images[:n], dataset.labels[:n], dataset.classes), out=str(out),
             batch_size=config.batch_size, seed=config.seed, threads=config.threads, progress=progress,
             corruptions=config.corruptions, severities=config.severities)
    board = leaderboard.build(out)
    page = leaderboard.write_html(board, Path(out) / "leaderboard.html")[0]
    print(f"\nLeaderboard ({time.perf_counter() - start:.0f} s; robust = mean top-1 over {grid}, "
          f"gain relative to the dense baseline, all in %):\n")
    print(leaderboard.to_markdown(board))
    print(f"\nHTML page with plots: {page}\n\nThis was a small demo: {n} images per cell, not the full 10,000-image "
          f"CIFAR-10-C.\n{REAL_SUITES}")
    return board
