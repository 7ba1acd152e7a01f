"""``apply(..., compile=True)``: torch.compile'd corruptions agree with eager ones."""
import shutil

import pytest
import torch
import torch.nn.functional as F

from sparse_zoo import corruptions
from sparse_zoo.corruptions.registry import REGISTRY

needs_cxx = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                               reason="torch.compile on CPU needs a C++ compiler")


def smooth_images(n: int = 3, size: int = 20) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return F.avg_pool2d(torch.rand(n, 3, size, size, generator=g) * 255, 3, 1, 1).to(torch.uint8)


def test_the_compiled_set():
    corruptions.get("contrast")  # loads the registry
    assert {n for n, c in REGISTRY.items() if c.extra.get("compile")} == {
        "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "brightness", "contrast", "saturate"}


def test_compile_leaves_other_corruptions_eager():
    x = smooth_images()
    assert torch.equal(corruptions.apply(x, "pixelate", 4, compile=True), corruptions.apply(x, "pixelate", 4))


@needs_cxx
@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "saturate"])
def test_compiled_matches_eager(name):
    """Within one 8-bit level; the compiled log/cos/division may round differently on a few values.

    impulse_noise runs its uint8 kernel in eager only; the integer alias samplers of
    gaussian, shot and speckle noise are compiled for uint8 batches too and are exact.
    """
    x = smooth_images()
    ids = torch.tensor([4, 0, 9])
    eager = corruptions.apply(x, name, 3, seed=2, sample_ids=ids)
    compiled = corruptions.apply(x, name, 3, seed=2, sample_ids=ids, compile=True)
    assert compiled.dtype == torch.uint8 and compiled.shape == x.shape
    diff = (compiled.int() - eager.int()).abs()
    exact = name in ("gaussian_noise", "shot_noise", "speckle_noise")
    assert int(diff.max()) <= (0 if exact else 1) and float((diff > 0).float().mean()) < 0.01
    # a smaller batch is padded into the graph compiled for the larger one (no new graph), and
    # per-sample draws survive compilation: a sample alone gives its row of the batch
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    alone = corruptions.apply(x[1:2], name, 3, seed=2, sample_ids=ids[1:2], compile=True)
    assert torch.equal(alone, compiled[1:2])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    floats = corruptions.apply(x.float() / 255, name, 3, seed=2, sample_ids=ids, compile=True)
    eager_floats = corruptions.apply(x.float() / 255, name, 3, seed=2, sample_ids=ids)
    assert floats.dtype == torch.float32 and float((floats - eager_floats).abs().max()) <= 1.001 / 255


def test_no_compiler_is_a_clear_error_before_any_work(monkeypatch, tmp_path, capsys):
    from sparse_zoo.cli import main
    from sparse_zoo.corruptions import registry
    monkeypatch.setattr(registry, "_have_cxx", lambda: False)
    x = smooth_images()
    with pytest.raises(ValueError, match="needs a C.. compiler"):
        corruptions.apply(x, "contrast", 2, compile=True)
    assert torch.equal(corruptions.apply(x, "pixelate", 2, compile=True), corruptions.apply(x, "pixelate", 2))
    src = tmp_path / "in" / "a"
    src.mkdir(parents=True)
    from PIL import Image
    Image.new("RGB", (8, 8)).save(src / "x.png")
    with pytest.raises(SystemExit) as exc:
        main(["corrupt", str(tmp_path / "in"), str(tmp_path / "out"), "--compile", "--format", "folder"])
    assert exc.value.code == 2 and "C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
