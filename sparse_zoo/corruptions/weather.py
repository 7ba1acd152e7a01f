"""ImageNet-C weather corruptions and motion blur (Hendrycks & Dietterich 2019)."""
