"""How much the benchmark harness adds to pure model inference, on CPU.

Times, side by side in one process, (a) a CIFAR-10-C-style evaluation through
``sparse_zoo.bench.evaluate`` with on-the-fly corruption (loading, corruption,
normalisation, counting, atomic result writes) and (b) pure inference of the same
model on the same number of clean, already normalised images with the same batch
size, and prints the overhead (a) / (b) - 1 (target: <= 30%). The pure-inference
time is measured before and after the harness and averaged, to damp load drift on
a shared machine. The corruption engine's own share is timed separately on the same
batches, so the harness's bookkeeping share is visible too.

    python tools/bench_harness.py [--arch resnet34_cifar_dense] [--width 1.0] [--images 250]
        [--corruptions all] [--severities 3] [--batch-size 250] [--threads 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

import sparse_zoo  # noqa: F401  (registers the zoo with timm)
from sparse_zoo import corruptions
from sparse_zoo.bench import evaluate
from sparse_zoo.bench.default import demo_dataset
from sparse_zoo.data import ArrayDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet34_cifar_dense")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--corruptions", default="all", help="comma-separated, or 'all' (the 19 of CIFAR-10-C)")
    parser.add_argument("--severities", default="3")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = corruptions.names("cifar-c") if args.corruptions == "all" else args.corruptions.split(",")
    severities = [int(s) for s in args.severities.split(",")]
    cells = len(names) * len(severities)

    import timm
    from sparse_zoo.hub import save_pretrained
    model = timm.create_model(args.arch, num_classes=10, width=args.width).eval()
    subset = demo_dataset()
    if args.images > len(subset):
        raise SystemExit(f"--images at most {len(subset)} (the shipped subset)")
    data = ArrayDataset(subset.images[:args.images], subset.labels[:args.images], subset.classes)
    cfg = model.pretrained_cfg
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    clean = [(torch.from_numpy(data.images[i:i + args.batch_size]).permute(0, 3, 1, 2).float() / 255 - mean) / std
             for i in range(0, args.images, args.batch_size)]

    @torch.inference_mode()
    def pure() -> float:
        start = time.perf_counter()
        for _ in range(cells):
            for x in clean:
                model(x)
        return time.perf_counter() - start

    with torch.inference_mode():
        model(clean[0])  # warm-up
    before = pure()
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, f"{tmp}/model")
        start = time.perf_counter()
        evaluate([f"{tmp}/model"], ["cifar10-c"], data=data, out=f"{tmp}/results", batch_size=args.batch_size,
                 corruptions=names, severities=severities, clean=False, progress=False)
        harness = time.perf_counter() - start
    after = pure()
    batches = [torch.from_numpy(data.images[i:i + args.batch_size]).permute(0, 3, 1, 2)
               for i in range(0, args.images, args.batch_size)]
    start = time.perf_counter()
    for name in names:
        for s in severities:
            for i, b in enumerate(batches):
                corruptions.apply(b, name, s, sample_ids=torch.arange(i * args.batch_size, i * args.batch_size + len(b)))
    corrupt = time.perf_counter() - start
    inference = (before + after) / 2
    n = cells * args.images
    print(f"model {args.arch} width {args.width} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params), "
          f"{len(names)} corruptions x {len(severities)} severities x {args.images} images = {n} images, "
          f"batch {args.batch_size}, {args.threads} threads")
    print(f"pure inference   {inference:8.2f} s  ({n / inference:7.1f} img/s; before {before:.2f} s, "
          f"after {after:.2f} s)")
    print(f"harness          {harness:8.2f} s  ({n / harness:7.1f} img/s)")
    print(f"  of which the corruption engine alone ~{corrupt:.2f} s ({n / corrupt:.1f} img/s), "
          f"the rest ~{harness - inference - corrupt:.2f} s")
    print(f"overhead of the harness over pure inference: {100 * (harness / inference - 1):.1f}% (target <= 30%)")


if __name__ == "__main__":
    main()
