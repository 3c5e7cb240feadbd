"""Ingestion: seed data in; clean rows, rejects, the enhancement and holdout splits, a report out."""

from judgeforge.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
