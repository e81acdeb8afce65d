"""Toy Φ ("phi") metrics for the omnimind-sentinel demo: small, deterministic, dependency-free."""

from .metrics import integrated_information, entropy
from .partition import bipartitions

__all__ = ["integrated_information", "entropy", "bipartitions"]
