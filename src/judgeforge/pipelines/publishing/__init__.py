"""Publishing: the final dataset and its card to the Hub and/or the object store."""

from judgeforge.pipelines.publishing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
