#!/usr/bin/env python3
"""Train a model with a named recipe and a DST method (the same code as ``sparse-zoo train``).

    python tools/train.py --recipe resnet34_cifar10 --method rigl --sparsity 0.5 \\
        --data ../shared/data/cifar10 --out runs/r34_rigl_s50
    torchrun --nproc-per-node 2 tools/train.py --recipe ... --out ...
"""
import sys

from sparse_zoo.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
