"""The 'sparse-zoo analyze' command end to end on a tiny saved zoo model and a generated image folder."""
import csv
import json

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import sparse_zoo  # noqa: F401
from sparse_zoo import analysis
from sparse_zoo.cli import main
from sparse_zoo.data import ImageFolder
from sparse_zoo.hub import load_model, save_pretrained


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / "data" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "data" / c / f"{i}.png")
    torch.manual_seed(0)
    model = timm.create_model("resnet34_cifar_rigl_s50", num_classes=2, width=0.125)
    save_pretrained(model, root / "model")
    return root


def test_analyze_writes_figures_and_numbers(setup, tmp_path):
    model_dir, data = str(setup / "model"), str(setup / "data")
    out = tmp_path / "out"
    assert main(["analyze", "freq", "--model", model_dir, "--data", data, "--out", str(out), "--radii", "0,100"]) == 0
    assert main(["analyze", "kernels", "--model", model_dir, "--out", str(out), "--layer", "layer3.3.conv2"]) == 0
    assert main(["analyze", "gradcam", "--model", model_dir, "--data", data, "--out", str(out), "--limit", "3"]) == 0
    for name in ("freq.png", "kernels.png", "gradcam.png"):
        assert (out / name).stat().st_size > 1000

    # radius 100 removes nothing: the "high" row equals the clean accuracy computed directly
    model = load_model(model_dir).eval()
    images, labels = next(analysis.common.batches(ImageFolder(data), 12))
    clean = float((analysis.common.predict(model, images) == labels).float().mean())
    rows = {(r["removed"], float(r["radius"])): float(r["top1"]) for r in csv.DictReader(open(out / "freq.csv"))}
    assert rows[("high", 100.0)] == pytest.approx(100 * clean, abs=0.01)
    assert rows[("low", 0.0)] == pytest.approx(100 * clean, abs=0.01)

    kernels = json.loads((out / "kernels.json").read_text())
    counts = np.array(kernels["models"]["model"]["nonzeros"])
    weight = dict(model.named_modules())["layer3.3.conv2"].weight
    assert counts.sum() == int(torch.count_nonzero(weight))
    assert kernels["models"]["model"]["density"] == pytest.approx(0.5, abs=0.01)
    cams = json.loads((out / "gradcam.json").read_text())
    assert len(cams["labels"]) == 3 and set(cams["predictions"]["model"]) == {"clean", "gaussian_noise-3"}


def test_analyze_needs_data():
    with pytest.raises(SystemExit, match="--data"):
        main(["analyze", "freq", "--model", "x"])
