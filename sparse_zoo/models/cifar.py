"""CIFAR-style VGG16 and ResNet-34: 3x3 stem, no stem max-pool, 32 px input.

Both reuse the library builders: the ResNet is timm's ``ResNet`` (BasicBlock,
[3, 4, 6, 3]) with its 7x7/2 stem and max-pool swapped for a 3x3/1 conv; the VGG
trunk is torchvision's ``make_layers`` over its configuration ``'D'`` with batch
norm, followed by timm's ``ClassifierHead`` (global pool + one linear layer) since
the ImageNet head (7x7 pool, two 4096-wide layers) makes no sense at 32 px.
``width`` multiplies every channel count (tiny models for tests and demos).
"""
from __future__ import annotations

from typing import Any

import torch
from timm.layers import ClassifierHead
from timm.models.resnet import BasicBlock, ResNet
from torch import nn
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

from ._common import scale_channels


class CifarResNet(ResNet):
    """timm ResNet with a CIFAR stem (3x3 conv, stride 1, no max-pool)."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), *, width: float = 1.0,
                 in_chans: int = 3, **kwargs: Any):
        channels = scale_channels((64, 128, 256, 512), width)
        # timm fixes the plain stem at 64 channels; its 'deep' stem outputs 2 x stem_width,
        # which lets the width scale the stem too. The stem itself is replaced below.
        stem_half = max(1, scale_channels(64, width) // 2)
        super().__init__(BasicBlock, layers, in_chans=in_chans, channels=channels,
                         stem_type="deep", stem_width=stem_half, **kwargs)
        self.conv1 = nn.Conv2d(in_chans, 2 * stem_half, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.maxpool = nn.Identity()
        for info in self.feature_info:  # the stem no longer downsamples (x4)
            info["reduction"] = max(1, info["reduction"] // 4)


class VggCifar(nn.Module):
    """VGG16-BN trunk (torchvision configuration 'D') with a global-pool linear head."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, *, width: float = 1.0,
                 global_pool: str = "avg", drop_rate: float = 0.0, config: str = "D"):
        super().__init__()
        cfg = [v if v == "M" else scale_channels(v, width) for v in vgg_cfgs[config]]
        self.features = make_layers(cfg, batch_norm=True)
        if in_chans != 3:
            first = self.features[0]
            self.features[0] = nn.Conv2d(in_chans, first.out_channels, 3, padding=1)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = cfg[-2]
        self.feature_info = []
        index, reduction, channels = 0, 1, in_chans
        for v in cfg:
            if v == "M":  # tap the ReLU in front of each pool
                self.feature_info.append(dict(num_chs=channels, reduction=reduction, module=f"features.{index - 1}"))
                reduction *= 2
                index += 1
            else:
                channels, index = v, index + 3
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
