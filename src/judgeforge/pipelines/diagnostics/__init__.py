"""The diagnostics pipeline: how far synthetic rows sit from the real holdout."""

from judgeforge.pipelines.diagnostics.pipeline import create_pipeline

__all__ = ["create_pipeline"]
