"""ImageNet-C noise corruptions (Hendrycks & Dietterich 2019)."""
