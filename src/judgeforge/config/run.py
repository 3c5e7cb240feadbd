"""The single run config (top-level keys + data_generation + training) and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError

from judgeforge.config.data_generation import (
    DataGenerationConfig,
    StrictModel,
    cross_section_problems,
)
from judgeforge.config.labels import label_key
from judgeforge.config.problems import ConfigError, Problem, join_path, problems_from_validation_error
from judgeforge.config.training import TrainingConfig, missing_template_columns, template_placeholders

RunStep = Literal["data_generation", "training"]
PIPELINE_PROVIDERS = ("local",)
TOP_LEVEL_KEYS = ("run_steps", "pipeline_provider", "metric_name")
TRAINING_TYPE_FOR = {"binary": "boolean", "multi-class": "multi_class"}


class RunConfig(BaseModel):
    run_steps: list[RunStep] = Field(default_factory=lambda: ["data_generation", "training"])
    pipeline_provider: str = "local"
    metric_name: str = "custom"
    data_generation: DataGenerationConfig | None = None
    training: TrainingConfig | None = None


def validate_run_config(raw: Any, source: str = "config") -> RunConfig:
    """Return the validated run config, or raise ConfigError listing every problem."""
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem("(top level)", raw, "a run config must be a mapping")], source)
    problems: list[Problem] = []
    unknown = sorted(set(raw) - set(RunConfig.model_fields))
    problems += [Problem(key, raw[key], "unknown top-level key (expected run_steps, pipeline_provider, metric_name, data_generation, training)") for key in unknown]
    top = {key: raw[key] for key in TOP_LEVEL_KEYS if key in raw}
    try:
        header = RunConfig.model_validate(top)
    except ValidationError as error:
        problems += problems_from_validation_error(error, "")
        header = None
    if header is not None:
        problems += _header_problems(header)
    steps = header.run_steps if header is not None else []

    data_generation, found = _parse_section(DataGenerationConfig, raw.get("data_generation"), "data_generation", required="data_generation" in steps)
    problems += found
    training, found = _parse_section(TrainingConfig, raw.get("training"), "training", required="training" in steps)
    problems += found
    if data_generation and training:
        problems += _training_vs_generation_problems(data_generation, training)
    if training and raw.get("data_generation") is None and not training.dataset.name.strip():
        problems.append(
            Problem("training.dataset.name", training.dataset.name, "required when data_generation is not part of this config (use the path run_data_generation returned)")
        )
    if problems:
        raise ConfigError(problems, source)
    config = header.model_copy(update={"data_generation": data_generation, "training": training})
    return fill_training_dataset(config)


def fill_training_dataset(config: RunConfig) -> RunConfig:
    """Return the config with an empty training.dataset.name pointed at the generated dataset."""
    training, generation = config.training, config.data_generation
    if training is None or generation is None or training.dataset.name.strip():
        return config
    dataset = training.dataset.model_copy(
        update={"name": generation.output.dataset.repo_name, "local": True, "local_path": generation.output.local_path}
    )
    return config.model_copy(update={"training": training.model_copy(update={"dataset": dataset})})


def load_run_config(path: str | Path) -> RunConfig:
    """Return the validated run config read from a YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "(file)", "config file not found")], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), "(file)", "config file is not UTF-8 text")], str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError([Problem(f"{path}:{where}", "(yaml)", f"not valid YAML: {getattr(error, 'problem', error)}")], str(path)) from None
    return validate_run_config(raw or {}, source=str(path))


def _header_problems(header: RunConfig) -> list[Problem]:
    problems = []
    if not header.run_steps:
        problems.append(Problem("run_steps", header.run_steps, f"must name at least one of {', '.join(get_args(RunStep))}"))
    if len(set(header.run_steps)) != len(header.run_steps):
        problems.append(Problem("run_steps", header.run_steps, "steps must not repeat"))
    if header.pipeline_provider not in PIPELINE_PROVIDERS:
        problems.append(
            Problem("pipeline_provider", header.pipeline_provider, f"must be one of {', '.join(PIPELINE_PROVIDERS)} (the Kedro runner on this machine)")
        )
    if not header.metric_name.strip():
        problems.append(Problem("metric_name", header.metric_name, "must not be empty"))
    return problems


def _parse_section(model_cls: type[StrictModel], raw: Any, path: str, required: bool) -> tuple[Any, list[Problem]]:
    """Return the validated section (None when absent or broken) and every problem in it."""
    if raw is None:
        return None, ([Problem(path, raw, "required by run_steps")] if required else [])
    partial, problems = _parse_partial(model_cls, raw, path)
    if problems:
        return None, problems
    return model_cls.model_validate(raw), []


def _parse_partial(model_cls: type[StrictModel], raw: Any, path: str) -> tuple[Any, list[Problem]]:
    """Validate field by field, so one broken part does not hide the rules of the others.

    Returns a model built from the valid fields only (defaults elsewhere) and all problems,
    including the model's own rules evaluated on that partial model.
    """
    if not isinstance(raw, Mapping):
        return None, [Problem(path, raw, "must be a mapping")]
    fields = model_cls.model_fields
    problems = [
        Problem(join_path(path, key), raw[key], f"unknown field (expected one of {', '.join(fields)})")
        for key in raw
        if key not in fields
    ]
    parsed: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in raw:
            if field.is_required():
                problems.append(Problem(join_path(path, name), "(missing)", "required field is missing"))
            continue
        nested = _strict_model_in(field.annotation)
        if nested is not None and isinstance(raw[name], Mapping):
            value, found = _parse_partial(nested, raw[name], join_path(path, name))
            problems += found
            parsed[name] = value
            continue
        try:
            parsed[name] = model_cls.__pydantic_validator__.validate_assignment(
                model_cls.model_construct(), name, raw[name]
            ).__dict__[name]
        except ValidationError as error:
            problems += problems_from_validation_error(error, path)
            continue
        problems += collect_rule_problems(parsed[name], join_path(path, name))
    partial = model_cls.model_construct(**parsed)
    problems += _own_rule_problems(partial, path)
    return partial, problems


def _strict_model_in(annotation: Any) -> type[StrictModel] | None:
    candidates = get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, StrictModel):
            return candidate
    return None


def _own_rule_problems(model: BaseModel, path: str) -> list[Problem]:
    rules = getattr(model, "rule_problems", None)
    if rules is None:
        return []
    try:
        return rules(path)
    except (AttributeError, TypeError):
        # a field this rule reads failed validation and is already reported
        return []


def collect_rule_problems(value: Any, path: str) -> list[Problem]:
    """Return the rule problems of a model and of every model nested in it."""
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in collect_rule_problems(item, join_path(path, index))]
    if not isinstance(value, BaseModel):
        return []
    problems = []
    for name in type(value).model_fields:
        problems += collect_rule_problems(getattr(value, name), join_path(path, name))
    return problems + _own_rule_problems(value, path)


def _training_vs_generation_problems(generation: DataGenerationConfig, training: TrainingConfig) -> list[Problem]:
    problems = []
    expected_type = TRAINING_TYPE_FOR[generation.metric.type]
    if training.metric.type != expected_type:
        problems.append(
            Problem("training.metric.type", training.metric.type, f"must be {expected_type} because data_generation.metric.type is {generation.metric.type}")
        )
    label_keys = generation.metric.label_keys()
    if training.metric.type == "multi_class" and label_keys:
        classes = [label_key(c) for c in training.metric.classes or []]
        if sorted(classes) != sorted(label_keys):
            problems.append(
                Problem("training.metric.classes", training.metric.classes, f"must list the class label values of data_generation.metric.class_labels ({', '.join(label_keys)})")
            )
    columns = generation.source_data.dataset.columns.features
    missing = missing_template_columns(training.prompt_template, columns)
    if missing and template_placeholders(training.prompt_template):
        problems.append(
            Problem("training.prompt_template", training.prompt_template, f"placeholders {{{'}, {'.join(missing)}}} name no dataset column (columns: {', '.join(columns)})")
        )
    return problems
