"""The training pipeline: a LoRA-fine-tuned judge, evaluated on the real test split."""

from judgeforge.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
