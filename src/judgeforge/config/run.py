"""The single run config (top-level keys + data_generation + training) and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationError

from judgeforge.config.data_generation import (
    DataGenerationConfig,
    StrictModel,
)
from judgeforge.config.labels import label_key
from judgeforge.config.problems import (
    ConfigError,
    Problem,
    join_path,
    problems_from_validation_error,
)
from judgeforge.config.training import TrainingConfig, missing_template_columns
from judgeforge.config.yaml_file import read_yaml_file

RunStep = Literal["data_generation", "training"]
PIPELINE_PROVIDERS = ("local",)
TOP_LEVEL_KEYS = ("run_steps", "pipeline_provider", "metric_name")
TRAINING_TYPE_FOR = {"binary": "boolean", "multi-class": "multi_class"}


class RunHeader(StrictModel):
    run_steps: list[RunStep] = Field(default_factory=lambda: ["data_generation", "training"])
    pipeline_provider: str = "local"
    metric_name: str = "custom"

    def rule_problems(self, path: str) -> list[Problem]:
        """Return every broken top-level rule."""
        return _header_problems(self)


class RunConfig(RunHeader):
    data_generation: DataGenerationConfig | None = None
    training: TrainingConfig | None = None


SECTIONS: dict[str, type[StrictModel]] = {"data_generation": DataGenerationConfig, "training": TrainingConfig}


def validate_run_config(raw: Any, source: str = "config") -> RunConfig:
    """Return the validated run config, or raise ConfigError listing every problem."""
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem("(top level)", raw, "a run config must be a mapping")], source)
    problems = [
        Problem(key, raw[key], "unknown top-level key (expected run_steps, pipeline_provider, metric_name, data_generation, training)")
        for key in sorted(set(raw) - set(RunConfig.model_fields))
    ]
    header, found, failed = _parse_partial(RunHeader, {key: raw[key] for key in TOP_LEVEL_KEYS if key in raw}, "")
    problems += found
    steps = getattr(header, "run_steps", [])
    sections: dict[str, Any] = {}
    for name, model_cls in SECTIONS.items():
        if raw.get(name) is None:
            if name in steps:
                problems.append(Problem(name, None, "required by run_steps"))
            continue
        sections[name], found, failed_here = _parse_partial(model_cls, raw[name], name)
        problems += found
        failed |= failed_here
    if "data_generation" in sections and "training" in sections:
        found = _rules_or_nothing(lambda: _training_vs_generation_problems(sections["data_generation"], sections["training"]))
        problems += _outside(found, failed)
    training = sections.get("training")
    if training is not None and "data_generation" not in sections and not getattr(getattr(training, "dataset", None), "name", "x").strip():
        problems.append(
            Problem("training.dataset.name", training.dataset.name, "required when data_generation is not part of this config (use the path run_data_generation returned)")
        )
    if problems:
        raise ConfigError(problems, source)
    config = RunConfig.model_validate({key: raw[key] for key in RunConfig.model_fields if key in raw})
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


def judge_output_dir(config: RunConfig) -> str:
    """Return the folder of the trained judge: output.local_path/output.model_name (or <metric_name>-judge)."""
    assert config.training is not None
    output = config.training.output
    return f"{output.local_path.rstrip('/')}/{output.model_name or f'{config.metric_name}-judge'}"


def load_run_config(path: str | Path) -> RunConfig:
    """Return the validated run config read from a YAML file (YAML 1.2, no repeated keys)."""
    return validate_run_config(read_yaml_file(path), source=str(path))


def _header_problems(header: RunHeader) -> list[Problem]:
    # getattr: a key that failed its type check is absent here and already reported
    problems = []
    steps = getattr(header, "run_steps", None)
    if steps is not None and not steps:
        problems.append(Problem("run_steps", steps, f"must name at least one of {', '.join(get_args(RunStep))}"))
    if steps and len(set(steps)) != len(steps):
        problems.append(Problem("run_steps", steps, "steps must not repeat"))
    provider = getattr(header, "pipeline_provider", None)
    if provider is not None and provider not in PIPELINE_PROVIDERS:
        problems.append(
            Problem("pipeline_provider", provider, f"must be one of {', '.join(PIPELINE_PROVIDERS)} (the Kedro runner on this machine)")
        )
    metric_name = getattr(header, "metric_name", None)
    if metric_name is not None and not metric_name.strip():
        problems.append(Problem("metric_name", metric_name, "must not be empty"))
    return problems


def _parse_partial(model_cls: type[StrictModel], raw: Any, path: str) -> tuple[Any, list[Problem], set[str]]:
    """Validate field by field, so one broken part does not hide the rules of the others.

    Returns a model holding only the valid fields (reading a broken one raises AttributeError,
    which skips the rules that need it), every problem, and the paths of the broken fields.
    """
    if not isinstance(raw, Mapping):
        return None, [Problem(path, raw, "must be a mapping")], {path}
    fields = model_cls.model_fields
    problems = [
        Problem(join_path(path, key), raw[key], f"unknown field (expected one of {', '.join(fields)})")
        for key in raw
        if key not in fields
    ]
    failed: set[str] = set()
    parsed: dict[str, Any] = {}
    for name, field in fields.items():
        field_path = join_path(path, name)
        if name not in raw:
            if field.is_required():
                problems.append(Problem(field_path, "(missing)", "required field is missing"))
                failed.add(field_path)
            continue
        nested = _strict_model_in(field.annotation)
        if nested is not None and isinstance(raw[name], Mapping):
            parsed[name], found, failed_below = _parse_partial(nested, raw[name], field_path)
            problems += found
            failed |= failed_below
            continue
        try:
            parsed[name] = model_cls.__pydantic_validator__.validate_assignment(
                model_cls.model_construct(), name, raw[name]
            ).__dict__[name]
        except ValidationError as error:
            problems += problems_from_validation_error(error, path)
            failed.add(field_path)
            continue
        problems += collect_rule_problems(parsed[name], field_path)
    partial = model_cls.model_construct(**parsed)
    for name in fields:
        if join_path(path, name) in failed or (name not in raw and fields[name].is_required()):
            partial.__dict__.pop(name, None)
    problems += _outside(_rules_or_nothing(lambda: partial.rule_problems(path)) if hasattr(partial, "rule_problems") else [], failed)
    return partial, problems, failed


def _outside(problems: list[Problem], failed: set[str]) -> list[Problem]:
    """Return the problems that are not about a field already reported as broken."""
    return [p for p in problems if not any(p.path == f or p.path.startswith((f"{f}.", f"{f}[")) for f in failed)]


def _rules_or_nothing(rules: Any) -> list[Problem]:
    try:
        return rules()
    except (AttributeError, TypeError, KeyError):
        # a field this rule reads failed validation and is already reported
        return []


def _strict_model_in(annotation: Any) -> type[StrictModel] | None:
    candidates = get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, StrictModel):
            return candidate
    return None


def collect_rule_problems(value: Any, path: str) -> list[Problem]:
    """Return the rule problems of a model and of every model nested in it."""
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in collect_rule_problems(item, join_path(path, index))]
    if not isinstance(value, BaseModel):
        return []
    problems = []
    for name in type(value).model_fields:
        problems += collect_rule_problems(getattr(value, name), join_path(path, name))
    own_rules = getattr(value, "rule_problems", None)
    return problems + (_rules_or_nothing(lambda: own_rules(path)) if own_rules else [])


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
    try:
        missing = missing_template_columns(training.prompt_template, columns)
    except ValueError:
        missing = []  # an unparseable template is reported by the training section's own rule
    if missing:
        problems.append(
            Problem("training.prompt_template", training.prompt_template, f"placeholders {{{'}, {'.join(missing)}}} name no dataset column (columns: {', '.join(columns)})")
        )
    return problems
