"""Per-layer sparsity and the FLOPs accounting of the paper's appendix A.3.2.

FLOPs are 2 x multiply-accumulates of conv and linear layers for one example (the
convention behind the paper's tables: ResNet-50 at 224 px is 8.2 GFLOPs). Sparse
FLOPs count only active (nonzero) weights. Training FLOPs per example follow RigL
(Evci et al. 2020): a training step costs 3x inference (forward, and two backward
products); gradient-regrow methods add one dense backward every ``delta_t`` steps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .masks import MASKABLE_TYPES


@dataclass
class LayerRow:
    name: str
    shape: tuple[int, ...]
    numel: int
    nonzeros: int
    masked: bool
    dense_flops: float = 0.0
    sparse_flops: float = 0.0

    @property
    def density(self) -> float:
        return self.nonzeros / self.numel if self.numel else 1.0


@dataclass
class SparsityReport:
    layers: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    nonzero_params: int = 0

    @property
    def maskable(self) -> int:
        return sum(r.numel for r in self.layers)

    @property
    def maskable_nonzeros(self) -> int:
        return sum(r.nonzeros for r in self.layers)

    @property
    def density(self) -> float:
        """Density over the maskable (conv/linear) weights: the paper's b."""
        return self.maskable_nonzeros / self.maskable if self.maskable else 1.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    @property
    def dense_flops(self) -> float:
        return sum(r.dense_flops for r in self.layers)

    @property
    def sparse_flops(self) -> float:
        return sum(r.sparse_flops for r in self.layers)

    def training_flops(self, gradient_regrow: bool = False, delta_t: int | None = None) -> float:
        """Training FLOPs per example and step (x examples x epochs for a whole run)."""
        f_s, f_d = self.sparse_flops, self.dense_flops
        if gradient_regrow and delta_t:
            return (3 * f_s * delta_t + 2 * f_s + f_d) / (delta_t + 1)
        return 3 * f_s

    def as_dict(self) -> dict:
        return {
            "layers": [dict(asdict(r), density=r.density) for r in self.layers],
            "total_params": self.total_params, "nonzero_params": self.nonzero_params,
            "maskable_params": self.maskable, "maskable_nonzeros": self.maskable_nonzeros,
            "density": self.density, "sparsity": self.sparsity,
            "dense_flops": self.dense_flops, "sparse_flops": self.sparse_flops,
        }

    def table(self) -> str:
        """A plain-text table, one row per maskable layer."""
        lines = [f"{'layer':40s} {'shape':>20s} {'density':>8s} {'nonzeros':>10s}"]
        for r in self.layers:
            lines.append(f"{r.name:40s} {str(r.shape):>20s} {r.density:8.4f} {r.nonzeros:10d}")
        lines.append(f"{'total':40s} {'':>20s} {self.density:8.4f} {self.maskable_nonzeros:10d}")
        if self.dense_flops:
            lines.append(f"inference FLOPs: dense {self.dense_flops:.4g}, sparse {self.sparse_flops:.4g}")
        return "\n".join(lines)


def _macs_per_weight(module: nn.Module, output: torch.Tensor) -> float:
    """How many times each weight element is used for one example."""
    if isinstance(module, nn.Linear):
        return output.numel() / output.shape[0] / module.out_features
    return math.prod(output.shape[2:])  # conv: once per output position


@torch.no_grad()
def report(model: nn.Module, input_size: tuple[int, ...] | None = None) -> SparsityReport:
    """Per-layer rows (name, shape, density, nonzeros) and totals; FLOPs when ``input_size`` is known.

    ``input_size`` is (C, H, W) or (C, T, H, W) without the batch; it defaults to the
    model's ``pretrained_cfg['input_size']`` when present. Nonzeros are counted in the
    weights themselves, so masked and pruned-by-hand models report alike.
    """
    out = SparsityReport()
    uses: dict[str, float] = {}
    if input_size is None:
        input_size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
    if input_size is not None:
        hooks = [m.register_forward_hook(lambda m, i, o, n=n: uses.__setitem__(n, _macs_per_weight(m, o)))
                 for n, m in model.named_modules() if isinstance(m, MASKABLE_TYPES)]
        param = next(model.parameters())
        was_training = model.training
        model.eval()
        try:
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
    for name, module in model.named_modules():
        if not isinstance(module, MASKABLE_TYPES) or module.weight is None:
            continue
        w = module.weight
        row = LayerRow(name, tuple(w.shape), w.numel(), int(torch.count_nonzero(w)),
                       isinstance(getattr(module, "weight_mask", None), torch.Tensor))
        row.dense_flops = 2.0 * uses.get(name, 0.0) * row.numel
        row.sparse_flops = 2.0 * uses.get(name, 0.0) * row.nonzeros
        out.layers.append(row)
    out.total_params = sum(p.numel() for p in model.parameters())
    out.nonzero_params = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return out
