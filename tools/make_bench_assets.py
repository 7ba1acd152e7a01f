"""Regenerate the CIFAR-10 test subset the default ``sparse-zoo bench`` run ships with.

Takes the first K test images of every class (file-name order) from a CIFAR-10 image
folder (default ../shared/data/cifar10/test) and interleaves the classes, so any prefix
of the set is class-balanced; writes sparse_zoo/assets/cifar10_test_subset.npz with
``images`` (N, 32, 32, 3) uint8, ``labels`` (N,) int64 and ``classes``.

    python tools/make_bench_assets.py [--src DIR] [--per-class 50]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sparse_zoo.data import CIFAR10_CLASSES, load_image
from sparse_zoo.bench.default import IMAGES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[2] / "shared/data/cifar10/test"))
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--out", default=str(IMAGES))
    args = parser.parse_args()
    src = Path(args.src)
    per_class = []
    for cls in CIFAR10_CLASSES:
        files = sorted((src / cls).glob("*.jpg"))[:args.per_class]
        if len(files) < args.per_class:
            raise SystemExit(f"{src / cls}: {len(files)} images, need {args.per_class}")
        per_class.append([load_image(f).permute(1, 2, 0).numpy() for f in files])
    images = np.stack([per_class[c][k] for k in range(args.per_class) for c in range(len(CIFAR10_CLASSES))])
    labels = np.tile(np.arange(len(CIFAR10_CLASSES), dtype=np.int64), args.per_class)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, images=images, labels=labels, classes=np.array(CIFAR10_CLASSES))
    print(f"wrote {args.out}: {len(images)} images, {Path(args.out).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
