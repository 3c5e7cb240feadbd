"""The project's config loader: Kedro's OmegaConfigLoader, with the run-YAML door's parameters."""

from __future__ import annotations

import copy
from typing import Any

from kedro.config import OmegaConfigLoader

# The runtime param that carries a validated run YAML (judgeforge.sdk); its value is the whole
# of the parameters, so no value from conf/<env>/parameters*.yml reaches a run-YAML run.
RUN_YAML = "run_yaml"


class RunYamlConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose parameters are exactly the run YAML when one comes as the runtime param `run_yaml`."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key == "parameters" and RUN_YAML in (self.runtime_params or {}):
            # not through OmegaConf: the values are resolved already, a literal "${" in a prompt stays
            return copy.deepcopy(self.runtime_params[RUN_YAML])
        return super().__getitem__(key)
