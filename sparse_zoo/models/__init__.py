"""The zoo: sparse variants of CIFAR VGG16/ResNet-34, EfficientNet-B0, ResNet-50, DeiT-Base, 3D ResNet-50 and I3D.

Importing this package registers every ``{arch}_{method}_s{NN}`` and ``{arch}_dense``
with timm (see :mod:`.variants`).
"""
from .cifar import CifarResNet, VggCifar
from .variants import (
    ARCHS, DATASETS, METHODS, ORG_ENV, PAPER_ID, PUBLISHED, VARIANTS, Arch, Dataset, Variant, ZooInfo, dataset_tag,
    hf_org, info, run_info,
)
from .video import I3D, GlobalAvgPool3d, ResNet3d, inflate

__all__ = [
    "ARCHS", "Arch", "CifarResNet", "DATASETS", "Dataset", "GlobalAvgPool3d", "I3D", "METHODS", "ORG_ENV",
    "PAPER_ID", "PUBLISHED", "ResNet3d", "VARIANTS", "Variant", "VggCifar", "ZooInfo", "dataset_tag", "hf_org", "info",
    "inflate", "run_info",
]
