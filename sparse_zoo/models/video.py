"""Video models taking clips shaped (B, C, T, H, W): 3D ResNet-50 and I3D.

Neither timm nor torchvision has them, so they live here, with timm's model API
(``forward_features``/``forward_head``/``reset_classifier``/``feature_info``):

* ``ResNet3d`` is timm's own 2D ``ResNet`` (Bottleneck, [3, 4, 6, 3]) inflated to 3D
  as in Hara et al. (2018): every k x k conv/pool becomes k x k x k with the same
  stride in time, except the 7x7 stem, which keeps stride 1 in time. The 2D
  initialisation is carried over I3D-style (kernels repeated over time / k).
* ``I3D`` is Inflated Inception-v1 (Carreira & Zisserman 2017) written directly in
  3D from the paper's layer table (branch 2 uses 3x3x3 like the reference code),
  with symmetric ``k // 2`` padding instead of TensorFlow's 'SAME'.

``width`` multiplies every channel count (tiny models for tests and demos).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from timm.models.resnet import Bottleneck, ResNet
from torch import nn

from ._common import scale_channels

_INFLATE_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d)


def _triple(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else v[0]


def _inflate_one(m: nn.Module, time_stride: int | None) -> nn.Module:
    """The 3D counterpart of one 2D conv / norm / pool layer (square kernels only)."""
    if isinstance(m, nn.BatchNorm2d):
        new = nn.BatchNorm3d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
        new.load_state_dict(m.state_dict())
        return new
    k, s, p = _triple(m.kernel_size), _triple(m.stride), _triple(m.padding)
    st = s if time_stride is None else time_stride
    if isinstance(m, nn.Conv2d):
        new = nn.Conv3d(m.in_channels, m.out_channels, k, stride=(st, s, s), padding=p,
                        dilation=_triple(m.dilation), groups=m.groups, bias=m.bias is not None)
        with torch.no_grad():
            new.weight.copy_(m.weight.unsqueeze(2).repeat(1, 1, k, 1, 1) / k)
            if m.bias is not None:
                new.bias.copy_(m.bias)
        return new
    if isinstance(m, nn.MaxPool2d):
        return nn.MaxPool3d(k, stride=(st, s, s), padding=p, ceil_mode=m.ceil_mode)
    return nn.AvgPool3d(k, stride=(st, s, s), padding=p, ceil_mode=m.ceil_mode)


def inflate(model: nn.Module, time_strides: Mapping[str, int] | None = None) -> nn.Module:
    """Replace every 2D conv, batch norm and pool of ``model`` by its 3D version, in place.

    ``time_strides`` maps module names to a temporal stride that differs from the
    spatial one (e.g. ``{'conv1': 1}``).
    """
    time_strides = dict(time_strides or {})
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, _INFLATE_TYPES):
                setattr(module, child_name, _inflate_one(child, time_strides.pop(full, None)))
    if time_strides:
        raise ValueError(f"no 2D layer named {sorted(time_strides)} to inflate")
    return model


class GlobalAvgPool3d(nn.Module):
    """Average over (T, H, W) and flatten; the 3D stand-in for timm's SelectAdaptivePool2d."""

    def __init__(self, pool_type: str = "avg"):
        super().__init__()
        if pool_type not in ("avg", ""):
            raise ValueError(f"video models support global_pool 'avg' or '' (none), got {pool_type!r}")
        self.pool_type = pool_type

    def is_identity(self) -> bool:
        return self.pool_type == ""

    def feat_mult(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "":
            return x
        return x.mean(dim=(2, 3, 4))


def _linear_head(num_features: int, num_classes: int) -> nn.Module:
    return nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()


class ResNet3d(ResNet):
    """3D ResNet-50 (Hara et al. 2018): timm's bottleneck ResNet inflated to 3D."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), *, width: float = 1.0,
                 global_pool: str = "avg", **kwargs: Any):
        channels = scale_channels((64, 128, 256, 512), width)
        stem_half = max(1, scale_channels(64, width) // 2)
        # timm's plain stem is fixed at 64 channels; build it 'deep' (2 x stem_width out)
        # to scale it, then put back a single 7x7 conv of that width.
        super().__init__(Bottleneck, layers, channels=channels, stem_type="deep", stem_width=stem_half,
                         global_pool="avg", **kwargs)
        self.conv1 = nn.Conv2d(self.in_chans, 2 * stem_half, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        inflate(self, {"conv1": 1})
        self.global_pool = GlobalAvgPool3d(global_pool)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = GlobalAvgPool3d(global_pool)
        self.fc = _linear_head(self.num_features, num_classes)


class Unit3d(nn.Sequential):
    """Conv3d + BatchNorm3d + ReLU."""

    def __init__(self, in_chs: int, out_chs: int, kernel: int = 1, stride: int = 1):
        super().__init__(
            nn.Conv3d(in_chs, out_chs, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm3d(out_chs, eps=1e-3, momentum=0.01),
            nn.ReLU(inplace=True),
        )


class InceptionBlock3d(nn.Module):
    """Inception-v1 mixed block: 1x1 | 1x1-3x3 | 1x1-3x3 | 3x3 pool-1x1, concatenated."""

    def __init__(self, in_chs: int, chs: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1r, b1, b2r, b2, b3 = chs
        self.branch0 = Unit3d(in_chs, b0)
        self.branch1 = nn.Sequential(Unit3d(in_chs, b1r), Unit3d(b1r, b1, 3))
        self.branch2 = nn.Sequential(Unit3d(in_chs, b2r), Unit3d(b2r, b2, 3))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), Unit3d(in_chs, b3))
        self.out_chs = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


# (name, channels) of I3D's mixed blocks; None marks the pool in front of a stage.
_I3D_MIXED = (
    ("mixed_3b", (64, 96, 128, 16, 32, 32)), ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("pool_4a", None),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)), ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)), ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("pool_5a", None),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)), ("mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class I3D(nn.Module):
    """Inflated Inception-v1 (Carreira & Zisserman 2017) for (B, C, T, H, W) clips."""

    def __init__(self, num_classes: int = 400, in_chans: int = 3, *, width: float = 1.0,
                 global_pool: str = "avg", drop_rate: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        c64, c192 = scale_channels((64, 192), width)
        layers: dict[str, nn.Module] = {
            "conv_1a": Unit3d(in_chans, c64, 7, stride=2),
            "pool_2a": nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            "conv_2b": Unit3d(c64, c64),
            "conv_2c": Unit3d(c64, c192, 3),
            "pool_3a": nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        }
        self.feature_info = [dict(num_chs=c64, reduction=2, module="features.conv_1a"),
                             dict(num_chs=c192, reduction=4, module="features.conv_2c")]
        chs, reduction, prev = c192, 8, ""
        for name, spec in _I3D_MIXED:
            if spec is None:
                k = 3 if name == "pool_4a" else 2
                layers[name] = nn.MaxPool3d(k, stride=2, padding=k // 2 if k == 3 else 0, ceil_mode=True)
                self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{prev}"))
                reduction *= 2
                continue
            block = InceptionBlock3d(chs, scale_channels(spec, width))
            layers[name] = block
            chs, prev = block.out_chs, name
        self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{prev}"))
        self.features = nn.Sequential(OrderedDict(layers))
        self.num_features = self.head_hidden_size = chs
        self.global_pool = GlobalAvgPool3d(global_pool)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = _linear_head(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = GlobalAvgPool3d(global_pool)
        self.fc = _linear_head(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
