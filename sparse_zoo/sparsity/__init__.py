"""Masks, layer-wise sparsity distributions and sparsity reports."""
from .distributions import DISTRIBUTIONS, layer_counts, layer_densities, register_distribution
from .init import magnitude_scores, plan, random_scores, sparsify
from .masks import (
    MASK_SUFFIX, MASKABLE_TYPES, MaskConfig, apply_masks, check_masks, first_and_classifier, has_mask,
    mask_gradients, maskable_layers, masked_modules, masks, remove_masks, set_mask, topk_mask,
)
from .report import LayerRow, SparsityReport, report

__all__ = [
    "DISTRIBUTIONS", "LayerRow", "MASKABLE_TYPES", "MASK_SUFFIX", "MaskConfig", "SparsityReport",
    "apply_masks", "check_masks", "first_and_classifier", "has_mask", "layer_counts", "layer_densities",
    "magnitude_scores", "mask_gradients", "maskable_layers", "masked_modules", "masks", "plan",
    "random_scores", "register_distribution", "remove_masks", "report", "set_mask", "sparsify", "topk_mask",
]
