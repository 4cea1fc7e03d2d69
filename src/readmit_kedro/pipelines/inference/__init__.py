"""Batch inference: champion (or pinned) model → new gold encounters → dated predictions + store."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
