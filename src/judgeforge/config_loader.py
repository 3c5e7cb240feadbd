"""The project's config loader: Kedro's OmegaConfigLoader that validates the run config and hands it to the catalog."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException, OmegaConfigLoader

from judgeforge.config import RunConfig, validate_run_config
from judgeforge.pipeline_registry import shape_pipelines
from judgeforge.run_globals import DATA_FOLDER, DATA_ROOT, RUN_GLOBALS, run_globals

# The runtime param that carries a validated run YAML (judgeforge.sdk); its value is the whole
# of the parameters, so no value from conf/<env>/parameters*.yml reaches a run-YAML run.
RUN_YAML = "run_yaml"
# The runtime param naming the project folder of a run-YAML run (judgeforge.project): outside any
# Kedro project it is the run YAML's folder, and the conf lies in the installed package, not there.
RUN_FOLDER = "run_folder"
# The runtime param naming the run YAML's folder, which anchors the relative paths written in it.
CONFIG_FOLDER = "config_folder"


class RunConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader that validates the parameters once, adds the global `run` the catalog reads, and shapes the pipelines.

    The parameters are base + env + runtime params, or exactly the run YAML when one comes as
    the runtime param `run_yaml`. A bad config fails here, with every problem, before any
    catalog entry or node exists. The global `run` (judgeforge.run_globals) is derived here, not
    in a hook, so every reader of the catalog (kedro-viz runs without hooks) sees the same paths;
    likewise the pipelines get their shape (generation.shards) from here.
    """

    def __init__(
        self, conf_source: str, *args: Any, project_path: str | Path | None = None, **kwargs: Any
    ) -> None:
        super().__init__(conf_source, *args, **kwargs)
        runtime = self.runtime_params or {}
        run_folder = runtime.get(RUN_FOLDER)
        self.project_path = Path(project_path or run_folder or Path(conf_source).resolve().parent)
        # the run YAML's folder; the parameters in conf/ are relative to the project (Kedro's rule)
        self.config_folder = Path(runtime.get(CONFIG_FOLDER) or self.project_path)
        self.run_config: RunConfig | None = None
        try:
            parameters = self["parameters"]
        except MissingConfigException:
            return
        run_env = self.env or self.default_run_env
        self.run_config = validate_run_config(
            parameters, source=f"parameters (env {run_env})", folder=self.config_folder
        )
        shape_pipelines(self.run_config)
        data_root = str(self._globals.get(DATA_ROOT, DATA_FOLDER))
        self["globals"] = {
            **self._globals,
            RUN_GLOBALS: run_globals(
                self.run_config, self.project_path, data_root, self.config_folder
            ),
        }
        # the globals resolver caches what it first read; parameters may have read it already
        self._globals_oc = None

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key == "parameters" and RUN_YAML in (self.runtime_params or {}):
            # not through OmegaConf: the values are resolved already, a literal "${" in a prompt stays
            return copy.deepcopy(self.runtime_params[RUN_YAML])
        return super().__getitem__(key)
