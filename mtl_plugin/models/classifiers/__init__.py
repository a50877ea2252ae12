"""Classifiers."""
from . import hierarchical  # noqa: F401  (registers modules)
