"""Label-only mode: the judge labels `csv.train_file_path`; nothing is generated."""

from judgeforge.pipelines.label_only.pipeline import create_pipeline

__all__ = ["create_pipeline"]
