"""sparse-zoo: dynamically sparse vision models for timm, and a corruption-robustness benchmark.

Importing the package registers every zoo variant with timm's model registry
(timm has no plugin entry points, so the import is what registers).
"""
from . import corruptions, dst, models, sparsity  # noqa: F401  (models registers the zoo with timm)
from .version import __version__

__all__ = ["__version__", "corruptions", "dst", "models", "sparsity"]
