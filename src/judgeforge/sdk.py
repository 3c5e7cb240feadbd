"""The single-run-YAML door: validate the file, then run the registered composition it asks for in one Kedro session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgeforge.config import RunConfig, load_run_config
from judgeforge.config.run import RunStep
from judgeforge.config_loader import CONFIG_FOLDER, RUN_FOLDER, RUN_YAML
from judgeforge.pipeline_registry import REPORTING, composition_name
from judgeforge.project import KedroProject, open_project
from judgeforge.run_globals import RUN_GLOBALS
from judgeforge.training.distributed import is_worker_process

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


# The location each run step leaves its result at: its key among the locations run_config
# returns (judgeforge.run_globals): the final dataset's folder or URL, the judge's folder.
STEP_RESULTS: dict[RunStep, str] = {"data_generation": "final_dataset", "training": "judge"}


def run_data_generation(
    config_path: str | Path, env: str | None = None, project_path: str | Path | None = None
) -> str:
    """Run the data_generation step of a run YAML (and its pushes); return where the final dataset is."""
    return run_step(config_path, "data_generation", env, project_path)


def run_training(
    config_path: str | Path, env: str | None = None, project_path: str | Path | None = None
) -> str:
    """Run the training step of a run YAML; return the folder of the trained judge."""
    return run_step(config_path, "training", env, project_path)


def run_step(
    config_path: str | Path, step: RunStep, env: str | None, project_path: str | Path | None
) -> str:
    """Run one step of a run YAML in its project; return where its result is (step_results)."""
    config = load_run_config(config_path)
    if getattr(config, step) is None:
        raise ValueError(f"{config_path}: has no {step} section")
    project = open_run_project(config_path, project_path)
    locations = run_config(config, pipeline_name(config, [step]), project, env=env)
    return step_results(locations, [step])[step]


def step_results(locations: dict[str, Any], steps: list[RunStep]) -> dict[RunStep, str]:
    """Return where each of `steps` left its result (in the order they run), from run_config's locations."""
    return {step: locations[key] for step, key in STEP_RESULTS.items() if step in steps}


def open_run_project(
    config_path: str | Path, project_path: str | Path | None = None
) -> KedroProject:
    """Return the project a run YAML runs in, its relative paths anchored at the YAML's folder.

    Outside any Kedro project the YAML's folder is the project folder too.
    """
    return open_project(project_path, config_folder=Path(config_path).resolve().parent)


def run_parameters(config: RunConfig, project: KedroProject) -> dict[str, Any]:
    """Return the runtime params that make the run config the whole of a session's parameters."""
    # judgeforge.config_loader makes the run_yaml runtime param the whole of the parameters
    return {
        RUN_YAML: config.model_dump(mode="json", exclude_none=False),
        RUN_FOLDER: str(project.path),
        CONFIG_FOLDER: str(project.config_folder),
    }


def run_config(
    config: RunConfig, name: str, project: KedroProject, env: str | None = None
) -> dict[str, Any]:
    """Run the registered pipeline `name` in one Kedro session whose parameters are exactly the run config.

    Return where the run's files are: the `run` globals its catalog read (judgeforge.run_globals),
    each relative path of the config anchored at its folder and `data/...` under data_root.
    """
    from kedro.framework.session import KedroSession

    runner = None  # Kedro's SequentialRunner
    if config.pipeline_provider == "dask":
        from judgeforge.runners import DaskRunner

        # conf/dask persists every dataset that passes between nodes, as the runner requires
        runner, env = DaskRunner(), env or DASK_ENV
    with KedroSession.create(
        project_path=project.path,
        env=env,
        runtime_params=run_parameters(config, project),
        conf_source=str(project.conf_source),
    ) as session:
        # a single stage is registered without the report; every run of this door ends with it,
        # written by rank 0 alone under a distributed launch (docs/scale.md)
        report = [] if is_worker_process() else [REPORTING]
        session.run(pipeline_names=[name, *report], runner=runner)
        # a context of the same session: its config loader derives the same globals again
        return session.load_context().config_loader["globals"][RUN_GLOBALS]
