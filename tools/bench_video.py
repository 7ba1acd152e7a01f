"""Video data path against the model: clips/s for decoding, decoding + each corruption, and r3d50.

Writes a few synthetic H.264 videos at UCF101's 320x240 (or reads --data, a UCF101 root),
then, in one process on the CPU, measures clips per second of the evaluation path of
``sparse_zoo.data.video`` (decord decode of a 16-frame clip at stride 2, short side resized to
128, centre crop 112, uint8), the same with each video corruption applied at decode time,
and the forward pass of the zoo's ``r3d50_dense`` at batch 8 on 16 x 112 x 112. Prints each
data rate divided by the model's: the data path keeps up when the ratio is >= 1 (it runs in
one process here; DataLoader workers multiply it).

    python tools/bench_video.py [--data UCF101_ROOT] [--threads 2] [--clips 16] [--width 1.0]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import timm
import torch

import sparse_zoo  # noqa: F401  (registers the zoo with timm)
from sparse_zoo.corruptions.video import ClipCorruption, video_names
from sparse_zoo.data.synthetic_video import make_synthetic_ucf101
from sparse_zoo.data.video import open_videos


def clips_per_second(dataset, n: int, rounds: int = 3) -> float:
    """The best of ``rounds`` rounds of ``n`` clips (the CPU is shared: the best round is the
    least disturbed one)."""
    dataset[0]  # warm-up (opens the codec)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            dataset[i % len(dataset)]
        best = min(best, time.perf_counter() - start)
    return n / best


def model_clips_per_second(width: float, batch: int, repeats: int) -> float:
    model = timm.create_model("r3d50_dense", num_classes=101, width=width).eval()
    x = torch.randn(batch, 3, 16, 112, 112)
    with torch.inference_mode():
        model(x)  # warm-up
        best = min(_timed(model, x) for _ in range(repeats))
    return batch / best


def _timed(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a UCF101 root (default: synthetic 320x240 videos)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for every measurement")
    parser.add_argument("--clips", type=int, default=6, help="clips decoded per round (best of 3 rounds)")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0, help="r3d50 channel multiplier")
    parser.add_argument("--repeats", type=int, default=3, help="timed forward passes (the best counts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else make_synthetic_ucf101(
            tmp, groups=3, clips_per_group=1, frames=64, size=(240, 320), actions=("MoveUp", "Orbit"))
        opened = dict(frames=16, stride=2)
        model_rate = model_clips_per_second(args.width, 8, args.repeats)
        print(f"r3d50_dense (width {args.width}) forward, batch 8, 16x112x112, {args.threads} threads: "
              f"{model_rate:.2f} clips/s")
        clean = clips_per_second(open_videos(root, train=False, **opened), args.clips)
        print(f"{'data path':<22} {'clips/s':>9} {'/ model':>8}")
        print(f"{'decode only':<22} {clean:9.1f} {clean / model_rate:8.1f}")
        rates = []
        for name in video_names(extra=True):
            hook = ClipCorruption(name, args.severity, seed=0)
            rate = clips_per_second(open_videos(root, train=False, corruption=hook, **opened), args.clips)
            rates.append(rate)
            print(f"{'decode + ' + name:<22} {rate:9.1f} {rate / model_rate:8.1f}")
        slowest = min(rates)
        print(f"slowest decode + corruption / model forward = {slowest / model_rate:.1f} "
              f"({'the data path keeps up' if slowest >= model_rate else 'the data path is the bottleneck'})")


if __name__ == "__main__":
    main()
