"""Config models shared by the Kedro parameters and the single run YAML."""

from judgeforge.config.data_generation import DataGenerationConfig
from judgeforge.config.problems import ConfigError, Problem
from judgeforge.config.run import RunConfig, load_run_config, validate_run_config
from judgeforge.config.training import TrainingConfig

__all__ = [
    "ConfigError",
    "DataGenerationConfig",
    "Problem",
    "RunConfig",
    "TrainingConfig",
    "load_run_config",
    "validate_run_config",
]
