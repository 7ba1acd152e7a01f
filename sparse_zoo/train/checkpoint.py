"""Training checkpoints: the whole training state in one safetensors file, written atomically.

A checkpoint is a tree of dicts, lists, tuples, tensors, numbers and strings (model
and optimizer state dicts, the DST engine's state, RNG states, counters). Tensors go
into the safetensors payload; the tree's shape and every other leaf go into its
metadata as JSON. Loading executes nothing (no pickle), and a write is atomic: the
file is written beside the target and renamed over it, so a crash leaves either the
old checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .recipes import Recipe, apply_overrides, diff

FORMAT = "sparse-zoo-checkpoint/1"


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        wide = obj.astype(np.float64 if np.issubdtype(obj.dtype, np.floating) else np.int64)
        return {"__ndarray__": _encode(torch.from_numpy(wide), tensors), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return _decode(obj["__ndarray__"], tensors).numpy().astype(obj["dtype"])
    if "__dict__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    raise ValueError(f"malformed checkpoint tree node with keys {sorted(obj)}")


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path``."""
    path = Path(path)
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.tmp"))
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save(path: str | Path, state: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    meta = {"format": FORMAT, "tree": json.dumps(tree)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; a damaged file raises ValueError."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({err})") from err
    if meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a sparse-zoo checkpoint (format {meta.get('format')!r})")
    return _decode(json.loads(meta["tree"]), tensors)


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from: torch (CPU and CUDA), numpy, Python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------
# run directories

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
RUN_FORMAT = "sparse-zoo-run/1"


def run_info(recipe: Recipe, data: str | Path, world: int) -> dict[str, Any]:
    """What identifies a run: its recipe (minus runtime fields), data and process count."""
    return {"format": RUN_FORMAT, "config_hash": recipe.config_hash(), "recipe": recipe.to_dict(),
            "data": str(Path(data).resolve()), "world_size": world}


def _differences(saved: dict[str, Any], info: dict[str, Any]) -> list[str]:
    out = [f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff(apply_overrides(Recipe(), saved["recipe"]),
                                                        apply_overrides(Recipe(), info["recipe"])).items()]
    for key in ("data", "world_size"):
        if saved.get(key) != info[key]:
            out.append(f"{key}: {saved.get(key)!r} -> {info[key]!r}")
    return out


def open_run_dir(out: str | Path, info: dict[str, Any], *, resume: bool) -> Path | None:
    """Check ``out`` against this run before anything is written.

    A new or empty directory starts a run. A directory holding this very run needs
    ``resume`` (returns its checkpoint, or None when it has none yet). Anything else (a
    different run, a non-run directory, resume with nothing to resume) is a ValueError:
    no existing file is ever overwritten by another run.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a run directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        if resume:
            raise ValueError(f"--resume: {str(out)!r} holds no run to resume")
        return None
    if RUN_FILE not in entries:
        raise ValueError(f"--out {str(out)!r} is not empty and is not a sparse-zoo training run "
                         f"(no {RUN_FILE}); choose a new directory")
    try:
        saved = json.loads((out / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(out / RUN_FILE)!r} cannot be read ({err}); choose a new directory") from None
    changes = _differences(saved, info)
    if changes:
        raise ValueError(f"{str(out)!r} holds a different run; these settings differ from it:\n  "
                         + "\n  ".join(changes) + "\nuse the same settings to --resume it, or choose a new --out")
    if not resume:
        raise ValueError(f"{str(out)!r} already holds this run; pass --resume to continue it "
                         "or choose a new --out")
    checkpoint = out / CHECKPOINT_FILE
    return checkpoint if checkpoint.is_file() else None


def write_run_info(out: str | Path, info: dict[str, Any]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_FILE).exists():
        atomic_write_text(out / RUN_FILE, json.dumps(info, indent=2) + "\n")
