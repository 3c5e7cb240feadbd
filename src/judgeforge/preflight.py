"""Pre-flight: what a run will need, checked before its first node, so no paid work precedes a refusal.

Checked offline, for the pipelines the run will execute (by the datasets they read and write):
every Hub push has a token, every LLM client a node will call can be built (known provider and
model, a key; each of diversity.generators too), and every output folder can be written.
`RunConfigHook.before_pipeline_run` runs these on each Kedro run; the run-YAML door runs them
once for all its stages before the first.
`judgeforge validate` runs them, and also checks that the seed files exist and can be read (a
run reads them in its first node anyway).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.pipeline import Pipeline

from judgeforge.config import RunConfig
from judgeforge.errors import UserError
from judgeforge.pipeline_registry import shape_pipelines
from judgeforge.pipelines.labelling.metric_extraction import missing_parts
from judgeforge.publishing.hub import HubError, hub_token, missing_token_message
from judgeforge.run_globals import llm_clients, project_location
from judgeforge.training.distributed import current_launch

SEED_DATASETS = {"seed_data": "csv.file_path", "label_only_train_data": "csv.train_file_path"}
# The credentials entries the catalog's clients name (conf/base/credentials_entries.yml).
HUB_CREDENTIALS = "hub"
LLM_CREDENTIALS = "llm"
# Outputs whose node pushes to the Hub, and the config switch that makes it push.
DATASET_PUBLICATION = "dataset_publication"
MODEL_PUBLICATION = "model_publication"
# What a distributed launch runs: training, and on rank 0 the run-YAML door's report (docs/scale.md).
LAUNCHED_STAGES = {"training", "reporting"}


class PreflightProblem(UserError):
    """One thing a run needs and lacks (a file, a writable folder)."""


class PreflightError(UserError):
    """Several things a run needs and lacks, one line each."""

    def __init__(self, problems: list[UserError]):
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"the run cannot start ({count}):\n{lines}")


def check_run(
    config: RunConfig,
    pipeline: Pipeline,
    credentials: Mapping[str, Any] | None,
    config_folder: Path,
) -> None:
    """Raise the one problem (or a PreflightError listing all) that would stop this pipeline's run."""
    problems = run_problems(config, pipeline, credentials or {}, config_folder)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise PreflightError(problems)


def run_problems(
    config: RunConfig, pipeline: Pipeline, credentials: Mapping[str, Any], config_folder: Path
) -> list[UserError]:
    """Return every problem that would stop this pipeline's run after paid work, each a UserError with a one-line message."""
    inputs, outputs = pipeline.inputs(), pipeline.all_outputs()
    return [
        *_hub_token_problems(config, outputs, credentials.get(HUB_CREDENTIALS)),
        *_llm_client_problems(config, inputs, credentials.get(LLM_CREDENTIALS), config_folder),
        *_output_folder_problems(config, outputs, config_folder),
        *_launch_problems(config, pipeline),
    ]


def validate_problems(
    config: RunConfig, pipeline: Pipeline, credentials: Mapping[str, Any], config_folder: Path
) -> list[UserError]:
    """Return `run_problems` and the seed files' problems: everything `judgeforge validate` can check offline."""
    return [
        *_seed_file_problems(config, pipeline.inputs(), config_folder),
        *run_problems(config, pipeline, credentials, config_folder),
    ]


def _launch_problems(config: RunConfig, pipeline: Pipeline) -> list[UserError]:
    """Under a distributed launch: the problems of running anything but training, and of pulling
    from the object store (every process would replace the same folder while the others read it)."""
    launch = current_launch()
    if launch is None:
        return []
    # imported here: the registry imports every pipeline, and this runs only under a launch
    from judgeforge.pipeline_registry import STAGES

    stage_of = {node.name: stage for stage, create in STAGES.items() for node in create().nodes}
    # the report reads what rank 0 writes: another process running it could read a half-written file
    launched = LAUNCHED_STAGES if launch.main else {"training"}
    others = {stage_of.get(node.name, node.name) for node in pipeline.nodes} - launched
    problems: list[UserError] = []
    if others:
        problems.append(
            PreflightProblem(
                f"a distributed launch ({launch.world_size} processes) runs only the training "
                f"pipeline, and this run also has {', '.join(sorted(others))}: run those in one "
                "process (the data pipelines before, the report after) and launch only "
                "`kedro run --pipelines training`"
            )
        )
    training = config.training
    pulls = [
        field
        for field, pulled in (
            (
                "training.dataset.pull_from_object_store",
                training is not None and training.dataset.pull_from_object_store,
            ),
            (
                "training.model.pull_model_from_object_store",
                training is not None and training.model.pull_model_from_object_store,
            ),
        )
        if pulled
    ]
    if pulls:
        problems.append(
            PreflightProblem(
                f"{' and '.join(pulls)}: a distributed launch does not pull from the object store "
                "(every process would replace the same folder); pull in one process first "
                "(`kedro run --pipelines training --to-nodes training.format_judge_examples`) and "
                "point training at the local copy"
            )
        )
    return problems


def _hub_token_problems(
    config: RunConfig, outputs: set[str], hub_credentials: Mapping[str, Any] | None
) -> list[UserError]:
    pushes = hub_pushes(config, outputs)
    if not pushes or hub_token(hub_credentials):
        return []
    return [HubError(missing_token_message(" and ".join(pushes)))]


def _seed_file_problems(
    config: RunConfig, inputs: set[str], config_folder: Path
) -> list[UserError]:
    generation = config.data_generation
    if generation is None or generation.source_data.dataset.source_type != "csv":
        return []
    csv = generation.source_data.dataset.csv
    paths = {"seed_data": csv.file_path, "label_only_train_data": csv.train_file_path}
    problems: list[UserError] = []
    for name, field in SEED_DATASETS.items():
        path = paths[name]
        if name not in inputs or not path or "://" in path:
            continue  # remote files are checked when read
        local = Path(project_location(path, config_folder))
        where = f"data_generation.source_data.dataset.{field} {path}"
        if not local.exists():
            problems.append(PreflightProblem(f"{where}: not found"))
        elif not local.is_file():
            problems.append(PreflightProblem(f"{where}: is a folder, not a file"))
        elif not os.access(local, os.R_OK):
            problems.append(PreflightProblem(f"{where}: cannot be read (permission denied)"))
    return problems


def _output_folder_problems(
    config: RunConfig, outputs: set[str], config_folder: Path
) -> list[UserError]:
    folders = []
    if config.data_generation is not None and outputs & {"generated_dataset", "labelled_dataset"}:
        folders.append(
            ("data_generation.output.local_path", config.data_generation.output.local_path)
        )
    if config.training is not None and "judge_model" in outputs:
        folders.append(("training.output.local_path", config.training.output.local_path))
    problems: list[UserError] = []
    for field, folder in folders:
        if "://" in folder:
            continue
        reason = _unwritable(Path(project_location(folder, config_folder)))
        if reason:
            problems.append(PreflightProblem(f"{field} {folder}: {reason}"))
    return problems


def _unwritable(folder: Path) -> str:
    """Return why files cannot be written under `folder` (made if missing), or ""."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written (permission denied)"
    return ""


def _llm_client_problems(
    config: RunConfig,
    inputs: set[str],
    llm_credentials: Mapping[str, Any] | None,
    config_folder: Path,
) -> list[UserError]:
    from judgeforge.datasets.llm_client import LLMClientDataset
    from judgeforge.llm.types import LLMConfigError

    generation = config.data_generation
    if generation is None:
        return []
    called = {
        "generator_llm": True,
        "judge_llm": generation.labelling.enabled
        or generation.labelling.label_only_mode
        or bool(missing_parts(generation.metric)),
        "embedding_client": generation.data_quality_metrics.enabled,
    }
    needed = [name for name, used in called.items() if used and name in inputs]
    settings = llm_clients(generation)
    credentials = dict(llm_credentials or {})
    clients = {
        name: LLMClientDataset(settings[name], settings["engine"], credentials=credentials)
        for name in needed
    }
    if "generator_pool" in inputs:  # diversity.generators: each one is a client of its own
        for index, generator in enumerate(settings["generators"]):
            name = f"diversity.generators[{index}] {generator['provider']}/{generator['model']}"
            clients[name] = LLMClientDataset(generator, settings["engine"], credentials=credentials)
    problems: list[UserError] = []
    seen: set[str] = set()
    for name, client in clients.items():
        try:
            client.check()
        except LLMConfigError as error:
            line = f"{name}: {error}"
            if str(error) not in seen:  # one missing key is reported once, not per client
                seen.add(str(error))
                problems.append(LLMConfigError(line))
    return problems


def hub_pushes(config: RunConfig, outputs: set[str]) -> list[str]:
    """Return what this pipeline would push to the Hub (by its outputs and the config switches)."""
    pushes = []
    generation, training = config.data_generation, config.training
    if DATASET_PUBLICATION in outputs and generation is not None and generation.output.push_to_hub:
        pushes.append("data_generation.output.push_to_hub")
    if MODEL_PUBLICATION in outputs and training is not None and training.output.push_to_hub:
        pushes.append("training.output.push_to_hub")
    return pushes


def planned_pipeline(config: RunConfig, pipeline_names: list[str]) -> Pipeline:
    """Return the registered pipelines a run of `config` will execute, as one pipeline, shaped as the run shapes them (the project must be configured)."""
    from kedro.framework.project import pipelines

    shape_pipelines(config)  # generation.shards: the run's config loader does the same
    return sum((pipelines[name] for name in pipeline_names), Pipeline([]))


def project_credentials(conf_source: Path, env: str | None, config: RunConfig) -> dict[str, Any]:
    """Return the credentials a Kedro session on `conf_source` running `config` would read ({} when there are none)."""
    from kedro.config import MissingConfigException
    from kedro.framework.project import settings

    from judgeforge.config_loader import RUN_YAML

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf_source),
        env=env,
        runtime_params={RUN_YAML: config.model_dump(mode="json", exclude_none=False)},
        **settings.CONFIG_LOADER_ARGS,
    )
    try:
        return dict(loader["credentials"])
    except MissingConfigException:
        return {}
