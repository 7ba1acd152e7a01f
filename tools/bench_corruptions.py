"""Throughput of sparse_zoo's corruptions next to ``imagecorruptions`` on the same images.

    python tools/bench_corruptions.py --reference-python /path/to/venv/bin/python

For every corruption of a suite (default 'cifar-c', the 19 ImageNet-C ones) and every
size (default 32 and 224 px) it times ``corruptions.apply`` on batches of ``--batch``
images over severities 1-5, and, interleaved corruption by corruption so both see the
same machine load, the per-image ``imagecorruptions.corrupt`` of the reference
package on ``--ref-images`` of the same images per severity. It prints images/s, the
ratio and the geometric mean of the ratios, and checks the targets at 224 px (on CUDA:
the mean images/s, against the GPU target of 5,000).

``imagecorruptions==1.1.2`` is not a dependency: install it in its own environment
(``python -m venv ic && ic/bin/pip install 'setuptools<81' imagecorruptions==1.1.2``)
and pass that environment's python; this script then runs itself there in
``--worker`` mode (which imports neither torch nor sparse_zoo). Corruptions that raise
in the reference are reported as failed and left out of the ratios.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import best_pass  # tools/ is on sys.path when the script runs (also in --worker mode)

SEVERITIES = (1, 2, 3, 4, 5)
REPO = Path(__file__).resolve().parents[1]


def worker() -> int:
    """Reference side: answer each '{"images", "name", "count", "repeats", "min_time"}' line with images/s."""
    import warnings

    import numpy as np
    from imagecorruptions import corrupt
    warnings.simplefilter("ignore")
    print(json.dumps({"ready": True}), flush=True)  # imports done: they must not load the machine while ours is timed
    cache: dict[str, np.ndarray] = {}
    for line in sys.stdin:
        job = json.loads(line)
        images = cache.setdefault(job["images"], np.load(job["images"]))
        try:
            corrupt(images[0], corruption_name=job["name"], severity=1)  # warm-up (imports, caches)

            def run() -> None:
                for severity in SEVERITIES:
                    for image in images[:job["count"]]:
                        corrupt(image, corruption_name=job["name"], severity=severity)
            best = best_pass(run, job["repeats"], job["min_time"])
            reply = {"rate": job["count"] * len(SEVERITIES) / best}
        except Exception as error:  # the reference fails on current numpy / scikit-image
            reply = {"error": f"{type(error).__name__}: {error}"[:120]}
        print(json.dumps(reply), flush=True)
    return 0


def load_images(data: Path | None, count: int, size: int, seed: int = 0):
    """``count`` uint8 (N, 3, size, size) images: CIFAR-10 test images (resized) or smooth random ones."""
    import torch
    import torch.nn.functional as F
    if data is not None:
        from PIL import Image
        files = sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            raise SystemExit(f"no images under {data}")
        step = max(1, len(files) // count)
        arrays = [torch.from_numpy(__import__("numpy").array(Image.open(f).convert("RGB")))
                  for f in files[::step][:count]]
        x = torch.stack(arrays).permute(0, 3, 1, 2).float()
    else:
        g = torch.Generator().manual_seed(seed)
        x = F.avg_pool2d(torch.rand(count, 3, 32, 32, generator=g) * 255, 3, 1, 1)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).contiguous()  # NCHW, as a DataLoader batches them


def time_ours(images, name: str, device: str, repeats: int, min_time: float,
              compile: bool = False) -> tuple[float, float]:
    """Images/s of ``apply`` over severities 1-5 (the best pass after a warm-up, see
    :func:`best_pass`) and the warm-up's seconds.

    The warm-up runs every severity once, so with ``compile`` it holds the compilation.
    """
    import torch

    from sparse_zoo import corruptions

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    start = time.perf_counter()
    for severity in SEVERITIES:
        corruptions.apply(images, name, severity, compile=compile)
    sync()
    warm_up = time.perf_counter() - start

    def run() -> None:
        for severity in SEVERITIES:
            corruptions.apply(images, name, severity, seed=1, compile=compile)
        sync()
    return len(images) * len(SEVERITIES) / best_pass(run, repeats, min_time), warm_up


class Reference:
    """A persistent ``--worker`` process in the reference environment."""

    def __init__(self, python: str):
        self.proc = subprocess.Popen([python, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self._reply()  # wait for its imports

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the imagecorruptions worker died; run it by hand with --worker to see why")
        return json.loads(line)

    def rate(self, images_file: str, name: str, count: int, repeats: int, min_time: float) -> dict:
        job = {"images": images_file, "name": name, "count": count, "repeats": repeats, "min_time": min_time}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="cifar-c")
    parser.add_argument("--names", nargs="*", help="corruptions to time (default: the whole suite)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2,
                        help="at least this many timed passes over severities 1-5, for both sides (the best is kept)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="seconds each side's timing lasts at least: more passes while shorter (default 1)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cifar10" / "test",
                        help="image folder to sample from (missing: smooth random images)")
    parser.add_argument("--reference-python", help="python of an environment with imagecorruptions==1.1.2")
    parser.add_argument("--ref-images", type=int, default=4, help="reference images per severity")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, all cores)")
    parser.add_argument("--compile", action="store_true",
                        help="apply(..., compile=True): torch.compile the corruptions registered for it "
                             "(warm-up, with the compilation, is reported apart)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker()

    import numpy as np
    import torch

    from sparse_zoo import corruptions
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.names or corruptions.names(args.suite)
    for name in names:
        corruptions.get(name)  # unknown names fail before any timing
    data = args.data if args.data and args.data.exists() else None
    reference = Reference(args.reference_python) if args.reference_python else None
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, batch {args.batch}, "
          f"compile {args.compile}, images: {data or 'synthetic'}; reference: {args.reference_python or 'not run'}")
    targets_ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            images = load_images(data, args.batch, size)
            images_file = str(Path(tmp) / f"images_{size}.npy")
            np.save(images_file, images.permute(0, 2, 3, 1).numpy())
            images = images.to(args.device)
            print(f"\n{size} px")
            print(f"{'corruption':20s} {'ours img/s':>11s} {'imagecorr. img/s':>17s} {'ratio':>8s} {'warm-up s':>10s}")
            ratios, rates = [], []
            for name in names:
                ours, warm_up = time_ours(images, name, args.device, args.repeats, args.min_time, args.compile)
                rates.append(ours)
                theirs = (reference.rate(images_file, name, args.ref_images, args.repeats, args.min_time)
                          if reference else {})
                if "rate" in theirs:
                    ratio = ours / theirs["rate"]
                    ratios.append((name, ratio))
                    cells = f"{theirs['rate']:17.1f} {ratio:7.1f}x"
                else:
                    cells = f"{'failed' if 'error' in theirs else '-':>17s} {'':>8s}"
                print(f"{name:20s} {ours:11.1f} {cells} {warm_up:10.1f}"
                      + (f"  ({theirs['error']})" if "error" in theirs else ""), flush=True)
            if ratios:
                gm = geomean([r for _, r in ratios])
                slowest = min(ratios, key=lambda item: item[1])
                print(f"geometric mean of ratios over {len(ratios)} corruptions: {gm:.1f}x; "
                      f"lowest: {slowest[0]} {slowest[1]:.1f}x")
                if size == 224:
                    met = gm >= 20 and slowest[1] >= 1
                    targets_ok &= met
                    print(f"targets at 224 px (geomean >= 20x, none slower): {'met' if met else 'NOT met'}")
            if args.device.startswith("cuda") and size == 224:
                mean, whole = sum(rates) / len(rates), len(rates) / sum(1 / r for r in rates)
                met = mean >= 5000
                targets_ok &= met
                print(f"mean over {len(rates)} corruptions: {mean:.0f} img/s (a pass through all of them: {whole:.0f} "
                      f"img/s); GPU target at 224 px (mean >= 5,000 img/s): {'met' if met else 'NOT met'}")
    if reference:
        reference.close()
    return 0 if targets_ok else 1


if __name__ == "__main__":
    sys.exit(main())
