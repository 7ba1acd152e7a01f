"""3D Common Corruptions (Kar et al. 2022)."""
