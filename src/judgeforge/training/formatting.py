"""Turning dataset rows into judge prompts and answers, the same way for training and scoring."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judgeforge.config.labels import label_key
from judgeforge.config.training import (
    TrainingMetricConfig,
    missing_template_columns,
    template_placeholders,
)
from judgeforge.errors import UserError

BOOLEAN_ANSWERS = ("false", "true")
TRUE_KEYS = frozenset({"1", "true", "yes"})
FALSE_KEYS = frozenset({"0", "false", "no"})
# Without a chat template the answer follows the prompt on a new line.
PLAIN_PROMPT_SUFFIX = "\n"


class TemplateColumnError(UserError, ValueError):
    """The prompt template names a column that the data does not have."""


class LabelValueError(UserError, ValueError):
    """A label value that is not one of the metric's classes."""


@dataclass(frozen=True)
class AnswerSpace:
    """The classes of a metric: the labels users see and the answers the model is trained to give."""

    metric_type: str
    labels: tuple[str, ...]
    answers: tuple[str, ...]

    @classmethod
    def from_metric(cls, metric: TrainingMetricConfig) -> AnswerSpace:
        """Return the answer space of a metric: true/false, or class keys 0, 1, … in `classes` order."""
        if metric.type == "boolean":
            return cls("boolean", BOOLEAN_ANSWERS, BOOLEAN_ANSWERS)
        if metric.type == "multi_class":
            classes = tuple(str(name) for name in metric.classes or [])
            return cls("multi_class", classes, tuple(str(index) for index in range(len(classes))))
        raise ValueError(f"metric.type {metric.type!r}: must be boolean or multi_class")

    def answer_for(self, value: Any) -> str:
        """Return the answer the model should give for a label value from the data."""
        key = label_key(value)
        if self.metric_type == "boolean":
            if key in TRUE_KEYS:
                return "true"
            if key in FALSE_KEYS:
                return "false"
            raise LabelValueError(f"label {value!r} is not boolean: use 1/true/yes or 0/false/no")
        for label, answer in zip(self.labels, self.answers):
            if label_key(label) == key:
                return answer
        raise LabelValueError(f"label {value!r} is not one of metric.classes {list(self.labels)}")

    def label_for_answer(self, answer: str) -> str:
        """Return the user-facing label of a model answer."""
        return self.labels[self.answers.index(answer)]


def check_template_columns(template: str, columns: Sequence[str], where: str) -> None:
    """Raise one clear error when the template's placeholders name columns that `where` lacks."""
    missing = missing_template_columns(template, list(columns))
    if missing:
        names = ", ".join(f"{{{name}}}" for name in missing)
        raise TemplateColumnError(
            f"prompt_template uses {names}, which {where} lacks (its columns: {', '.join(columns)})"
        )


def render_prompt(template: str, row: Mapping[str, Any]) -> str:
    """Return the template filled with the row's values; a missing value becomes empty text."""
    values = {name: _cell_text(row[name]) for name in template_placeholders(template)}
    return template.format_map(values)


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def uses_chat_template(tokenizer: Any) -> bool:
    """Return whether prompts go through the tokenizer's chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def training_record(prompt: str, answer: str, chat: bool) -> dict[str, Any]:
    """Return one TRL prompt-completion example: chat messages, or plain text when there is no chat template."""
    if chat:
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": answer}],
        }
    return {"prompt": prompt + PLAIN_PROMPT_SUFFIX, "completion": answer}


def prompt_token_ids(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """Return the token ids the model sees before its answer, tokenized exactly as TRL does in training."""
    if chat:
        messages = [{"role": "user", "content": prompt}]
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, add_generation_prompt=True
        )
        return list(encoded["input_ids"])
    return list(tokenizer(text=prompt + PLAIN_PROMPT_SUFFIX)["input_ids"])


def prompt_and_answer_token_ids(tokenizer: Any, prompt: str, answer: str, chat: bool) -> list[int]:
    """Return the token ids of a prompt followed by its answer, as TRL tokenizes a training example."""
    if chat:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        return list(
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        )
    return list(tokenizer(text=prompt + PLAIN_PROMPT_SUFFIX + answer)["input_ids"])
