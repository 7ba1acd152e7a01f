"""Cost of the DST engines on a CIFAR ResNet-18 (batch 128, CPU), printed as ratios.

For every method: the time of ``engine.step()`` on an ordinary step (re-applying the
masks), the time of one topology update, the amortized overhead at ``--delta-t``
relative to a dense training step (target <= 5%), and a full training step with the
engine against dense training, interleaved so both see the same machine load.
Side by side: the topology update of rigl-torch 0.5.2's ``RigLScheduler`` on the
same model and layers, and our RigL update time / theirs (target <= 1).

rigl-torch is not a dependency; install it apart, e.g.
``pip install --no-deps --target /tmp/rigltorch rigl-torch==0.5.2`` and pass
``--rigl-torch /tmp/rigltorch``. Times are medians over ``--repeats``.

    python tools/bench_dst.py --repeats 5 --rigl-torch /tmp/rigltorch
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

import sparse_zoo.dst as dst
from sparse_zoo.models.cifar import CifarResNet
from sparse_zoo.sparsity import MaskConfig
from _timing import median_time  # tools/ is on sys.path when the script runs

TOTAL_STEPS = 10_000


def resnet18_cifar() -> nn.Module:
    torch.manual_seed(0)
    return CifarResNet((2, 2, 2, 2), num_classes=10)




class Trainer:
    """A model, SGD and one fixed batch; ``step()`` is one training step."""

    def __init__(self, batch: int) -> None:
        self.model = resnet18_cifar()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g)

    def backward(self) -> None:
        nn.functional.cross_entropy(self.model(self.x), self.y).backward()

    def step(self, after_optimizer: Callable[[], object] | None = None) -> None:
        self.backward()
        self.opt.step()
        if after_optimizer is not None:
            after_optimizer()
        self.opt.zero_grad()


def next_update(engine: dst.Engine) -> int | None:
    for t in range(engine.step_count + 1, TOTAL_STEPS + 1):
        if engine.wants_update(t):
            return t
    return None


def time_update(trainer: Trainer, engine: dst.Engine, repeats: int) -> float:
    """Median time of ``engine.step()`` at an update step (gradients of a real backward present)."""
    times = []
    for _ in range(repeats):
        t = next_update(engine)
        if t is None:
            return 0.0
        trainer.backward()
        trainer.opt.step()
        engine.step_count = t - 1
        start = time.perf_counter()
        assert engine.step()
        times.append(time.perf_counter() - start)
        trainer.opt.zero_grad()
    return statistics.median(times)


def time_rigl_torch(path: str, sparsity: float, delta_t: int, batch: int, repeats: int) -> float | str:
    """Median time of RigLScheduler._rigl_step() (its topology update), or why it could not run."""
    sys.path.insert(0, path)
    try:
        from rigl_torch.RigL import RigLScheduler
    except Exception as exc:  # report, never fail the whole benchmark
        return f"rigl-torch not importable from {path!r}: {exc}"
    finally:
        sys.path.remove(path)
    trainer = Trainer(batch)
    # rigl-torch's 'uniform' keeps the first layer dense; ignore_linear_layers keeps the fc dense
    scheduler = RigLScheduler(trainer.model, trainer.opt, dense_allocation=1 - sparsity,
                              T_end=int(0.75 * TOTAL_STEPS), delta=delta_t, alpha=0.3)
    scheduler.step = delta_t - 1  # the next backward accumulates the dense gradient
    trainer.backward()
    return median_time(scheduler._rigl_step, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--delta-t", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=3, help="full training steps per repeat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=dst.methods())
    parser.add_argument("--rigl-torch", default=None, help="directory holding rigl-torch 0.5.2 (pip --target)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = MaskConfig(dense_first=True, dense_classifier=True)  # the layers rigl-torch masks

    dense = Trainer(args.batch)
    dense.step()  # warm-up
    print(f"CIFAR ResNet-18, batch {args.batch}, sparsity {args.sparsity}, delta_t {args.delta_t}, "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'method':10s} {'step ms':>9s} {'update ms':>10s} {'amortized':>10s} {'overhead':>9s} "
          f"{'train/dense':>12s}")
    results = {}
    for method in args.methods:
        sparse = Trainer(args.batch)
        engine = dst.create(method, sparse.model, sparse.opt, sparsity=args.sparsity, delta_t=args.delta_t,
                            total_steps=TOTAL_STEPS, mask_config=config)
        sparse.step(engine.step)  # warm-up (step 1 is never an update step)
        ratios, dense_times = [], []
        for _ in range(args.repeats):  # interleaved: both see the same load
            d = median_time(dense.step, args.train_steps)
            s = median_time(lambda: sparse.step(engine.step), args.train_steps)
            ratios.append(s / d)
            dense_times.append(d)
        dense_step = statistics.median(dense_times)
        engine.step_count = 1
        plain = median_time(engine.step, 4 * args.repeats)  # steps 2, 3, ...: no update
        update = time_update(sparse, engine, args.repeats)
        amortized = ((args.delta_t - 1) * plain + update) / args.delta_t if engine.updates else plain
        results[method] = update
        print(f"{method:10s} {1e3 * plain:9.2f} {1e3 * update:10.1f} {1e3 * amortized:9.2f}ms "
              f"{100 * amortized / dense_step:8.2f}% {statistics.median(ratios):12.3f}")
    print(f"dense training step: {1e3 * dense_step:.0f} ms (last method's repeats)")

    if args.rigl_torch and "rigl" in results:
        theirs = time_rigl_torch(args.rigl_torch, args.sparsity, args.delta_t, args.batch, args.repeats)
        if isinstance(theirs, str):
            print(theirs)
        else:
            print(f"topology update: ours (rigl) {1e3 * results['rigl']:.1f} ms, rigl-torch 0.5.2 "
                  f"{1e3 * theirs:.1f} ms, ours / theirs = {results['rigl'] / theirs:.3f}")
    elif "rigl" in results:
        print("rigl-torch comparison skipped: pass --rigl-torch DIR (pip install --target DIR rigl-torch==0.5.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
