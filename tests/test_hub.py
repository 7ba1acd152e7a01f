"""Hub folders, cards, a local Hub cache loaded through timm offline, publishing with a mocked upload."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import huggingface_hub.constants as hf_constants
import pytest
import timm
import torch
import yaml

import sparse_zoo  # noqa: F401
from sparse_zoo import hub, weights
from sparse_zoo.cli import main as cli_main
from sparse_zoo.models import run_info
from sparse_zoo.sparsity import check_masks, sparsify

torch.set_num_threads(1)
NAME = "vgg16_cifar_rigl_s50"
RESULTS = {"clean": 91.25, "robust": {"cifar10-c": 70.5, "cifar10-c-bar": 66.0}}


def _model(name: str = NAME, **kwargs):
    torch.manual_seed(kwargs.pop("seed", 0))
    return timm.create_model(name, num_classes=10, width=0.125, **kwargs)


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


@pytest.fixture
def folder(tmp_path):
    model = _model()
    return model, hub.save_pretrained(model, tmp_path / "export", results=RESULTS)


def test_save_pretrained_writes_timm_folder_and_card(folder):
    model, out = folder
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == NAME and config["num_classes"] == 10
    assert config["model_args"]["width"] == 0.125
    assert config["pretrained_cfg"]["first_conv"] == "features.0" and config["pretrained_cfg"]["classifier"] == "head.fc"
    assert config["sparse_zoo"]["method"] == "rigl" and config["sparse_zoo"]["sparsity"] == "0.5"
    meta = _front_matter((out / "README.md").read_text())
    assert meta["library_name"] == "timm" and meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["cifar10"]
    assert {"rigl", "sparsity-50"} <= {t.removeprefix("method-") for t in meta["tags"]}
    results = meta["model-index"][0]["results"]
    got = {(r["dataset"]["type"], r["metrics"][0]["name"]): r["metrics"][0]["value"] for r in results}
    assert got == {("cifar10", "Top-1 accuracy (clean)"): 91.25, ("cifar10-c", "Mean robust accuracy"): 70.5,
                   ("cifar10-c-bar", "Mean robust accuracy"): 66.0}
    assert "| sparsity (conv and linear weights) | 0.5000" in (out / "README.md").read_text()


def test_card_without_results_has_no_model_index(tmp_path):
    out = hub.save_pretrained(_model(), tmp_path / "plain")
    meta = _front_matter((out / "README.md").read_text())
    assert "model-index" not in meta
    with pytest.raises(ValueError, match="not a percentage"):
        hub.save_pretrained(_model(), tmp_path / "bad", results={"clean": 191.0})


def test_load_model_local_folder_and_file(folder):
    model, out = folder
    assert _same(model, hub.load_model(out))
    assert _same(model, hub.load_model(out / "model.safetensors"))
    loaded = hub.load_model(str(out))
    assert loaded.zoo_info == model.zoo_info
    assert _same(model, timm.create_model(f"local-dir:{out}", pretrained=True))


def test_load_model_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="close matches: .*resnet50_rigl_s10"):
        hub.load_model("resnet50_rgl_s10")


def _hub_cache(root: Path, repo_id: str, folder: Path) -> Path:
    """A Hugging Face cache holding ``folder`` as the main revision of ``repo_id``."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy(folder / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return root


@pytest.fixture
def offline_cache(tmp_path, monkeypatch, folder):
    model, out = folder
    cache = _hub_cache(tmp_path / "hf-cache", f"sparse-zoo/{NAME}.c10", out)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return model, cache


def test_pretrained_true_from_offline_hub_cache(offline_cache):
    model, cache = offline_cache
    loaded = timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125, mask_seed=4)
    assert _same(model, loaded)
    check_masks(loaded)
    explicit = timm.create_model(NAME, pretrained=True, num_classes=10, width=0.125, mask_seed=4,
                                 cache_dir=str(cache))
    assert _same(model, explicit)
    by_id = timm.create_model(f"hf-hub:sparse-zoo/{NAME}.c10", pretrained=True)
    assert _same(model, by_id) and by_id.zoo_info.method == "rigl"
    assert _same(model, hub.load_model(f"hf-hub:sparse-zoo/{NAME}.c10"))
    assert _same(model, hub.load_model(NAME, num_classes=10, width=0.125))


def test_unpublished_weights_say_how_to_train(offline_cache):
    with pytest.raises(RuntimeError, match=r"No weights are published for vgg16_cifar_set_s30\.c10 yet.*"
                                           r"sparse-zoo train --method set --sparsity 0\.3"):
        timm.create_model("vgg16_cifar_set_s30", pretrained=True)
    with pytest.raises(RuntimeError, match="No weights are published"):
        hub.load_model("resnet50_rigl_s10")


def test_video_model_round_trip_keeps_clip_size(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = timm.create_model("i3d_rigl_s10", num_classes=5, width=0.125)
    out = hub.save_pretrained(model, tmp_path / "i3d")
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained_cfg"]["input_size"] == [3, 16, 224, 224]
    assert _front_matter((out / "README.md").read_text())["pipeline_tag"] == "video-classification"
    cache = _hub_cache(tmp_path / "cache", "sparse-zoo/i3d_rigl_s10.ucf101", out)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    loaded = timm.create_model("hf-hub:sparse-zoo/i3d_rigl_s10.ucf101", pretrained=True, cache_dir=str(cache))
    assert _same(model, loaded) and loaded.pretrained_cfg["input_size"] == (3, 16, 224, 224)


def test_trained_dense_arch_needs_run_info(tmp_path):
    """A dense architecture sparsified by training must say how it was trained."""
    model = _model("vgg16_cifar_dense")
    sparsify(model, 0.4, "uniform")
    with pytest.raises(ValueError, match="has masks but its metadata says dense"):
        hub.save_pretrained(model, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    info = run_info("vgg16_cifar", "set", 0.4, "cifar10")
    out = hub.save_pretrained(model, tmp_path / "run", info=info, results={"top1": 50.0, "epochs": 3})
    assert weights.read_metadata(out)["method"] == "set" and json.loads((out / "config.json").read_text())[
        "architecture"] == "vgg16_cifar_set_s40"
    card = (out / "README.md").read_text()
    assert "epochs = 3" in card and _front_matter(card)["model-index"][0]["results"][0]["metrics"][0]["value"] == 50.0
    assert _same(model, hub.load_model(out))


class _FakeHub:
    """Stands in for huggingface_hub's create_repo / upload_folder and records the calls."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        self.calls.append(("upload_folder", files, kwargs))
        return "commit-url"


@pytest.fixture
def fake_hub(monkeypatch):
    fake = _FakeHub()
    monkeypatch.setattr(huggingface_hub, "create_repo", fake.create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", fake.upload_folder)
    return fake


def test_push_to_hub_creates_repo_and_uploads_folder(fake_hub):
    assert hub.push_to_hub(_model(), "me/vgg-rigl", results=RESULTS, private=True, token="t") == "commit-url"
    (op1, repo, kw1), (op2, files, kw2) = fake_hub.calls
    assert (op1, repo, kw1) == ("create_repo", "me/vgg-rigl",
                                dict(repo_type="model", private=True, exist_ok=True, token="t"))
    assert op2 == "upload_folder" and files == ["README.md", "config.json", "model.safetensors"]
    assert kw2["repo_id"] == "me/vgg-rigl" and kw2["repo_type"] == "model" and kw2["token"] == "t"
    assert not Path(kw2["folder_path"]).exists()  # the temporary folder is cleaned up
    with pytest.raises(ValueError, match="repo_id must be ORG/NAME"):
        hub.push_to_hub(_model(), "no-org")


def test_publish_command(folder, tmp_path, fake_hub, capsys):
    _, run_dir = folder
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    out = tmp_path / "dry"
    assert cli_main(["publish", str(run_dir), "--repo-id", "me/x", "--dry-run", "--out", str(out),
                     "--results", str(results)]) == 0
    assert not fake_hub.calls and "would upload to me/x" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    assert "hf-hub:me/x" in card and _front_matter(card)["model-index"][0]["results"][0]["metrics"][0]["value"] == 91.25
    assert cli_main(["publish", str(run_dir), "--repo-id", "me/x"]) == 0
    assert [c[0] for c in fake_hub.calls] == ["create_repo", "upload_folder"]
    assert fake_hub.calls[1][2]["repo_id"] == "me/x"
    with pytest.raises(SystemExit, match="does not exist"):
        cli_main(["publish", str(tmp_path / "nope"), "--repo-id", "me/x"])
