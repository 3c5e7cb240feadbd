"""Derive a metric's description, classes and rubrics from its judge prompt, with structured output.

Only what the config leaves out is derived: a given description, class list or rubric is kept.
The answer is validated twice — by `DerivedMetric` (shape) and by `MetricConfig` and its rules
(two classes for binary, unique labels, non-empty rubrics) — and asked again with an attempt
note when it fails, at most `labelling.invalid_answer_retries` times; then the run stops with
the reason, never with a guessed metric.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeforge.config.data_generation import MetricConfig
from judgeforge.config.labels import label_key
from judgeforge.config.problems import problems_from_validation_error
from judgeforge.errors import UserError
from judgeforge.llm import LLMRequest
from judgeforge.llm.asking import InvalidAnswer, ask_until_valid, json_answer_request

METRIC_PATH = "data_generation.metric"
EXTRACTION_MAX_TOKENS = 1500
SYSTEM_PROMPT = (
    "You read the instructions given to an LLM judge and describe the classification metric they "
    "define. Answer with JSON only."
)


class MetricExtractionError(UserError, InvalidAnswer):
    """The LLM could not derive a usable metric from llmaj_source_prompt."""


class DerivedClass(BaseModel):
    """One class as the LLM derived it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    label: str = Field(min_length=1)
    rubric: str = Field(min_length=1)


class DerivedMetric(BaseModel):
    """The structured answer of a metric extraction call."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1)
    class_labels: list[DerivedClass] = Field(min_length=2)


def missing_parts(metric: MetricConfig) -> list[str]:
    """Return the metric fields that must be derived (empty when the prompt is unset or nothing is missing)."""
    if not metric.has_source_prompt:
        return []
    missing = [] if metric.description and metric.description.strip() else ["description"]
    if not metric.class_labels:
        return [*missing, "class_labels"]
    return missing + [
        f"class_labels[{i}].rubric"
        for i, c in enumerate(metric.class_labels)
        if not (c.rubric and c.rubric.strip())
    ]


def extraction_request(metric: MetricConfig, attempt: int, previous_problem: str) -> LLMRequest:
    """Return the request asking the LLM to describe the metric its judge prompt defines."""
    kind = "exactly two classes" if metric.type == "binary" else "two or more classes"
    parts = [
        f"Metric name: {metric.name}. It is a {metric.type} metric with {kind}.",
        f"The judge's instructions:\n<<<\n{metric.llmaj_source_prompt}\n>>>",
        (
            "Describe the metric: a one-paragraph `description` of what it decides, and `class_labels`: "
            "for each class a short snake_case `name`, the exact `label` value the instructions tell the "
            "judge to output for it, and a `rubric` saying when an input belongs to that class."
        ),
    ]
    if metric.class_labels:
        given = ", ".join(f"{c.name} (label {label_key(c.label)})" for c in metric.class_labels)
        parts.append(f"Use exactly these classes and labels: {given}.")
    return json_answer_request(
        SYSTEM_PROMPT,
        parts,
        attempt,
        previous_problem,
        max_tokens=EXTRACTION_MAX_TOKENS,
        json_schema=DerivedMetric.model_json_schema(),
        schema_name="derived_metric",
    )


def merge_derived(metric: MetricConfig, derived: DerivedMetric) -> MetricConfig:
    """Return the metric with its missing parts taken from `derived`, validated with the config rules."""
    values = metric.model_dump()
    if not (metric.description and metric.description.strip()):
        values["description"] = derived.description
    if not metric.class_labels:
        values["class_labels"] = [c.model_dump() for c in derived.class_labels]
    else:
        by_key = {label_key(c.label): c for c in derived.class_labels}
        for item in values["class_labels"]:
            if not (item["rubric"] and item["rubric"].strip()):
                match = by_key.get(label_key(item["label"]))
                if match is None:
                    raise MetricExtractionError(
                        f"the answer has no rubric for class label {label_key(item['label'])}"
                    )
                item["rubric"] = match.rubric
    try:
        return MetricConfig.model_validate(values)
    except ValidationError as error:
        problems = problems_from_validation_error(error, METRIC_PATH)
        raise MetricExtractionError("; ".join(f"{p.path}: {p.rule}" for p in problems)) from None


def parse_extraction(text: str, metric: MetricConfig) -> MetricConfig:
    """Return the resolved metric read from an extraction answer, or raise MetricExtractionError."""
    try:
        derived = DerivedMetric.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(answer)"
        raise MetricExtractionError(
            f"the answer is not the expected JSON ({where}: {first['msg']})"
        ) from None
    return merge_derived(metric, derived)


def derive_metric(client: Any, metric: MetricConfig, retries: int) -> MetricConfig:
    """Return the metric completed by the LLM, asking again on a rejected answer, at most `retries` times."""
    (asked,) = ask_until_valid(
        client,
        1,
        lambda _, attempt, problem: extraction_request(metric, attempt, problem),
        lambda _, text: parse_extraction(text, metric),
        retries,
    )
    if asked.value is None:
        raise MetricExtractionError(
            f"could not derive {', '.join(missing_parts(metric))} from data_generation.metric.llmaj_source_prompt "
            f"after {asked.attempts} attempt(s): {asked.problem}. Make the prompt name its labels, or set them in the config."
        )
    return asked.value


def pasteable_metric(metric: MetricConfig) -> dict[str, Any]:
    """Return the metric section as it would be written in a run YAML."""
    return {"metric": metric.model_dump(mode="json")}
