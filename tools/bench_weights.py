"""Bool vs bit-packed masks in model.safetensors: file size and load time, side by side.

    python tools/bench_weights.py [--model resnet34_cifar_rigl_s50] [--repeats 5]

Writes the same sparse model twice, masks as safetensors BOOL (the format of
sparse_zoo.weights) and as np.packbits uint8 (+ unpacking on load), and prints sizes
and the median load time of each, with their ratios.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
from safetensors.torch import load_file, save_file

import sparse_zoo  # noqa: F401
from sparse_zoo import weights
from _timing import median_time  # tools/ is on sys.path when the script runs

MASK = ".weight_mask"


def pack(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.packbits(v.numpy().reshape(-1))) if k.endswith(MASK) else v
            for k, v in state.items()}


def unpack(state: dict[str, torch.Tensor], shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    out = dict(state)
    for k, shape in shapes.items():
        bits = np.unpackbits(state[k].numpy(), count=int(np.prod(shape)))
        out[k] = torch.from_numpy(bits.astype(bool)).reshape(shape)
    return out




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet34_cifar_rigl_s50")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = timm.create_model(args.model)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    shapes = {k: v.shape for k, v in state.items() if k.endswith(MASK)}
    with tempfile.TemporaryDirectory() as tmp:
        as_bool = weights.save(model, Path(tmp) / "bool.safetensors")
        packed = Path(tmp) / "packed.safetensors"
        save_file(pack(state), str(packed))
        assert all(torch.equal(a, state[k]) for k, a in unpack(load_file(str(packed)), shapes).items())
        t_bool = median_time(lambda: load_file(str(as_bool)), args.repeats)
        t_packed = median_time(lambda: unpack(load_file(str(packed)), shapes), args.repeats)
        s_bool, s_packed = as_bool.stat().st_size, packed.stat().st_size
    print(f"{args.model}: {sum(v.numel() for v in shapes.values()):,} mask elements")
    print(f"file size: bool {s_bool / 1e6:.2f} MB, packed {s_packed / 1e6:.2f} MB, packed/bool {s_packed / s_bool:.3f}")
    print(f"load time (median of {args.repeats}): bool {t_bool * 1e3:.1f} ms, packed+unpack {t_packed * 1e3:.1f} ms, "
          f"packed/bool {t_packed / t_bool:.2f}")


if __name__ == "__main__":
    main()
