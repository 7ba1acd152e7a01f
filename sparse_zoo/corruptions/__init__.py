"""Image (and video) corruptions, batched in torch on CPU and GPU.

``names(suite)`` lists a suite, ``apply(images, name, severity, ...)`` corrupts a batch.
"""
from .registry import REGISTRY, SUITES, Corruption, apply, get, names, register, suites
from .rng import Stream, sample_keys

__all__ = ["REGISTRY", "SUITES", "Corruption", "Stream", "apply", "get", "names", "register",
           "sample_keys", "suites"]
