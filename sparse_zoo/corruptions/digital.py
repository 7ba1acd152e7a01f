"""ImageNet-C digital corruptions (Hendrycks & Dietterich 2019)."""
