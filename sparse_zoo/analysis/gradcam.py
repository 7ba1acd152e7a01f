"""Grad-CAM (Selvaraju et al. 2017) for any timm CNN."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import normalizer, to_float
from .spatial import get_layer


def default_target_layer(model: nn.Module) -> str:
    """The module of the last feature stage (timm's feature_info), else the last conv layer."""
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1] if isinstance(info, list) else info.get_dicts()[-1]
        if last.get("module"):
            return last["module"]
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    if not convs:
        raise ValueError("model has no conv layer: pass target_layer")
    return convs[-1]


def gradcam(model: nn.Module, images: torch.Tensor, target_layer: str | None = None,
            classes: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W) class activation maps in [0, 1] for [0, 1] or uint8 images (B, C, H, W).

    ``classes`` defaults to each image's predicted class. Each map is ReLU of the
    gradient-weighted sum of the target layer's channels, upsampled to the image
    and divided by its maximum (an all-zero map stays zero).
    """
    layer = get_layer(model, target_layer or default_target_layer(model))
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _, __, out: store.__setitem__("act", out))
    was_training = model.training
    model.eval()
    try:
        mean, std = normalizer(model)
        x = to_float(images).to(mean.device)
        with torch.enable_grad():
            logits = model((x - mean) / std)
            idx = logits.argmax(1) if classes is None else torch.as_tensor(classes, device=logits.device)
            score = logits.gather(1, idx.view(-1, 1)).sum()
            grad = torch.autograd.grad(score, store["act"])[0]  # leaves the parameters' .grad alone
    finally:
        handle.remove()
        model.train(was_training)
    act = store["act"].detach()
    weights = grad.flatten(2).mean(dim=2)[..., None, None]
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return cam / peak
