"""The reporting pipeline: every stage's outputs that exist → one self-contained HTML report."""

from judgeforge.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
