"""Labelling: an LLM judge labels the train rows; agreement report; disagreement policy; metric extraction."""

from judgeforge.pipelines.labelling.pipeline import create_pipeline, metric_pipeline

__all__ = ["create_pipeline", "metric_pipeline"]
