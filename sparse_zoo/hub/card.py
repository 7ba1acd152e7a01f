"""Model cards: the Hub ``README.md`` of a zoo model (YAML front matter + text).

The front matter follows the Hub's model-card metadata: ``library_name: timm``,
``license``, ``tags``, ``datasets``, ``pipeline_tag`` and, when benchmark results are
given, a ``model-index`` with the clean top-1 accuracy on the training set's test
split and the mean robust accuracy of each corruption suite.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from ..models import ARCHS, DATASETS, PAPER_ID, ZooInfo
from ..sparsity import SparsityReport

_SUITE_TITLES = {
    "cifar10-c": "CIFAR-10-C", "cifar100-c": "CIFAR-100-C", "tiny-imagenet-c": "Tiny-ImageNet-C",
    "imagenet-c": "ImageNet-C", "imagenet-c-bar": "ImageNet-C-bar", "3dcc": "ImageNet-3DCC",
    "ucf101-c": "UCF101-C",
}


@dataclass
class Results:
    """Numbers for a card: clean top-1 and mean robust top-1 per suite (percent), and run details.

    ``from_dict`` reads ``clean`` (or ``top1``, as the training tool writes it) and
    ``robust`` (``{suite: mean top-1}``); other scalar entries (epochs, steps,
    density, ...) are listed on the card as details.
    """

    clean: float | None = None
    robust: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping) -> Results:
        data = dict(data)
        clean = data.pop("clean", None)
        top1 = data.pop("top1", None)
        clean = clean if clean is not None else top1
        robust_in = data.pop("robust", None) or {}
        if not isinstance(robust_in, Mapping):
            raise ValueError(f"results 'robust' must map suite names to mean top-1 %, got {robust_in!r}")
        robust = {str(k): float(v) for k, v in robust_in.items()}
        for name, v in [("clean", clean), *robust.items()]:
            if v is not None and not 0.0 <= float(v) <= 100.0:
                raise ValueError(f"result {name}={v} is not a percentage in [0, 100]")
        details = {str(k): str(v) for k, v in data.items() if isinstance(v, (str, int, float)) and v is not None}
        return cls(None if clean is None else float(clean), robust, details)


def _title(info: ZooInfo) -> str:
    return ARCHS[info.arch].title if info.arch in ARCHS else info.arch


def _task(info: ZooInfo) -> tuple[str, str]:
    if info.arch in ARCHS and ARCHS[info.arch].video:
        return "video-classification", "Video Classification"
    return "image-classification", "Image Classification"


def _model_index(name: str, info: ZooInfo, results: Results) -> list[dict]:
    task_type, task_name = _task(info)
    ds = DATASETS[info.dataset]
    entries = []
    if results.clean is not None:
        entries.append({
            "task": {"type": task_type, "name": task_name},
            "dataset": {"name": ds.title, "type": ds.hub_dataset},
            "metrics": [{"type": "accuracy", "value": round(results.clean, 2), "name": "Top-1 accuracy (clean)"}],
        })
    for suite, value in sorted(results.robust.items()):
        entries.append({
            "task": {"type": task_type, "name": task_name},
            "dataset": {"name": _SUITE_TITLES.get(suite, suite), "type": suite},
            "metrics": [{"type": "accuracy", "value": round(value, 2), "name": "Mean robust accuracy"}],
        })
    return [{"name": name, "results": entries}] if entries else []


def front_matter(name: str, info: ZooInfo, results: Results | None = None) -> dict:
    """The card's YAML metadata as a dict."""
    task_type, _ = _task(info)
    tags = [task_type, "timm", "sparse", "sparse-zoo", info.arch, f"method-{info.method}"]
    if info.method != "dense":
        tags.append(f"sparsity-{round(info.sparsity * 100)}")
    if info.method not in ("dense", "static"):
        tags.append("dynamic-sparse-training")
    meta = {"library_name": "timm", "license": "apache-2.0", "pipeline_tag": task_type, "tags": tags,
            "datasets": [DATASETS[info.dataset].hub_dataset]}
    index = _model_index(name, info, results or Results())
    if index:
        meta["model-index"] = index
    return meta


def _results_table(results: Results) -> str:
    rows = [("clean test set", results.clean)] if results.clean is not None else []
    rows += [(_SUITE_TITLES.get(s, s) + " (mean over corruptions and severities)", v)
             for s, v in sorted(results.robust.items())]
    text = ("\n".join(["| evaluation | top-1 (%) |", "|---|---|", *(f"| {n} | {v:.2f} |" for n, v in rows)])
            if rows else "No benchmark results were given when this card was written.")
    if results.details:
        text += "\n\nRun details: " + ", ".join(f"{k} = {v}" for k, v in sorted(results.details.items())) + "."
    return text


def model_card(name: str, info: ZooInfo, *, report: SparsityReport, repo_id: str | None = None,
               results: Results | None = None) -> str:
    """The full ``README.md`` of one exported model."""
    title, ds = _title(info), DATASETS[info.dataset]
    spec = f"hf-hub:{repo_id}" if repo_id else "local-dir:MODEL_FOLDER"  # the folder holding this card
    method = "dense training (the baseline)" if info.method == "dense" else f"`{info.method}`"
    flops = (f"| inference FLOPs (dense -> sparse) | {report.dense_flops / 1e9:.3f} G -> "
             f"{report.sparse_flops / 1e9:.3f} G |\n" if report.dense_flops else "")
    body = f"""# {name}

{title} trained on {ds.title} with {method} at {info.sparsity:.0%} sparsity
(layer-wise distribution `{info.distribution}`), from the sparse-zoo model collection of
"Dynamic Sparse Training versus Dense Training: The Unexpected Winner in Image Corruption
Robustness" ({PAPER_ID}).

The weights file `model.safetensors` holds the weights and the sparsity masks (bool tensors
`<layer>.weight_mask`); pruned weights are stored as zeros.

## Model details

| | |
|---|---|
| architecture | `{info.arch}` |
| method | `{info.method}` |
| sparsity (conv and linear weights) | {report.sparsity:.4f} (target {info.sparsity:g}) |
| distribution | `{info.distribution}` |
| training set | {ds.title} (`{info.dataset}`) |
| parameters (nonzero / total) | {report.nonzero_params:,} / {report.total_params:,} |
{flops}
## Results

{_results_table(results or Results())}

## Usage

```python
import sparse_zoo  # registers the zoo's architectures with timm
import timm

model = timm.create_model("{spec}", pretrained=True).eval()
# or: model = sparse_zoo.hub.load_model("{spec.replace('local-dir:', '')}")
```

Fine-tune with the masks frozen (the sparsity stays exact): `python examples/finetune.py --model {spec.replace('local-dir:', '')}`.

## Training

Reproduce with `sparse-zoo train --method {info.method} --sparsity {info.sparsity:g} --recipe RECIPE
--data PATH --out RUN_DIR` using the paper's recipe for {title} on {ds.title}.
"""
    return "---\n" + yaml.safe_dump(front_matter(name, info, results), sort_keys=False) + "---\n\n" + body


@dataclass
class IndexEntry:
    """One row of the ``model_cards/`` index."""

    name: str
    info: ZooInfo
    nonzero_params: int
    total_params: int
    clean: float | None = None

    def as_dict(self) -> dict:
        return {"name": self.name, "info": self.info.as_metadata(), "nonzero_params": self.nonzero_params,
                "total_params": self.total_params, "clean": self.clean}

    @classmethod
    def from_dict(cls, data: Mapping) -> IndexEntry:
        return cls(data["name"], ZooInfo.from_metadata(data["info"]), int(data["nonzero_params"]),
                   int(data["total_params"]), data.get("clean"))


def index_table(entries: list[IndexEntry]) -> str:
    """The markdown index of ``model_cards/``: one row per card."""
    lines = ["# sparse-zoo model cards", "",
             "Generated by `tools/make_model_cards.py` from exported model folders.", "",
             "| model | arch | method | sparsity | distribution | dataset | nonzero / total params | clean top-1 | card |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: e.name):
        clean = f"{e.clean:.2f}" if e.clean is not None else "-"
        lines.append(f"| `{e.name}` | {e.info.arch} | {e.info.method} | {e.info.sparsity:g} | {e.info.distribution} | "
                     f"{e.info.dataset} | {e.nonzero_params:,} / {e.total_params:,} | {clean} | "
                     f"[card]({e.name}/README.md) |")
    return "\n".join(lines) + "\n"
