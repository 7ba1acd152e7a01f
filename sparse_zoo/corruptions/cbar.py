"""ImageNet-C-bar corruptions (Mintun et al. 2021)."""
