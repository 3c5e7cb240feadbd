"""Models that ship with judgeforge."""

from judgeforge.models.embedded import embedded_model_dir

__all__ = ["embedded_model_dir"]
