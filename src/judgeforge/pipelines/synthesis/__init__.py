"""Synthesis: metric spec + seed examples + a generator LLM → validated synthetic examples."""

from judgeforge.pipelines.synthesis.pipeline import create_pipeline

__all__ = ["create_pipeline"]
