"""Experiment tracking with MLflow: each `kedro run` becomes one MLflow run.

On when the `tracking` extra (`pip install "judgeforge[tracking]"`, MLflow's client) is
installed, off with JUDGEFORGE_MLFLOW=0. MLflow's own API in a Kedro hook rather than the
kedro-mlflow plugin: kedro-mlflow 2.x supports Kedro 1.x but pulls the full MLflow server
stack, which pins pyarrow differently from judgeforge's other dependencies; the client alone
is all a run needs to log.

What a run logs: every parameter (flattened, `data_generation.llm.provider`), every number of
the reports the run wrote (generation, labelling, diagnostics, the judge's metrics with its
lift over the zero-shot base), and as artifacts those reports, the HTML report and the trained
judge's folder. Runs go to MLFLOW_TRACKING_URI when set, else to `mlruns/` in the project
(MLflow's file store, which MLflow 3 only opens with MLFLOW_ALLOW_FILE_STORE=true, set here for
that default), in the experiment MLFLOW_EXPERIMENT_NAME or else the run config's metric_name.
Credentials never reach MLflow: they are not parameters.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from judgeforge.console import dataset_location
from judgeforge.errors import verbose_from_environment
from judgeforge.training.distributed import is_worker_process

logger = logging.getLogger(__name__)

SWITCH_ENV = "JUDGEFORGE_MLFLOW"
LOCAL_STORE = "mlruns"
# MLflow refuses longer parameter values; prompts and rubrics are cut to this.
MAX_PARAM_CHARS = 500
# Saved outputs whose numbers become metrics, by catalog name.
METRIC_REPORTS = (
    "ingestion_report",
    "generation_report",
    "labelling_report",
    "diagnostics_summary",
    "training_metrics",
)
# Saved outputs logged as artifacts: the reports above, any HTML report, and the judge's folder.
JUDGE_FOLDER = "judge_model"


def tracking_enabled() -> bool:
    """Return whether runs are tracked: MLflow installed, not switched off, and not a process of a
    distributed launch other than rank 0 (rank 0 logs the run)."""
    switched_off = os.environ.get(SWITCH_ENV, "").lower() in ("0", "false", "off", "no")
    return (
        not switched_off
        and not is_worker_process()
        and importlib.util.find_spec("mlflow") is not None
    )


class MlflowHook:
    """Starts an MLflow run with the parameters, and logs metrics and artifacts when the run ends."""

    def __init__(self) -> None:
        self._project_path = Path.cwd()
        self._params: dict[str, Any] = {}
        self._experiment = "judgeforge"
        self._catalog: Any = None
        self._reports: dict[str, Any] = {}
        self._saved: list[str] = []
        self._run: Any = None
        self._own_store = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._project_path = Path(context.project_path)
        # the raw merged parameters (base + env + runtime): context.params would run Kedro's
        # typed validation here, before RunConfigHook reports every config problem at once
        self._params = dict(context.config_loader["parameters"])
        self._experiment = str(self._params.get("metric_name") or "judgeforge")

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Open the MLflow run and log the parameters, before any node runs."""
        if not tracking_enabled():
            return
        import mlflow

        if not verbose_from_environment():
            # MLflow logs through its own handler; its INFO lines ("Creating a new experiment")
            # would break the one-line console of a quiet run
            logging.getLogger("mlflow").setLevel(logging.WARNING)
        self._own_store = not os.environ.get("MLFLOW_TRACKING_URI")
        if self._own_store:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            # MLflow also exports this as MLFLOW_TRACKING_URI; `_close` takes it back, or the
            # next run in this process (a notebook, a test) would log into this project's store
            mlflow.set_tracking_uri((self._project_path / LOCAL_STORE).resolve().as_uri())
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or self._experiment)
        self._catalog, self._reports, self._saved = catalog, {}, []
        self._run = mlflow.start_run(
            tags={
                "kedro.pipelines": ",".join(
                    sorted(run_params.get("pipeline_names") or ["__default__"])
                ),
                "kedro.env": str(run_params.get("env") or "local"),
            }
        )
        mlflow.log_params(dict(flat_params(self._params)))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._run is None:
            return
        self._saved.append(dataset_name)
        if dataset_name in METRIC_REPORTS and isinstance(data, Mapping):
            self._reports[dataset_name] = data

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Log the reports' numbers and the artifacts, close the run and say where it is."""
        if self._run is None:
            return
        import mlflow

        for name, report in self._reports.items():
            mlflow.log_metrics(dict(flat_metrics(report, name)))
        for name in self._saved:
            location = dataset_location(self._catalog, name)
            if not location or "://" in location or not Path(location).exists():
                continue
            if name == JUDGE_FOLDER:
                mlflow.log_artifacts(location, artifact_path="judge")
            elif name in METRIC_REPORTS or location.endswith(".html"):
                mlflow.log_artifact(location, artifact_path="reports")
        run_id, store = self._run.info.run_id, mlflow.get_tracking_uri()
        self._close("FINISHED")
        logger.info("MLflow run %s logged to %s", run_id, store)

    @hook_impl
    def on_pipeline_error(self) -> None:
        if self._run is not None:
            self._close("FAILED")

    def _close(self, status: str) -> None:
        """End the MLflow run; forget the project's local store when this hook chose it."""
        import mlflow

        mlflow.end_run(status=status)
        self._run = None
        if self._own_store:
            mlflow.set_tracking_uri(None)


def flat_params(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (dotted key, value as text cut to MAX_PARAM_CHARS) for every leaf of the parameters."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flat_params(item, f"{prefix}.{key}" if prefix else str(key))
        return
    text = str(value)
    yield prefix, text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"


def flat_metrics(value: Any, prefix: str) -> Iterator[tuple[str, float]]:
    """Yield (dotted key, number) for every numeric leaf of a report (booleans and text skipped)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flat_metrics(item, f"{prefix}.{metric_key(str(key))}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, float(value)


def metric_key(key: str) -> str:
    """Return `key` with the characters MLflow refuses in metric names replaced by `_`."""
    return re.sub(r"[^\w\-. /]", "_", key)
