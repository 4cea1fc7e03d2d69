"""Monitoring: label maturity, performance, concept and data drift, alerts and the weekly report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
