"""Project pipelines: the stages, and every composition of them a run can ask for, by name.

A composition is named by its stages joined with `+` (for example
`ingestion+synthesis+diagnostics+publishing`); `judgeforge.sdk` maps a run config to one of
these names and `kedro run --pipelines <name>` runs the same thing. `__default__` is the whole
chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import product
from typing import TYPE_CHECKING

from kedro.pipeline import Pipeline, pipeline

from judgeforge.errors import UserError
from judgeforge.pipelines import (
    diagnostics,
    ingestion,
    label_only,
    labelling,
    publishing,
    reporting,
    sft_export,
    synthesis,
    training,
)

if TYPE_CHECKING:
    from judgeforge.config import RunConfig

REPORTING = "reporting"
SFT_EXPORT = "sft_export"
# Every stage by name, in the order a composition's name lists them (labelling and label_only
# never meet). Listed here, not discovered: Kedro's discovery loads only the pipelines a run
# names, and a composition needs all of its stages.
STAGES: dict[str, Callable[[], Pipeline]] = {
    "ingestion": ingestion.create_pipeline,
    "synthesis": lambda: synthesis.create_pipeline(shards=PIPELINE_SHAPE["shards"]),
    "labelling": labelling.create_pipeline,
    "label_only": label_only.create_pipeline,
    "diagnostics": diagnostics.create_pipeline,
    "publishing": publishing.create_pipeline,
    "training": training.create_pipeline,
    REPORTING: reporting.create_pipeline,
    SFT_EXPORT: sft_export.create_pipeline,
}

# What of the run config shapes the pipelines: generation.shards, the number of synthesis shard
# nodes. The project's config loader (judgeforge.config_loader) sets it through
# `shape_pipelines` when it validates the parameters, which every door (kedro run, judgeforge
# run, kedro-viz) does before it runs or draws a pipeline; pipelines Kedro registered earlier in
# the process (`kedro run` checks the pipeline names first) are registered again.
PIPELINE_SHAPE = {"shards": 1}


def shape_pipelines(config: RunConfig) -> None:
    """Shape the registered pipelines after `config`; when the shape changes, Kedro registers them again."""
    generation = config.data_generation
    shards = generation.generation.shards if generation is not None else 1
    if shards == PIPELINE_SHAPE["shards"]:
        return
    PIPELINE_SHAPE["shards"] = shards
    # imported here: importing kedro.framework.project sets up Kedro's logging, which a plain
    # `import judgeforge` must not do
    from kedro.framework import project

    if project.PACKAGE_NAME:  # a configured project: drop the pipelines of the old shape
        project.pipelines.configure(f"{project.PACKAGE_NAME}.pipeline_registry")


# Order of the default chain: each stage reads what the one before it wrote.
DEFAULT_CHAIN = ("ingestion", "synthesis", "labelling", "diagnostics", "training")
# The data_generation step, by its switches: labelling, diagnostics, or label-only mode.
DATA_GENERATION_VARIANTS = (
    ("ingestion", "synthesis"),
    ("ingestion", "synthesis", "diagnostics"),
    ("ingestion", "synthesis", "labelling"),
    ("ingestion", "synthesis", "labelling", "diagnostics"),
    ("ingestion", "label_only"),
)
JUDGED = ("labelling", "label_only")
SEPARATOR = "+"
# Stages that, run alone, read the run's dataset under a name of their own (training_dataset,
# the final folder and its cards): in one run with a stage that writes it, only a composition
# makes them read what that stage writes.
REWIRED = ("publishing", "training")
# What the dataset folders are called when a stage writes them.
DATASETS = ("generated_dataset", "labelled_dataset")


def composition_name(stages: tuple[str, ...] | list[str]) -> str:
    """Return the registered name of the composition of `stages`."""
    return SEPARATOR.join(stages)


def compose(pipelines: dict[str, Pipeline], stages: tuple[str, ...]) -> Pipeline:
    """Return the stages as one pipeline, each reading what the stages before it wrote, then the report.

    Every composition ends with `reporting`, whose inputs are the stages' outputs by their
    catalog names, so Kedro runs it last and it shows what this run wrote. The final dataset is `labelled_dataset` when a judge ran, else `generated_dataset`; training
    trains on it and publishing publishes it with the reports this composition writes, so Kedro
    orders them after the stages that write those.
    """
    final = "labelled_dataset" if set(JUDGED) & set(stages) else "generated_dataset"
    composed = Pipeline([])
    for stage in stages:
        if stage == "publishing":
            reads = {"labelled_dataset": final}
            if set(JUDGED) & set(stages):
                reads["card_labelling_report"] = "labelling_report"
            if "diagnostics" in stages:
                reads["card_diagnostics_summary"] = "diagnostics_summary"
            composed += pipeline(pipelines[stage], inputs=reads)
        elif stage == "training":
            composed += pipeline(pipelines[stage], inputs={"training_dataset": final})
        else:
            composed += pipelines[stage]
    # the SFT exports of the final dataset (written only when output.sft_formats asks)
    composed += pipeline(pipelines[SFT_EXPORT], inputs={"labelled_dataset": final})
    return composed + pipelines[REPORTING]


class UnchainedPipelines(UserError):
    """A `--pipelines` list that names training or publishing with the stage that writes their data, in no registered composition."""


def pipelines_to_run(names: list[str], pipelines: Mapping[str, Pipeline]) -> list[str]:
    """Return the registered pipelines that `kedro run --pipelines <names, comma-separated>` runs.

    Kedro runs a comma list as the union of the named pipelines, linked only where one writes a
    dataset name another reads. Run alone, training reads `training_dataset` and publishing the
    final folder, not the names synthesis or labelling write (the same folder, by default), so
    in a plain union nothing orders them after the stage that writes their data: training would
    read the folder before it exists (a fresh project) or before this run rewrites it. A list
    that names training or publishing with such a stage therefore runs as the registered
    composition of its stages, as `a+b+c` does (the report included); every other list runs as
    Kedro runs it. Raises UnchainedPipelines when the stages make no registered composition.
    """
    if "__default__" in names:
        return names
    stages = list(dict.fromkeys(stage for name in names for stage in name.split(SEPARATOR)))
    writers = [
        stage
        for stage in stages
        if stage not in REWIRED and pipelines[stage].all_outputs() & set(DATASETS)
    ]
    rewired = [stage for stage in stages if stage in REWIRED]
    if not writers or not rewired:
        return names
    chain = sorted(
        (stage for stage in stages if stage not in (REPORTING, SFT_EXPORT)), key=list(STAGES).index
    )
    composition = composition_name(chain)
    if composition in pipelines:
        return [composition]
    raise UnchainedPipelines(
        f"--pipelines {','.join(names)}: {' and '.join(rewired)} can read what "
        f"{' and '.join(writers)} write{'s' * (len(writers) == 1)} in the same run only in a "
        f"registered composition, and "
        f"{composition} is not one (a data generation variant such as ingestion{SEPARATOR}"
        f"synthesis[{SEPARATOR}labelling][{SEPARATOR}diagnostics], then {SEPARATOR}publishing "
        f"and/or {SEPARATOR}training): name such a composition, or run {' and '.join(rewired)} "
        "in a run of its own"
    )


def register_pipelines() -> dict[str, Pipeline]:
    """Return every stage and every composition by name, with `__default__` the whole chain.

    A single stage runs without the report (`judgeforge report` or `--pipelines <stage>,reporting`
    writes it). On its own, `training` reads `training_dataset` (where training.dataset points) and
    `publishing` the final folder; in a composition they read what it writes.
    """
    pipelines = {name: create() for name, create in STAGES.items()}
    for variant, publish, train in product(DATA_GENERATION_VARIANTS, (False, True), (False, True)):
        stages = variant + ("publishing",) * publish + ("training",) * train
        pipelines[composition_name(stages)] = compose(pipelines, stages)
    pipelines["__default__"] = pipelines[composition_name(DEFAULT_CHAIN)]
    return pipelines
