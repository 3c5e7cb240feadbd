"""The single-run-YAML door: validate the file, then run the registered composition it asks for in one Kedro session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgeforge.config import RunConfig, load_run_config
from judgeforge.config.run import RunStep, judge_output_dir
from judgeforge.config_loader import RUN_YAML
from judgeforge.pipeline_registry import REPORTING, composition_name

# The Kedro environment of pipeline_provider dask when the caller names none (conf/dask).
DASK_ENV = "dask"


def data_generation_pipelines(config: RunConfig) -> list[str]:
    """Return the stages that make up the data_generation step for this config."""
    generation = config.data_generation
    assert generation is not None
    if generation.labelling.label_only_mode:
        return ["ingestion", "label_only"]
    names = ["ingestion", "synthesis"]
    if generation.labelling.enabled:
        names.append("labelling")
    if generation.data_quality_metrics.enabled:
        names.append("diagnostics")
    return names


def data_generation_stages(config: RunConfig) -> list[str]:
    """Return the data_generation stages, then publishing when the dataset is pushed anywhere."""
    assert config.data_generation is not None
    output = config.data_generation.output
    pushes = output.push_to_hub or output.push_to_object_store
    return data_generation_pipelines(config) + (["publishing"] if pushes else [])


def pipeline_name(config: RunConfig, steps: list[RunStep] | None = None) -> str:
    """Return the registered composition that runs `steps` (default: the config's run_steps)."""
    steps = config.run_steps if steps is None else steps
    stages = data_generation_stages(config) if "data_generation" in steps else []
    if "training" in steps:
        stages.append("training")
    return composition_name(stages)


def run_data_generation(
    config_path: str | Path, env: str | None = None, project_path: str | Path | None = None
) -> str:
    """Run the data_generation step of a run YAML (and its pushes); return the final dataset's path."""
    config = load_run_config(config_path)
    if config.data_generation is None:
        raise ValueError(f"{config_path}: has no data_generation section")
    run_config(
        config, pipeline_name(config, ["data_generation"]), env=env, project_path=project_path
    )
    return config.data_generation.dataset_path


def run_training(
    config_path: str | Path, env: str | None = None, project_path: str | Path | None = None
) -> str:
    """Run the training step of a run YAML; return the directory of the trained judge."""
    config = load_run_config(config_path)
    if config.training is None:
        raise ValueError(f"{config_path}: has no training section")
    run_config(config, pipeline_name(config, ["training"]), env=env, project_path=project_path)
    return judge_output_dir(config)


def run_config(
    config: RunConfig, name: str, env: str | None = None, project_path: str | Path | None = None
) -> dict[str, Any]:
    """Run the registered pipeline `name` in one Kedro session whose parameters are exactly the run config."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = Path(project_path) if project_path else find_project_root()
    bootstrap_project(project)
    # judgeforge.config_loader makes the run_yaml runtime param the whole of the parameters
    runtime_params = {RUN_YAML: config.model_dump(mode="json", exclude_none=False)}
    runner = None  # Kedro's SequentialRunner
    if config.pipeline_provider == "dask":
        from judgeforge.runners import DaskRunner

        # conf/dask persists every dataset that passes between nodes, as the runner requires
        runner, env = DaskRunner(), env or DASK_ENV
    with KedroSession.create(
        project_path=project, env=env, runtime_params=runtime_params
    ) as session:
        # a single stage is registered without the report; every run of this door ends with it
        return session.run(pipeline_names=[name, REPORTING], runner=runner)


def find_project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` (default: cwd) holding a Kedro pyproject."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8"):
            return folder
    raise FileNotFoundError(
        f"no Kedro project (pyproject.toml with [tool.kedro]) at or above {start}; pass project_path"
    )
