"""The benchmark runner, results store, leaderboard, CLIs and default run, on tiny models and data."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models import register_model
from torch import nn

from sparse_zoo import corruptions
from sparse_zoo.bench import CorruptResultsError, Suite, evaluate, leaderboard, read_results, register_suite
from sparse_zoo.bench import runner as runner_mod
from sparse_zoo.bench import store as store_mod
from sparse_zoo.bench.suites import SUITES
from sparse_zoo.data import ArrayDataset
from sparse_zoo.sparsity import sparsify

NOISE = "bench_test_noise"
SUITE = "bench-test-c"
NPY_SUITE = "bench-test-npy"
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10, **kwargs):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, num_classes)
        self.pretrained_cfg = {"architecture": "bench_test_net", "input_size": (3, 32, 32), "mean": MEAN,
                               "std": STD, "num_classes": num_classes, "first_conv": "conv1", "classifier": "fc"}

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def setup_registry() -> None:
    """Register the test model, corruption and suites (idempotent: also called in torchrun children)."""
    if "bench_test_net" not in timm.list_models("bench_test_*"):
        def bench_test_net(pretrained=False, **kwargs):
            return TinyNet(**kwargs)
        register_model(bench_test_net)
    if NOISE not in corruptions.REGISTRY:
        @corruptions.register(NOISE, [0.05, 0.1, 0.2, 0.3, 0.5])
        def _noise(x, p, rng, depth=None):
            return x + p * rng.normal(*x.shape[1:])
    if SUITE not in SUITES:
        register_suite(Suite(SUITE, (NOISE,), 10, 32, "cifar10-c", "cifar10", None))
    if NPY_SUITE not in SUITES:
        register_suite(Suite(NPY_SUITE, ("gaussian_noise", NOISE), 10, 32, "cifar10-c", "cifar10", None))


setup_registry()


def make_model(folder: Path, seed: int, sparsity: float = 0.0, method: str = "dense") -> str:
    torch.manual_seed(seed)
    model = TinyNet()
    if sparsity:
        sparsify(model, sparsity, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"method": method})
    (folder / "config.json").write_text(json.dumps({"architecture": "bench_test_net", "num_classes": 10}))
    return str(folder)


def make_data(n: int = 40, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10)


def reference_counts(model_dir: str, data: ArrayDataset, severity: int | None, seed: int = 0) -> int:
    """Independent count: one image at a time, corrupted alone with its index as sample id."""
    from sparse_zoo.bench.models import load
    model = load(model_dir)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    correct = 0
    for i in range(len(data)):
        image, label = data[i]
        x = image[None]
        if severity is not None:
            x = corruptions.apply(x, NOISE, severity, seed=seed, sample_ids=[i])
        with torch.no_grad():
            correct += int(model((x.float() / 255 - mean) / std).argmax(1).item() == label)
    return correct


@pytest.fixture
def models(tmp_path):
    return [make_model(tmp_path / "tiny_dense", 0), make_model(tmp_path / "tiny_rigl", 1, 0.5, "rigl")]


def test_counts_equal_an_independent_per_image_computation(tmp_path, models):
    data = make_data(24)
    results = evaluate(models, [SUITE], data=data, out=tmp_path / "r", batch_size=7, severities=[1, 3, 5],
                       progress=False)
    dense, rigl = results  # both models see each corrupted batch of one pass
    assert dense.records[("clean", 0)].n == 24
    assert dense.records[("clean", 0)].correct == reference_counts(models[0], data, None)
    for s in (1, 5):
        assert dense.records[(NOISE, s)].correct == reference_counts(models[0], data, s)
    assert rigl.records[(NOISE, 3)].correct == reference_counts(models[1], data, 3)
    rec = json.loads(next((tmp_path / "r" / "tiny_dense").glob(f"{SUITE}-*/{NOISE}-3.json")).read_text())
    for key in ("n", "correct", "config_hash", "versions", "device", "seed", "model", "suite", "corruption",
                "severity"):
        assert key in rec
    assert rec["versions"]["torch"] == torch.__version__


def test_resume_skips_done_cells_and_a_changed_config_never_mixes(tmp_path, models, monkeypatch):
    data = make_data(20)
    out = tmp_path / "r"
    first = evaluate(models[:1], [SUITE], data=data, out=out, progress=False)[0]
    folder = next((out / "tiny_dense").glob(f"{SUITE}-*"))
    (folder / f"{NOISE}-2.json").unlink()
    calls = []
    real = runner_mod._evaluate_cell
    monkeypatch.setattr(runner_mod, "_evaluate_cell", lambda run, cell, *a: calls.append(
        (cell.corruption, cell.severity)) or real(run, cell, *a))
    again = evaluate(models[:1], [SUITE], data=data, out=out, progress=False)[0]
    assert calls == [(NOISE, 2)]
    assert {k: (r.n, r.correct) for k, r in again.records.items()} == \
           {k: (r.n, r.correct) for k, r in first.records.items()}
    calls.clear()
    other = evaluate(models[:1], [SUITE], data=data, out=out, seed=1, progress=False)[0]
    assert len(calls) == 6 and other.config_hash != first.config_hash
    assert len(list((out / "tiny_dense").glob(f"{SUITE}-*"))) == 2
    assert len(list(folder.glob("*.json"))) == 7  # config + clean + 5 severities, untouched


def test_corrupt_results_file_is_reported_before_work_and_left_untouched(tmp_path, models, monkeypatch):
    data = make_data(10)
    out = tmp_path / "r"
    evaluate(models[:1], [SUITE], data=data, out=out, progress=False)
    bad = next((out / "tiny_dense").glob(f"{SUITE}-*")) / f"{NOISE}-4.json"
    bad.write_bytes(b'{"model": "tiny_dense", "n": 1')
    monkeypatch.setattr(runner_mod, "_evaluate_cell", lambda *a: pytest.fail("work started"))
    with pytest.raises(CorruptResultsError, match=f"{NOISE}-4.json"):
        evaluate(models[:1], [SUITE], data=data, out=out, progress=False)
    assert bad.read_bytes() == b'{"model": "tiny_dense", "n": 1'
    runs, problems = read_results(out)
    assert len(problems) == 1 and len(runs[0].records) == 5


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a" / "x.json"

    def boom(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(store_mod.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        store_mod.atomic_write_json(target, {"a": 1})
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_bad_input_fails_before_any_work_and_lists_valid_names(tmp_path, models, monkeypatch):
    monkeypatch.setattr(runner_mod, "_evaluate_cell", lambda *a: pytest.fail("work started"))
    data = make_data(10)
    with pytest.raises(ValueError, match="valid: .*cifar10-c"):
        evaluate(models, ["nope-c"], data=data, out=tmp_path)
    with pytest.raises(ValueError, match=f"valid: {NOISE}"):
        evaluate(models, [SUITE], data=data, out=tmp_path, corruptions=["fog_nope"])
    with pytest.raises(ValueError, match="no_such_model_xyz"):
        evaluate(["no_such_model_xyz"], [SUITE], data=data, out=tmp_path)
    hundred = make_model(tmp_path / "c100", 0)
    (Path(hundred) / "config.json").write_text(json.dumps({"architecture": "bench_test_net", "num_classes": 100}))
    torch.manual_seed(0)
    save_file(TinyNet(100).state_dict(), str(Path(hundred) / "model.safetensors"))
    with pytest.raises(ValueError, match="100 classes but suite bench-test-c has 10"):
        evaluate([models[0], hundred], [SUITE], data=data, out=tmp_path)
    with pytest.raises(FileNotFoundError, match="Expected layout|layout:"):
        evaluate(models, ["cifar10-c"], data=tmp_path / "empty", out=tmp_path)
    assert not list(Path(tmp_path).glob("*/*/*.json"))


def test_prerendered_npy_layout_gives_the_same_counts_as_on_the_fly(tmp_path, models):
    clean = make_data(20)
    root = tmp_path / "BENCH-C"
    root.mkdir()
    blocks = [corruptions.apply(torch.from_numpy(clean.images).permute(0, 3, 1, 2), NOISE, s,
                                sample_ids=torch.arange(20)).permute(0, 2, 3, 1).numpy() for s in range(1, 6)]
    np.save(root / f"{NOISE}.npy", np.concatenate(blocks))
    np.save(root / "labels.npy", np.tile(clean.labels, 5))
    pre = evaluate(models[:1], [NPY_SUITE], data=root, out=tmp_path / "a", corruptions=[NOISE], progress=False)[0]
    fly = evaluate(models[:1], [NPY_SUITE], data=clean, out=tmp_path / "b", corruptions=[NOISE], progress=False)[0]
    assert pre.config["data"]["source"] == "prerendered" and fly.config["data"]["source"] == "onthefly"
    assert ("clean", 0) not in pre.records  # no clean set given for the pre-rendered data
    assert {k: r.correct for k, r in pre.records.items()} == \
           {k: r.correct for k, r in fly.records.items() if k != ("clean", 0)}


TORCHRUN_SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
import test_bench as helpers
from sparse_zoo.bench import evaluate
evaluate({models!r}, [helpers.SUITE], data=helpers.make_data(23), out={out!r}, batch_size=4, progress=False,
         severities=[1, 4], device="cpu")
import torch.distributed as dist
assert not dist.is_initialized()  # evaluate destroyed the group it created: no gloo threads left at exit
"""


def test_two_gloo_processes_give_the_numbers_of_one(tmp_path, models):
    single = evaluate(models, [SUITE], data=make_data(23), out=tmp_path / "one", batch_size=5, severities=[1, 4],
                      progress=False)
    script = tmp_path / "run.py"
    script.write_text(TORCHRUN_SCRIPT.format(tests=str(Path(__file__).parent), models=models,
                                             out=str(tmp_path / "two")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs, problems = read_results(tmp_path / "two")
    assert not problems and len(runs) == 2
    for run in runs:
        one = next(r for r in single if r.model == run.model)
        assert run.config_hash == one.config_hash
        assert all(rec.world_size == 2 for rec in run.records.values())
        assert {k: (r.n, r.correct) for k, r in run.records.items()} == \
               {k: (r.n, r.correct) for k, r in one.records.items()}


def test_leaderboard_rows_columns_and_formats(tmp_path, models):
    out = tmp_path / "r"
    evaluate(models, [SUITE], data=make_data(30), out=out, progress=False)
    board = leaderboard.build(out)
    runs = {m: r for (m, _), r in board.runs.items()}
    assert board.columns[:5] == ["model", "top1", "top1_err", "param_count", "img_size"]
    rows = {r["model"]: r for r in board.rows}
    assert rows["tiny_rigl"]["method"] == "rigl" and rows["tiny_dense"]["method"] == "dense"
    assert rows["tiny_rigl"]["baseline"] == "tiny_dense"
    assert rows["tiny_rigl"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    rigl, dense = runs["tiny_rigl"], runs["tiny_dense"]
    robust = lambda run: np.mean([r.correct / r.n for k, r in run.records.items() if k[0] != "clean"])  # noqa: E731
    assert rows["tiny_rigl"][f"{SUITE}_robust"] == pytest.approx(100 * robust(rigl), abs=0.006)
    assert rows["tiny_rigl"][f"{SUITE}_gain"] == pytest.approx(
        100 * (robust(rigl) - robust(dense)) / robust(dense), abs=0.006)
    assert rows["tiny_dense"][f"{SUITE}_mce"] == 100.0
    assert rows["tiny_rigl"]["top1"] == pytest.approx(100 * rigl.clean_accuracy, abs=0.006)
    csv_text = leaderboard.render(out, "csv")
    assert csv_text.splitlines()[0].startswith("model,top1,top1_err,param_count,img_size,method")
    assert len(csv_text.splitlines()) == 3
    md = leaderboard.render(out, "md", baseline="tiny_rigl", sort="top1")
    assert "| tiny_dense |" in md and md.count("\n| tiny_") == 2
    msg = leaderboard.render(out, "html")
    page = (out / "leaderboard.html").read_text()
    assert "wrote" in msg and page.count("data:image/png;base64,") == 2
    assert (out / "leaderboard_plots" / f"{SUITE}_gain_heatmap.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="models in these results"):
        leaderboard.build(out, baseline="nope")


def test_cli_bench_and_leaderboard(tmp_path, models, capsys):
    from sparse_zoo.cli import main
    root = tmp_path / "BENCH-C"
    root.mkdir()
    clean = make_data(10)
    np.save(root / f"{NOISE}.npy", np.concatenate([clean.images] * 5))
    np.save(root / "labels.npy", np.tile(clean.labels, 5))
    assert main(["bench", "--model", ",".join(models), "--suite", NPY_SUITE, "--data", str(root),
                 "--corruptions", NOISE, "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "tiny_rigl" in text and f"{NPY_SUITE}_robust" in text
    assert main(["leaderboard", str(tmp_path / "r"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("model,top1,top1_err,param_count,img_size")
    assert main(["bench", "--model", models[0], "--suite", "nope-c", "--data", str(root)]) == 2
    assert "unknown suite 'nope-c'; valid: " in capsys.readouterr().err


def test_default_run_reads_the_shipped_models_and_images(tmp_path, capsys):
    from sparse_zoo.bench import default
    models_dir = tmp_path / "models"
    make_model(models_dir / "demo_dense", 0)
    make_model(models_dir / "demo_rigl_s50", 1, 0.5, "rigl")
    data = make_data(40)
    images = tmp_path / "subset.npz"
    np.savez_compressed(images, images=data.images, labels=data.labels, classes=np.array([str(i) for i in range(10)]))
    config = default.DefaultRun(images=20, corruptions=("gaussian_noise",), severities=(1, 5), threads=1)
    board = default.run(tmp_path / "out", config, models_dir=models_dir, images=images, progress=False)
    text = capsys.readouterr().out
    assert "demo_rigl_s50" in text and "sparse-zoo bench --model" in text and "20 real CIFAR-10" in text
    rows = {r["model"]: r for r in board.rows}
    assert rows["demo_rigl_s50"]["baseline"] == "demo_dense"
    run = board.runs[("demo_rigl_s50", "cifar10-c")]
    assert set(run.records) == {("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 5)}
    assert all(r.n == 20 for r in run.records.values())
    assert (tmp_path / "out" / "leaderboard.html").is_file()


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_corruptions_reach_apply_and_are_kept_apart(tmp_path, models, monkeypatch):
    from sparse_zoo.data import onthefly
    seen = []
    real_apply = onthefly.corruptions.apply

    def spy(*args, **kwargs):
        seen.append(kwargs["compile"])
        return real_apply(*args, **kwargs)
    monkeypatch.setattr(onthefly.corruptions, "apply", spy)
    kwargs = dict(data=make_data(12), out=tmp_path / "r", batch_size=6, corruptions=["gaussian_noise"],
                  severities=[2], progress=False)
    eager = evaluate(models, [NPY_SUITE], **kwargs)
    assert seen and not any(seen)
    seen.clear()
    compiled = evaluate(models, [NPY_SUITE], compile_corruptions=True, **kwargs)
    assert seen and all(seen)
    for e, c in zip(eager, compiled):
        assert e.config_hash != c.config_hash  # separate records in one results folder
        key = ("gaussian_noise", 2)
        assert c.records[key].n == e.records[key].n == 12
        # compiled and eager images differ by at most one 8-bit level, on few pixels
        assert abs(c.records[key].correct - e.records[key].correct) <= 1
