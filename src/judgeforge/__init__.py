"""judgeforge: synthetic data, drift diagnostics and a small fine-tuned judge for a custom metric."""

from judgeforge.preview import preview_generation
from judgeforge.sdk import run_data_generation, run_training

__version__ = "0.1.0"

__all__ = ["__version__", "preview_generation", "run_data_generation", "run_training"]
