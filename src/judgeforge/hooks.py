"""Before any node runs: check that the run has what it needs (tokens, keys, writable folders), and
keep the processes of a distributed launch other than rank 0 from writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from judgeforge.config import RunConfig
from judgeforge.preflight import check_run
from judgeforge.training.distributed import is_worker_process


class RunConfigHook:
    """Fails a run that lacks a token, a key or a writable output folder before any node runs.

    The run config itself is validated by the project's config loader (judgeforge.config_loader),
    when the context reads the parameters.
    """

    def __init__(self) -> None:
        self._config: RunConfig | None = None
        self._config_folder = Path.cwd()
        self._credentials: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Keep the validated run config of this context for the pre-flight check."""
        self._config = context.config_loader.run_config
        # where the run config's relative paths start (judgeforge.config_loader)
        self._config_folder = context.config_loader.config_folder

    @hook_impl
    def after_catalog_created(self, conf_creds: dict[str, Any]) -> None:
        """Keep the credentials entries for the pre-flight check."""
        self._credentials = dict(conf_creds or {})

    # first among the hooks: a run that cannot start opens nothing (no MLflow run, no console stage)
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Fail before any node runs when the run lacks a token, a key or a writable output folder."""
        if self._config is not None:
            check_run(self._config, pipeline, self._credentials, self._config_folder)


class WorkerProcessHook:
    """In a process of a distributed launch other than rank 0, sends every output of the run to memory.

    Such a process runs only the training pipeline's nodes up to training (its pipeline is cut
    there, judgeforge.pipelines.training): rank 0 writes the judge, its log and everything after,
    so no two processes write the same file.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Replace each dataset the run writes by a MemoryDataset, in a process other than rank 0."""
        if not is_worker_process():
            return
        for name in pipeline.all_outputs():
            # assign: the trained judge is handed on as is, not deep-copied
            catalog[name] = MemoryDataset(copy_mode="assign")
