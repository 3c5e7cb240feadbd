"""SFT export: the final dataset as JSON lines for other fine-tuning tools (DeepFabric's formats)."""

from judgeforge.pipelines.sft_export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
