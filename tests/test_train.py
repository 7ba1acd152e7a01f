"""The training tool: recipes, overrides, schedules, checkpoints, exact resume, bad input, export."""
from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sparse_zoo.train import checkpoint, get_recipe
from sparse_zoo.train.data import DATASETS, EpochSampler, SeededSamples
from sparse_zoo.train.distributed import check_batch
from sparse_zoo.train.recipes import Recipe, apply_overrides, load_yaml, parse_set
from sparse_zoo.train.schedule import lr_at

torch.set_num_threads(1)


ARCH = "resnet34_cifar"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_folder(root: Path, per_class: int = 4, test_per_class: int = 2, size: int = 8) -> Path:
    """A tiny image folder: train/<class>/*.png and test/<class>/*.png, random pixels, fixed seed."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"))


def tiny_recipe(**changes) -> Recipe:
    """resnet34_cifar at 1/16 width on 8 px CIFAR-10-style images: 40 images, batch 8 -> 5 steps per epoch."""
    base = dict(model=ARCH, model_kwargs={"width": 0.0625}, dataset="cifar10", input_size=(3, 8, 8), crop_padding=1,
                epochs=2, batch_size=8, lr=0.05, delta_t=2, workers=0, device="cpu", method="rigl", sparsity=0.5)
    base.update(changes)
    return get_recipe("resnet34_cifar10").replace(**base)


def run(recipe: Recipe, folder: Path, out: Path, **kwargs):
    from sparse_zoo.train import train
    return train(recipe, folder, out, progress=False, **kwargs)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load(out / checkpoint.CHECKPOINT_FILE)["model"]


# -- recipes -----------------------------------------------------------------------------

def test_paper_recipes_match_table_4():
    expected = {  # epochs, lr, batch, schedule, optimizer, wd, distribution, delta_t
        "vgg16_cifar10": (160, 0.1, 100, "cosine", "sgd", 5e-4, "uniform", 500),
        "resnet34_cifar100": (160, 0.1, 100, "cosine", "sgd", 5e-4, "uniform", 500),
        "efficientnet_b0_tinyimagenet": (100, 0.1, 128, "cosine", "sgd", 5e-4, "uniform", 100),
        "resnet50_imagenet": (90, 0.1, 256, "step", "sgd", 1e-4, "erk", 2000),
        "r3d50_ucf101": (80, 0.1, 8, "cosine", "sgd", 1e-3, "erk", 300),
        "i3d_ucf101": (80, 0.1, 8, "cosine", "sgd", 1e-3, "erk", 300),
        "deit_base_imagenet": (200, 1e-3, 1024, "cosine", "adamw", 0.05, "erk", 7000),
    }
    for name, values in expected.items():
        r = get_recipe(name)
        assert (r.epochs, r.lr, r.batch_size, r.lr_schedule, r.optimizer, r.weight_decay, r.distribution,
                r.delta_t) == values, name
    assert get_recipe("vgg16_cifar10").dst_kwargs() == {"drop_fraction": 0.1, "drop_schedule": "polynomial"}
    assert get_recipe("vgg16_cifar10").replace(method="mest_g").dst_kwargs()["soft_bound"] == 0.1
    assert get_recipe("vgg16_cifar10").replace(method="granet_r").dst_kwargs()["initial_density"] == 0.8
    assert get_recipe("resnet50_imagenet").replace(method="granet_g").dst_kwargs()["initial_density"] == 0.95
    r50 = get_recipe("resnet50_imagenet")
    assert [lr_at(r50, e * 10, 10) for e in (0, 29, 30, 59, 60, 89)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3])


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(ValueError, match="valid recipes: .*resnet34_cifar100") as err:
        get_recipe("resnet34_cifar1000")
    assert "did you mean" in str(err.value)


def test_registry_returns_copies():
    r = get_recipe("vgg16_cifar10")
    r.method_options["granet_r"]["initial_density"] = 0.5
    assert get_recipe("vgg16_cifar10").method_options["granet_r"]["initial_density"] == 0.8


def test_overrides_are_typed(tmp_path):
    r = get_recipe("resnet34_cifar10")
    sets = parse_set(["lr=1e-3", "epochs=3", "model_kwargs.width=0.25", "input_size=[3, 16, 16]",
                      "method_options.granet_r.initial_density=0.9", "eval_subset=null"])
    r2 = apply_overrides(r, sets)
    assert (r2.lr, r2.epochs, r2.model_kwargs, r2.input_size, r2.eval_subset) == (1e-3, 3, {"width": 0.25}, (3, 16, 16), None)
    assert r2.method_options["granet_r"]["initial_density"] == 0.9 and r2.method_options["mest_r"] == {"soft_bound": 0.1}
    assert r.lr == 0.1  # the original is untouched
    with pytest.raises(ValueError, match="unknown recipe field 'learning_rate'.*valid fields"):
        apply_overrides(r, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="epochs: expected int"):
        apply_overrides(r, {"epochs": 2.5})
    with pytest.raises(ValueError, match="not of the form KEY=VALUE"):
        parse_set(["lr"])
    cfg = tmp_path / "o.yaml"
    cfg.write_text("lr: 0.02\ndst_options:\n  drop_fraction: 0.3\n")
    r3 = apply_overrides(r, load_yaml(cfg))
    assert r3.lr == 0.02 and r3.dst_options == {"drop_fraction": 0.3, "drop_schedule": "polynomial"}
    assert r3.config_hash() != r.config_hash() and r.replace(workers=7).config_hash() == r.config_hash()


def test_warmup_and_cosine():
    r = Recipe(epochs=10, lr=1.0, min_lr=0.1, warmup_epochs=2, warmup_lr=0.0)
    assert lr_at(r, 0, 5) == 0.0 and lr_at(r, 5, 5) == pytest.approx(0.5)
    assert lr_at(r, 10, 5) == pytest.approx(1.0) and lr_at(r, 50, 5) == pytest.approx(0.1)
    assert lr_at(r, 30, 5) == pytest.approx(0.1 + 0.45 * (1 + np.cos(np.pi * 0.5)))


# -- data order and augmentation ---------------------------------------------------------

def test_epoch_sampler_shards_and_skips():
    one = list(EpochSampler(23, 4, seed=1, epoch=3))
    assert len(one) == 20 and len({i for _, i in one}) == 20 and {e for e, _ in one} == {3}
    two = [list(EpochSampler(23, 4, seed=1, epoch=3, rank=r, world=2)) for r in range(2)]
    merged = [k for step in range(5) for r in range(2) for k in two[r][2 * step:2 * step + 2]]
    assert merged == one
    assert list(EpochSampler(23, 4, seed=1, epoch=3, skip=2)) == one[8:]
    assert list(EpochSampler(23, 4, seed=1, epoch=4)) != one
    assert len(EpochSampler(23, 4, seed=1, epoch=0, limit=9)) == 8


def test_seeded_samples_are_reproducible_and_leave_global_rng_alone():
    base = [(torch.arange(16.0).view(1, 4, 4), 0)] * 3
    noisy = SeededSamples(base, lambda x: x + torch.rand(1) + random.random() + np.random.rand(), seed=5)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = noisy[(1, 2)][0]
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)
    assert torch.equal(noisy[(1, 2)][0], a)
    assert not torch.equal(noisy[(1, 1)][0], a) and not torch.equal(noisy[(2, 2)][0], a)


# -- checkpoints ---------------------------------------------------------------------------

def test_checkpoint_round_trip_and_damage(tmp_path):
    state = {"model": {"w": torch.randn(3, 2), "m": torch.ones(3, dtype=torch.bool)},
             "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(2)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
             "rng": checkpoint.rng_state(), "misc": (1, None, "x", float("inf"))}
    path = tmp_path / "c.safetensors"
    checkpoint.save(path, state)
    back = checkpoint.load(path)
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["model"]["m"].dtype == torch.bool
    assert 0 in back["optimizer"]["state"] and back["misc"] == state["misc"]
    assert np.array_equal(back["rng"]["numpy"][1], state["rng"]["numpy"][1])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot be read"):
        checkpoint.load(path)


def test_global_batch_must_divide_world_size():
    check_batch(8, 2)
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        check_batch(8, 3)


# -- training ------------------------------------------------------------------------------

def test_train_writes_a_complete_run(folder, tmp_path):
    out = tmp_path / "run"
    result = run(tiny_recipe(), folder, out)
    assert not result.interrupted and result.epochs_done == 2 and result.global_step == 10
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [5, 10]
    assert all(0 <= r["eval_acc"] <= 100 and r["images_per_s"] > 0 and np.isfinite(r["loss"]) for r in rows)
    assert (out / "log.csv").read_text().splitlines()[0].split(",") == list(
        ("epoch", "step", "loss", "eval_acc", "density", "lr", "images_per_s", "epoch_time_s"))
    assert rows[-1]["density"] == pytest.approx(0.5, abs=0.01)
    info = json.loads((out / "run.json").read_text())
    assert info["recipe"]["method"] == "rigl" and info["world_size"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet34_cifar_rigl_s50" and config["num_classes"] == 10
    assert config["pretrained_cfg"]["tag"] == "c10" and config["pretrained_cfg"]["mean"] == [0.4914, 0.4822, 0.4465]
    from sparse_zoo.hub import load_model
    model = load_model(str(out))
    from sparse_zoo.sparsity import check_masks, masks
    check_masks(model)
    saved = weights(out)
    for name, mask in masks(model).items():
        assert torch.equal(mask, saved[f"{name}.weight_mask"])


def test_resume_mid_epoch_is_bitwise_equal(folder, tmp_path):
    recipe = tiny_recipe()
    run(recipe, folder, tmp_path / "a")
    stopped = run(recipe, folder, tmp_path / "b", stop_at_step=3)
    assert stopped.interrupted and stopped.global_step == 3 and not (tmp_path / "b" / "log.csv").exists()
    resumed = run(recipe.replace(workers=1), folder, tmp_path / "b", resume=True)  # runtime fields may change
    assert resumed.global_step == 10
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la, lb = (json.loads((tmp_path / d / "log.jsonl").read_text().splitlines()[-1]) for d in "ab")
    assert (la["loss"], la["eval_acc"], la["density"]) == (lb["loss"], lb["eval_acc"], lb["density"])


class _InterruptingFolder(torch.utils.data.Dataset):
    """An image folder that sends this process one SIGINT (a Ctrl-C) at its ``at``-th read."""

    fired = False

    def __init__(self, base, at: int):
        self.base, self.at, self.reads, self.classes = base, at, 0, base.classes

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.at and not _InterruptingFolder.fired:
            _InterruptingFolder.fired = True
            signal.raise_signal(signal.SIGINT)
        return self.base[i]


def _interrupting(recipe, root, split, data_config):
    from sparse_zoo import data
    base = data.CIFAR(root, 10, train=split == "train")
    return _InterruptingFolder(base, at=10) if split == "train" else base  # while loading batch 2


def test_ctrl_c_checkpoints_and_resumes(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "cifar10", _interrupting)
    recipe = tiny_recipe(epochs=1)
    out = tmp_path / "run"
    stopped = run(recipe, folder, out)
    assert stopped.interrupted and stopped.global_step == 2  # the step in progress completes, then it stops
    state = checkpoint.load(out / checkpoint.CHECKPOINT_FILE)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (0, 2, 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = run(recipe, folder, out, resume=True)
    assert not resumed.interrupted and resumed.global_step == 5 and (out / "model.safetensors").is_file()


# -- bad input -----------------------------------------------------------------------------

def test_bad_names_list_valid_choices(folder, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown method 'rigll'.*valid methods: .*rigl"):
        run(tiny_recipe(method="rigll"), folder, out)
    with pytest.raises(ValueError, match="unknown architecture 'resnet34_cifra'.*resnet34_cifar"):
        run(tiny_recipe(model="resnet34_cifra"), folder, out)
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosin'.*cosine"):
        run(tiny_recipe(lr_schedule="cosin"), folder, out)
    with pytest.raises(ValueError, match="unknown augmentation"):
        run(tiny_recipe(augmentation="magic"), folder, out)
    assert not out.exists()


def test_wrong_data_layout_fails_before_training(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "x.png")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="Expected layout"):
        run(tiny_recipe(), flat, out)
    with pytest.raises(ValueError, match="Expected layout"):
        run(tiny_recipe(), tmp_path / "missing", out)
    assert not out.exists()


def test_existing_directories_are_never_overwritten(folder, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a sparse-zoo training run"):
        run(tiny_recipe(), folder, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    out = tmp_path / "run"
    recipe = tiny_recipe(epochs=1)
    run(recipe, folder, out, stop_at_step=2)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="already holds this run; pass --resume"):
        run(recipe, folder, out)
    with pytest.raises(ValueError, match=r"(?s)different run.*\n  lr: 0.05 -> 0.01"):
        run(recipe.replace(lr=0.01), folder, out, resume=True)
    with pytest.raises(ValueError, match="(?s)different run.*sparsity"):
        run(recipe.replace(sparsity=0.3), folder, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(ValueError, match="no run to resume"):
        run(recipe, folder, tmp_path / "empty", resume=True)


def test_cli_reports_bad_input(capsys, folder, tmp_path):
    from sparse_zoo.cli import main
    assert main(["train", "--recipe", "nope"]) == 2
    assert "valid recipes" in capsys.readouterr().err
    assert main(["train", "--recipe", "vgg16_cifar10", "--set", "epochs=3", "--show-recipe"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 3
    assert main(["train", "--recipe", "vgg16_cifar10", "--data", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "Expected layout" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last(folder, tmp_path, amp):
    result = run(tiny_recipe(epochs=1, amp=amp, channels_last=True), folder, tmp_path / amp)
    row = result.last
    assert result.global_step == 5 and np.isfinite(row["loss"]) and row["density"] == pytest.approx(0.5, abs=0.01)
    state = checkpoint.load(tmp_path / amp / checkpoint.CHECKPOINT_FILE)
    assert (state["scaler"] == {}) if amp == "bf16" else (state["scaler"]["scale"] > 0)  # fp16 only scales
