"""sparse-zoo: dynamically sparse vision models for timm, and a corruption-robustness benchmark.

Importing the package registers every zoo variant with timm's model registry
(timm has no plugin entry points, so the import is what registers).
"""
from . import models  # noqa: F401  (registers the zoo with timm)
from .version import __version__

__all__ = ["__version__"]
