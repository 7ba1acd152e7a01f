"""Regenerate ``model_cards/``: the card of each exported model folder, and an index table.

    python tools/make_model_cards.py RUN_DIR [RUN_DIR ...] [--out model_cards]

Each RUN_DIR is a model folder (``model.safetensors`` + ``config.json``, written by
``sparse_zoo.hub.save_pretrained``, ``sparse-zoo train`` or ``examples/finetune.py``).
The model is loaded (checksum and masks checked) and its card written with the same
code as ``save_pretrained`` to ``OUT/<folder name>/README.md``, with the results
recorded in its ``config.json`` or, when present, ``RUN_DIR/results.json``
(``{"clean": .., "robust": {suite: ..}}``). ``OUT/index.json`` keeps one entry per
card and ``OUT/README.md`` is the index table over all of them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sparse_zoo.hub import CARD_NAME, CONFIG_NAME, load_model
from sparse_zoo.hub.card import IndexEntry, Results, index_table, model_card
from sparse_zoo.sparsity import report


def export_card(folder: Path, out: Path) -> IndexEntry:
    model = load_model(folder)
    info = model.zoo_info
    results_file = folder / "results.json"
    recorded = json.loads((folder / CONFIG_NAME).read_text()).get("results")
    data = json.loads(results_file.read_text()) if results_file.is_file() else recorded
    results = None
    if data:
        results = Results.from_dict({k: v for k, v in data.items() if k != "details"} | data.get("details", {}))
    rep = report(model)
    target = out / folder.name / CARD_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(model_card(info.model, info, report=rep, results=results))
    print(f"wrote {target}")
    return IndexEntry(folder.name, info, rep.nonzero_params, rep.total_params, results.clean if results else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="exported model folders")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "model_cards")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    index_file = args.out / "index.json"
    entries = {e["name"]: IndexEntry.from_dict(e)
               for e in (json.loads(index_file.read_text()) if index_file.is_file() else [])}
    for folder in args.folders:
        entry = export_card(folder, args.out)
        entries[entry.name] = entry
    index_file.write_text(json.dumps([e.as_dict() for e in sorted(entries.values(), key=lambda e: e.name)],
                                     indent=2) + "\n")
    (args.out / "README.md").write_text(index_table(list(entries.values())))
    print(f"wrote {args.out / 'README.md'} ({len(entries)} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
