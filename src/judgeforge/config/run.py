"""The single run config (top-level keys + data_generation + training) and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator

from judgeforge.config.base import (
    CONFIG_FOLDER,
    FIELDS_ONLY,
    StrictModel,
    broken,
    judgeforge_field,
)
from judgeforge.config.data_generation import (
    RAG_ROLES,
    DataGenerationConfig,
    GenerationConfig,
    LabellingConfig,
    MetricConfig,
    OutputConfig,
    SourceDataset,
)
from judgeforge.config.labels import label_key
from judgeforge.config.problems import (
    UNKNOWN_FIELD,
    ConfigError,
    Problem,
    problems_from_validation_error,
)
from judgeforge.config.training import (
    TrainingConfig,
    TrainingDatasetConfig,
    TrainingMetricConfig,
    missing_template_columns,
)
from judgeforge.config.yaml_file import read_yaml_file

RunStep = Literal["data_generation", "training"]
# Where the pipelines run: the seed's `local`, and `dask` (a judgeforge addition).
PIPELINE_PROVIDERS = {
    "local": "the Kedro runner on this machine",
    "dask": "the nodes as tasks on a Dask.distributed cluster, see docs/dask.md",
}
TRAINING_TYPE_FOR = {"binary": "boolean", "multi-class": "multi_class"}
Part = TypeVar("Part", bound=BaseModel)


class RunHeader(StrictModel):
    run_steps: list[RunStep] = Field(
        default_factory=lambda: ["data_generation", "training"],
        description="The steps this config runs.",
    )
    pipeline_provider: str = Field(
        "local",
        description="Where the pipelines run: local (the Kedro runner on this machine); "
        "dask (judgeforge addition: the nodes as tasks on a Dask.distributed cluster).",
    )
    dask_scheduler_address: str | None = judgeforge_field(
        None,
        description="The Dask scheduler that pipeline_provider dask runs on (e.g. "
        "tcp://10.0.0.5:8786); unset: $DASK_SCHEDULER_ADDRESS, else a local cluster per run.",
    )
    metric_name: str = Field("custom", description="Names the run and the judge.")

    @field_validator("run_steps")
    @classmethod
    def _steps(cls, steps: list[str]) -> list[str]:
        if not steps:
            raise broken(f"must name at least one of {', '.join(get_args(RunStep))}")
        if len(set(steps)) != len(steps):
            raise broken("steps must not repeat")
        return steps

    @field_validator("pipeline_provider")
    @classmethod
    def _runner(cls, provider: str) -> str:
        if provider not in PIPELINE_PROVIDERS:
            allowed = ", ".join(f"{name} ({what})" for name, what in PIPELINE_PROVIDERS.items())
            raise broken(f"must be one of {allowed}")
        return provider

    @field_validator("metric_name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise broken("must not be empty")
        return name


class RunConfig(RunHeader):
    data_generation: DataGenerationConfig | None = None
    training: TrainingConfig | None = None

    @field_validator("data_generation", "training", mode="before")
    @classmethod
    def _a_mapping(cls, section: Any) -> Any:
        if section is not None and not isinstance(section, Mapping | BaseModel):
            raise broken("must be a mapping")
        return section

    @field_validator("data_generation", "training")
    @classmethod
    def _present_when_run(cls, section: Any, info: ValidationInfo) -> Any:
        if section is None and info.field_name in info.data.get("run_steps", ()):
            raise broken("required by run_steps")
        return section


UNKNOWN_TOP_LEVEL_KEY = f"unknown top-level key (expected {', '.join(RunConfig.model_fields)})"


def validate_run_config(
    raw: Any, source: str = "config", folder: str | Path | None = None
) -> RunConfig:
    """Return the validated run config, or raise ConfigError listing every problem.

    The files validation reads (documents, personas, tokenizer, model folder) are anchored at
    `folder` when relative; without one (a config built in Python) at the current folder.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem("(top level)", raw, "a run config must be a mapping")], source)
    config, problems = None, []
    try:
        config = RunConfig.model_validate(
            raw, context={CONFIG_FOLDER: str(folder)} if folder is not None else None
        )
    except ValidationError as error:
        problems = [
            # an unknown key at the top is not a typo inside a section: name the keys there are
            Problem(p.path, p.value, UNKNOWN_TOP_LEVEL_KEY)
            if p.path in raw and p.rule == UNKNOWN_FIELD
            else p
            for p in problems_from_validation_error(error)
        ]
    problems += cross_section_problems(raw)
    if problems or config is None:
        raise ConfigError(problems, source)
    return fill_training_dataset(config)


def fill_training_dataset(config: RunConfig) -> RunConfig:
    """Return the config with an empty training.dataset.name pointed at the generated dataset."""
    training, generation = config.training, config.data_generation
    if training is None or generation is None or training.dataset.name.strip():
        return config
    dataset = training.dataset.model_copy(
        update={
            "name": generation.output.dataset.repo_name,
            "local": True,
            "local_path": generation.output.local_path,
        }
    )
    return config.model_copy(update={"training": training.model_copy(update={"dataset": dataset})})


def judge_output_dir(config: RunConfig) -> str:
    """Return the folder of the trained judge: output.local_path/output.model_name (or <metric_name>-judge)."""
    assert config.training is not None
    output = config.training.output
    return f"{output.local_path.rstrip('/')}/{output.model_name or f'{config.metric_name}-judge'}"


def load_run_config(path: str | Path) -> RunConfig:
    """Return the validated run config read from a YAML file (YAML 1.2, no repeated keys).

    Its relative paths are the YAML's folder's: the files validation reads are anchored there
    now, seed files and outputs when the run starts (judgeforge.run_globals).
    """
    return validate_run_config(
        read_yaml_file(path), source=str(path), folder=Path(path).resolve().parent
    )


def _part(raw: Mapping, model: type[Part], *keys: str) -> Part | None:
    """Return the part of a raw config at `keys` with valid fields (a default when it is left out).

    None when its section is absent or a field of the part is broken: the rules that read it
    are then skipped, as its own problem is already reported.
    """
    node: Any = raw.get(keys[0])
    if node is None:
        return None
    for key in keys[1:]:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key, {})
    try:
        return model.model_validate(node, context=FIELDS_ONLY)
    except ValidationError:
        return None


def cross_section_problems(raw: Mapping) -> list[Problem]:
    """Return the broken rules that tie parts of a config together, each run when its parts validate."""
    metric = _part(raw, MetricConfig, "data_generation", "metric")
    dataset = _part(raw, SourceDataset, "data_generation", "source_data", "dataset")
    generation = _part(raw, GenerationConfig, "data_generation", "generation")
    labelling = _part(raw, LabellingConfig, "data_generation", "labelling")
    training_metric = _part(raw, TrainingMetricConfig, "training", "metric")
    training = _part(raw, TrainingConfig, "training")
    problems = []
    if metric and dataset:
        problems += _feature_count_problems(metric.input_format, dataset.columns.features)
    if metric and generation:
        problems += _generation_problems(metric, generation)
    if dataset and labelling:
        problems += _label_source_problems(dataset, labelling)
    if metric and labelling and labelling.enabled and not metric.has_source_prompt:
        problems.append(
            Problem(
                "data_generation.metric.llmaj_source_prompt",
                metric.llmaj_source_prompt,
                "required when labelling.enabled is true",
            )
        )
    if metric and training_metric:
        problems += _training_metric_problems(metric, training_metric)
    if dataset and training:
        problems += _template_problems(training.prompt_template, dataset.columns.features)
    output = _part(raw, OutputConfig, "data_generation", "output")
    if output and output.sft_formats:
        problems += _export_problems(output, dataset, raw.get("training"), training)
    if dataset and generation:
        problems += [
            Problem(
                f"data_generation.generation.postprocessing.{name}",
                name,
                f"names no feature column (features: {', '.join(dataset.columns.features)})",
            )
            for name in generation.postprocessing
            if name not in dataset.columns.features
        ]
    training_dataset = _part(raw, TrainingDatasetConfig, "training", "dataset")
    if (
        raw.get("data_generation") is None
        and training_dataset
        and not training_dataset.name.strip()
    ):
        problems.append(
            Problem(
                "training.dataset.name",
                training_dataset.name,
                "required when data_generation is not part of this config (use the path run_data_generation returned)",
            )
        )
    return problems


def _feature_count_problems(input_format: str, features: list[str]) -> list[Problem]:
    path = "data_generation.source_data.dataset.columns.features"
    if input_format == "single" and len(features) != 1:
        return [Problem(path, features, "input_format single takes exactly 1 feature column")]
    if input_format == "tuple" and len(features) < 2:
        return [Problem(path, features, "input_format tuple takes 2 or more feature columns")]
    if input_format == "rag" and len(features) != len(RAG_ROLES):
        return [
            Problem(
                path,
                features,
                "input_format rag takes exactly 3 feature columns: query, context, response (in that order)",
            )
        ]
    return []


def _generation_problems(metric: MetricConfig, generation: GenerationConfig) -> list[Problem]:
    path = "data_generation.generation"
    problems = []
    if metric.input_format == "rag" and generation.context_examples != 1:
        problems.append(
            Problem(
                f"{path}.context_examples",
                generation.context_examples,
                "must be 1 when metric.input_format is rag",
            )
        )
    if metric.class_labels:
        keys, names = metric.label_keys(), {c.name for c in metric.class_labels}
        problems += [
            Problem(
                f"{path}.label_distribution.{key}",
                key,
                f"keys must be class labels ({', '.join(keys)}) or class names",
            )
            for key in generation.label_distribution
            if label_key(key) not in keys and key not in names
        ]
    return problems


def _label_source_problems(dataset: SourceDataset, labelling: LabellingConfig) -> list[Problem]:
    path = "data_generation.source_data.dataset"
    if not labelling.label_only_mode:
        if dataset.columns.label:
            return []
        return [
            Problem(
                f"{path}.columns.label",
                dataset.columns.label,
                "required unless labelling.label_only_mode is true",
            )
        ]
    if not dataset.csv.train_file_path.strip():
        return [
            Problem(
                f"{path}.csv.train_file_path",
                dataset.csv.train_file_path,
                "required when labelling.label_only_mode is true",
            )
        ]
    return []


def _training_metric_problems(
    generation: MetricConfig, training: TrainingMetricConfig
) -> list[Problem]:
    problems = []
    expected_type = TRAINING_TYPE_FOR[generation.type]
    if training.type != expected_type:
        problems.append(
            Problem(
                "training.metric.type",
                training.type,
                f"must be {expected_type} because data_generation.metric.type is {generation.type}",
            )
        )
    label_keys = generation.label_keys()
    if training.type == "multi_class" and label_keys:
        classes = [label_key(c) for c in training.classes or []]
        if sorted(classes) != sorted(label_keys):
            problems.append(
                Problem(
                    "training.metric.classes",
                    training.classes,
                    f"must list the class label values of data_generation.metric.class_labels ({', '.join(label_keys)})",
                )
            )
    return problems


def _export_problems(
    output: OutputConfig,
    dataset: SourceDataset | None,
    raw_training: Any,
    training: TrainingConfig | None,
) -> list[Problem]:
    """Return why the SFT exports cannot be built: no judge prompt, or a split or column the generated dataset lacks."""
    path, formats = "data_generation.output.sft_formats", ", ".join(output.sft_formats)
    if raw_training is None:
        rule = "needs the judge's prompt: add a training section with prompt_template"
        return [Problem(path, output.sft_formats, rule)]
    if training is None or dataset is None:
        return []  # their own problems are reported
    splits = {output.dataset.splits.train, output.dataset.splits.test}
    columns = [*dataset.columns.features, *filter(None, [dataset.columns.label])]
    wanted = {
        "training.dataset.split": training.dataset.split,
        "training.dataset.test_split_name": training.dataset.test_split_name,
    }
    problems = [
        Problem(
            path,
            output.sft_formats,
            f"{formats} need split {split!r} ({field}), which the "
            f"generated dataset lacks (splits: {', '.join(sorted(splits))})",
        )
        for field, split in wanted.items()
        if split not in splits
    ]
    missing: dict[str, str] = {}  # column → the first field naming it
    for field in ("train_label_column", "test_label_column"):
        column = getattr(training.dataset, field)
        if column not in columns:
            missing.setdefault(column, f"training.dataset.{field}")
    problems += [
        Problem(
            path,
            output.sft_formats,
            f"{formats} need column {column!r} ({field}), which the "
            f"generated dataset lacks (columns: {', '.join(columns)})",
        )
        for column, field in missing.items()
    ]
    return problems


def _template_problems(template: str, columns: list[str]) -> list[Problem]:
    missing = missing_template_columns(template, columns)
    if not missing:
        return []
    return [
        Problem(
            "training.prompt_template",
            template,
            f"placeholders {{{'}, {'.join(missing)}}} name no dataset column (columns: {', '.join(columns)})",
        )
    ]
