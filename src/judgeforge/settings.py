"""Project settings: the config loader, and the hooks for pre-flight, launch workers, report stamps, the console and tracking."""

import os
import warnings

from judgeforge.config_loader import RunConfigLoader
from judgeforge.console import ConsoleHook
from judgeforge.hooks import RunConfigHook, WorkerProcessHook
from judgeforge.run_reports import RunReportHook
from judgeforge.tracking import MlflowHook

# Kedro sends telemetry unless told not to; judgeforge runs offline by default.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# Kedro 1.7 itself calls OmegaConf's deprecated register_new_resolver on every run.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")

HOOKS = (RunConfigHook(), WorkerProcessHook(), RunReportHook(), ConsoleHook(), MlflowHook())

CONFIG_LOADER_CLASS = RunConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Parameters nest under data_generation / training, so an environment that overrides one
    # field must deep-merge into base instead of replacing the whole section.
    "merge_strategy": {"parameters": "soft"},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "catalog": ["catalog*", "catalog*/**", "**/catalog*"],
        "globals": ["globals*", "globals*/**", "**/globals*"],
    },
}
