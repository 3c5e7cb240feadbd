"""judgeforge: synthetic data, drift diagnostics and a small fine-tuned judge for a custom metric."""

from judgeforge.sdk import run_data_generation, run_training

__version__ = "0.1.0"

__all__ = ["__version__", "run_data_generation", "run_training"]
