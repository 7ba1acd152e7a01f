"""Video data path against the model: clips/s for decoding, decoding + each corruption, and r3d50.

Writes a few synthetic H.264 videos at UCF101's 320x240 (or reads --data, a UCF101 root),
then, in one process on the CPU, measures clips per second of the evaluation path of
``sparse_zoo.data.video`` (decord decode of a 16-frame clip at stride 2, short side resized to
128, centre crop 112, uint8), the same with each video corruption applied at decode time,
and the forward pass of the zoo's ``r3d50_dense`` at batch 8 on 16 x 112 x 112. Prints each
data rate divided by the model's: the data path keeps up when the ratio is >= 1 (it runs in
one process here; DataLoader workers multiply it). The CPU may be shared: every measurement is
repeated over interleaved rounds and each keeps its best time.

    python tools/bench_video.py [--data UCF101_ROOT] [--threads 2] [--clips 6] [--rounds 3] [--width 1.0]
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


def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def decode(dataset, n: int) -> None:
    for i in range(n):
        dataset[i % len(dataset)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a UCF101 root (default: synthetic 320x240 videos)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for every measurement")
    parser.add_argument("--clips", type=int, default=6, help="clips decoded per path and round")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0, help="r3d50 channel multiplier")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each figure is its best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else make_synthetic_ucf101(
            tmp, groups=3, clips_per_group=1, frames=64, size=(240, 320), actions=("MoveUp", "Orbit"))
        opened = dict(frames=16, stride=2)
        paths = {"decode only": open_videos(root, train=False, **opened)}
        for name in video_names(extra=True):
            hook = ClipCorruption(name, args.severity, seed=0)
            paths[f"decode + {name}"] = open_videos(root, train=False, corruption=hook, **opened)
        model = timm.create_model("r3d50_dense", num_classes=101, width=args.width).eval()
        x = torch.randn(8, 3, 16, 112, 112)
        best = dict.fromkeys(["model", *paths], float("inf"))
        with torch.inference_mode():
            model(x)  # warm-up
            for dataset in paths.values():
                dataset[0]
            # the CPU is shared: interleave everything over the rounds and keep each one's best
            for _ in range(args.rounds):
                best["model"] = min(best["model"], seconds(model, x))
                for key, dataset in paths.items():
                    best[key] = min(best[key], seconds(decode, dataset, args.clips))
        model_rate = 8 / best["model"]
        print(f"r3d50_dense (width {args.width}) forward, batch 8, 16x112x112, {args.threads} threads: "
              f"{model_rate:.2f} clips/s (best of {args.rounds})")
        print(f"{'data path (1 process)':<30} {'clips/s':>8} {'/ model':>8}")
        for key in paths:
            rate = args.clips / best[key]
            print(f"{key:<30} {rate:8.1f} {rate / model_rate:8.2f}")
        slowest = min(args.clips / best[k] for k in paths if k != "decode only")
        print(f"slowest decode + corruption / model forward = {slowest / model_rate:.2f} "
              f"({'the data path keeps up' if slowest >= model_rate else 'the data path is the bottleneck'})")


if __name__ == "__main__":
    main()
