"""PySpark medallion: landing extracts → bronze → silver (+ quarantine) → gold feature and label stores."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
