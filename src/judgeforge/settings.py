"""Project settings: the OmegaConfigLoader and the hook that binds the run config to the catalog."""

import os

from kedro.config import OmegaConfigLoader

from judgeforge.hooks import RunConfigHook

# Kedro sends telemetry unless told not to; judgeforge runs offline by default.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

HOOKS = (RunConfigHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "catalog": ["catalog*", "catalog*/**", "**/catalog*"],
        "globals": ["globals*", "globals*/**", "**/globals*"],
    },
}
