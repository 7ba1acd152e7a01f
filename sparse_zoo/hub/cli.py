"""``sparse-zoo publish RUN_DIR --repo-id ORG/NAME [--dry-run]``: a training run to a Hub repo.

The run directory (``model.safetensors`` + ``config.json``, as ``sparse-zoo train``
writes them) is loaded and checked, re-exported as a Hub model folder with its card,
and uploaded. ``--dry-run`` writes the folder (``--out``, default a temporary
directory) and uploads nothing.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from . import load_model, save_pretrained, upload_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="training run directory or model folder")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="Hub repository to create / update")
    parser.add_argument("--results", metavar="JSON", help="benchmark results for the card: "
                        '{"clean": top-1 %%, "robust": {"cifar10-c": mean top-1 %%, ...}}')
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--dry-run", action="store_true", help="write the folder, upload nothing")
    parser.add_argument("--out", metavar="DIR", help="where to write the model folder (default: a temporary one)")


def _results(path: str | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"sparse-zoo publish: cannot read --results {path}: {e}") from e
    if not isinstance(data, dict):
        raise SystemExit(f"sparse-zoo publish: --results {path} must hold a JSON object")
    return data


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.exists():
        raise SystemExit(f"sparse-zoo publish: {run_dir} does not exist (expected a run directory with "
                         "model.safetensors and config.json)")
    model = load_model(run_dir)
    results = _results(args.results)
    with tempfile.TemporaryDirectory(prefix="sparse-zoo-publish-") as tmp:
        folder = Path(args.out) if args.out else Path(tmp)
        save_pretrained(model, folder, results=results, repo_id=args.repo_id)
        files = ", ".join(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
        if args.dry_run:
            if not args.out:  # the folder goes away with this command: show the card instead
                print((folder / "README.md").read_text())
            where = folder if args.out else "a temporary folder (use --out DIR to keep it)"
            print(f"dry run: wrote {files} to {where}; would upload to {args.repo_id}")
            return 0
        commit = upload_folder(folder, args.repo_id, private=args.private)
    print(f"uploaded {files} to https://huggingface.co/{args.repo_id} ({commit})")
    return 0
