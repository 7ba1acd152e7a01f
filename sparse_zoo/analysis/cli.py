"""``sparse-zoo analyze freq|fourier|kernels|gradcam``: the paper's analyses as figures and numbers."""
from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from pathlib import Path

import torch

from . import plots
from .common import batches, predict
from .gradcam import default_target_layer, gradcam
from .spatial import kernel_maps
from .spectral import fourier_heatmap, frequency_attenuation


def _models(args) -> dict[str, torch.nn.Module]:
    from ..bench.models import display_name, load
    return {display_name(spec): load(spec).to(args.device) for spec in args.model.split(",") if spec}


def _dataset(args):
    from ..data import ImageFolder
    return ImageFolder(args.data)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1))
    print(f"wrote {path}")


def _freq(args, models, out: Path) -> None:
    data = _dataset(args)
    h = data[0][0].shape[-1]
    radii = [float(r) for r in args.radii.split(",")] if args.radii else list(range(0, int(h * 0.71) + 2, 2))
    curves = {mode: {name: frequency_attenuation(m, data, radii, mode, batch_size=args.batch_size, limit=args.limit)
                     for name, m in models.items()} for mode in ("high", "low")}
    with open(out / "freq.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "removed", "radius", "top1"])
        for mode, per_model in curves.items():
            for name, curve in per_model.items():
                writer.writerows([name, mode, r, f"{100 * a:.2f}"] for r, a in curve.items())
    print(f"wrote {out / 'freq.csv'}")
    print(f"wrote {plots.plot_attenuation(curves, out / 'freq.png')}")


def _fourier(args, models, out: Path) -> None:
    data = _dataset(args)
    maps = {name: fourier_heatmap(m, data, size=args.size, eps=args.eps, batch_size=args.batch_size, limit=args.limit)
            for name, m in models.items()}
    _write_json(out / "fourier.json", {"eps": args.eps, "errors": {n: e.tolist() for n, e in maps.items()}})
    print(f"wrote {plots.plot_fourier_heatmaps(maps, out / 'fourier.png')}")


def _middle_conv(model: torch.nn.Module) -> str:
    """The middle k x k (k > 1) conv layer: a representative inner layer such as ResNet's layer3."""
    convs = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1 and m.groups == 1]
    if not convs:
        raise ValueError("model has no k x k conv layer; pass --layer")
    return convs[len(convs) * 2 // 3]


def _kernels(args, models, out: Path) -> None:
    layer = args.layer or _middle_conv(next(iter(models.values())))
    maps = {name: kernel_maps(m, layer) for name, m in models.items()}
    record = {}
    per_kernel = dict(next(iter(models.values())).named_modules())[layer].weight[0, 0].numel()
    for name, (counts, sums) in maps.items():
        record[name] = {"density": float(counts.sum()) / (counts.numel() * per_kernel),
                        "nonzeros": counts.tolist(), "abs_sum": sums.tolist()}
    _write_json(out / "kernels.json", {"layer": layer, "models": record})
    print(f"wrote {plots.plot_kernel_maps(maps, layer, out / 'kernels.png', per_kernel)}")


def _gradcam(args, models, out: Path) -> None:
    from ..corruptions import apply
    images, labels = next(batches(_dataset(args), args.limit or 6, args.limit or 6, torch.device(args.device)))
    corrupted = apply(images, args.corruption, args.severity, sample_ids=torch.arange(images.shape[0]))
    sets = {"clean": images, f"{args.corruption}-{args.severity}": corrupted}
    cams, preds = {}, {}
    for name, m in models.items():
        cams[name] = {s: gradcam(m, x, args.layer) for s, x in sets.items()}
        preds[name] = {s: predict(m, x).tolist() for s, x in sets.items()}
    _write_json(out / "gradcam.json", {"labels": labels.tolist(), "predictions": preds,
                                       "target_layers": {n: args.layer or default_target_layer(m)
                                                         for n, m in models.items()}})
    print(f"wrote {plots.plot_gradcam(sets, cams, out / 'gradcam.png', max_images=images.shape[0])}")


ANALYSES: dict[str, tuple[Callable, str]] = {
    "freq": (_freq, "accuracy when high / low frequencies are removed (radius-accuracy curves)"),
    "fourier": (_fourier, "error under single Fourier-basis perturbations (Yin et al. 2019)"),
    "kernels": (_kernels, "nonzero count and |w| sum of each kernel of a conv layer"),
    "gradcam": (_gradcam, "Grad-CAM overlays on clean and corrupted images"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "The paper's analyses; writes PNG figures and CSV/JSON numbers into --out."
    parser.epilog = "\n".join(f"  {k:8s} {h}" for k, (_, h) in ANALYSES.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("analysis", choices=sorted(ANALYSES), help="which analysis to run (see below)")
    parser.add_argument("--model", required=True, help="comma-separated models: timm names, hf-hub: ids or local run dirs")
    parser.add_argument("--data", help="an image folder <class>/*.jpg of test images (not needed for 'kernels')")
    parser.add_argument("--out", default="analysis", help="output directory (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="evenly spaced images to use (default: all; gradcam: 6; fourier: 1000)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--radii", help="freq: comma-separated radii (default: 0, 2, ... up to the corner)")
    parser.add_argument("--size", type=int, default=None, help="fourier: frequencies per axis (default: image size)")
    parser.add_argument("--eps", type=float, default=4.0, help="fourier: L2 norm of the perturbation")
    parser.add_argument("--layer", help="kernels/gradcam: module name (default: a middle conv / the last stage)")
    parser.add_argument("--corruption", default="gaussian_noise", help="gradcam: corruption of the second row")
    parser.add_argument("--severity", type=int, default=3, help="gradcam: its severity 1-5")


def run(args: argparse.Namespace) -> int:
    if args.analysis != "kernels" and not args.data:
        raise SystemExit(f"sparse-zoo analyze {args.analysis}: --data PATH (an image folder) is required")
    if args.analysis == "fourier" and args.limit is None:
        args.limit = 1000
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ANALYSES[args.analysis][0](args, _models(args), out)
    return 0
