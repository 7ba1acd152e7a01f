"""ImageNet-C blur corruptions (Hendrycks & Dietterich 2019)."""
