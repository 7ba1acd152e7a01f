"""Imports every module that registers corruptions (see ``registry._load_all``)."""
from . import blur, cbar, dcc3d, digital, noise, weather  # noqa: F401
