"""Model training: checks → preprocessing (once) → one namespace per algorithm → champion."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
