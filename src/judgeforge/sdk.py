"""The single-run-YAML door: validate the file, then run the same Kedro pipelines on it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from judgeforge.config import RunConfig, load_run_config
from judgeforge.config.run import judge_output_dir

PARAMETER_FILES = "parameters*.yml"


def data_generation_pipelines(config: RunConfig) -> list[str]:
    """Return the pipelines that make up the data_generation step for this config."""
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


def data_generation_stages(config: RunConfig) -> list[list[str]]:
    """Return the data_generation stage, then a publishing stage when the dataset is pushed anywhere."""
    assert config.data_generation is not None
    output = config.data_generation.output
    pushes = output.push_to_hub or output.push_to_object_store
    return [data_generation_pipelines(config)] + ([["publishing"]] if pushes else [])


def stages_for_steps(config: RunConfig) -> list[list[str]]:
    """Return the pipelines of each step that `run_steps` asks for, one stage per step (two when publishing).

    Stages run one after another: publishing and training read the dataset that data_generation
    wrote, a dependency Kedro cannot see when they are separate pipelines.
    """
    stages: list[list[str]] = []
    if "data_generation" in config.run_steps:
        stages.extend(data_generation_stages(config))
    if "training" in config.run_steps:
        stages.append(["training"])
    return stages


def run_data_generation(config_path: str | Path, env: str | None = None, project_path: str | Path | None = None) -> str:
    """Run the data_generation step of a run YAML (and its pushes); return the final dataset's path."""
    config = load_run_config(config_path)
    if config.data_generation is None:
        raise ValueError(f"{config_path}: has no data_generation section")
    run_config(config, data_generation_stages(config), env=env, project_path=project_path)
    return config.data_generation.dataset_path


def run_training(config_path: str | Path, env: str | None = None, project_path: str | Path | None = None) -> str:
    """Run the training step of a run YAML; return the directory of the trained judge."""
    config = load_run_config(config_path)
    if config.training is None:
        raise ValueError(f"{config_path}: has no training section")
    run_config(config, [["training"]], env=env, project_path=project_path)
    return judge_output_dir(config)


def run_config(
    config: RunConfig, stages: list[list[str]], env: str | None = None, project_path: str | Path | None = None
) -> list[dict[str, Any]]:
    """Run each stage's pipelines in turn, with the run config's values as the only parameters."""
    from kedro.framework.project import settings
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from judgeforge.preflight import check_run, planned_pipeline, project_credentials

    project = Path(project_path) if project_path else find_project_root()
    bootstrap_project(project)
    results = []
    with _conf_with_parameters(project / settings.CONF_SOURCE, config) as conf:
        # every stage's credentials and folders, before the first stage's paid work
        check_run(config, planned_pipeline([name for stage in stages for name in stage]), project_credentials(conf, env), project)
        for pipeline_names in stages:
            with KedroSession.create(project_path=project, env=env, conf_source=str(conf)) as session:
                results.append(session.run(pipeline_names=pipeline_names))
    return results


@contextmanager
def _conf_with_parameters(conf_source: Path, config: RunConfig) -> Iterator[Path]:
    """Yield a copy of the project's conf whose parameters are exactly the run config.

    Kedro merges runtime params into the environment's parameters; a copy with the parameter
    files replaced guarantees no value from conf/base leaks into a run YAML's run.
    """
    with tempfile.TemporaryDirectory(prefix="judgeforge-conf-") as tmp:
        conf = Path(tmp) / "conf"
        shutil.copytree(conf_source, conf, ignore=shutil.ignore_patterns(PARAMETER_FILES))
        (conf / "base").mkdir(exist_ok=True)
        parameters = _escape_interpolations(config.model_dump(mode="json", exclude_none=False))
        (conf / "base" / "parameters.yml").write_text(yaml.safe_dump(parameters, sort_keys=False), encoding="utf-8")
        yield conf


def _escape_interpolations(value: Any) -> Any:
    # values are already resolved; a literal "${" left in a prompt must not reach OmegaConf
    if isinstance(value, dict):
        return {key: _escape_interpolations(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape_interpolations(item) for item in value]
    return value.replace("${", "\\${") if isinstance(value, str) else value


def find_project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` (default: cwd) holding a Kedro pyproject."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8"):
            return folder
    raise FileNotFoundError(f"no Kedro project (pyproject.toml with [tool.kedro]) at or above {start}; pass project_path")
