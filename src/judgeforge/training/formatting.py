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
# Cut first when a prompt is too long: a RAG context may lose words, the query and the response
# being judged may not.
CUT_FIRST_FIELDS = frozenset({"context"})
# Between the fields of a multi-field row when the tokenizer has no separator token of its own.
FIELD_SEPARATOR = "\n"


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

    @property
    def instruction(self) -> str:
        """Return what the judge's system message says: the answers it may give."""
        if self.metric_type == "boolean":
            return "Answer true or false."
        return f"Answer {', '.join(self.answers[:-1])} or {self.answers[-1]}."


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt that goes through the tokenizer's chat template after the judge's own system message.

    Without a system message many chat templates put in their default one (SmolLM2: "You are a
    helpful AI assistant named SmolLM, trained by Hugging Face"), which every row would pay for
    (BENCHMARKS.md, issue 12 round 4); the judge's says what it may answer, in a few tokens.
    """

    system: str

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """Return the system message and the prompt as the user's message."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]


def check_template_columns(template: str, columns: Sequence[str], where: str) -> None:
    """Raise one clear error when the template's placeholders name columns that `where` lacks."""
    missing = missing_template_columns(template, list(columns))
    if missing:
        names = ", ".join(f"{{{name}}}" for name in missing)
        raise TemplateColumnError(
            f"prompt_template uses {names}, which {where} lacks (its columns: {', '.join(columns)})"
        )


def feature_template(template: str, separator: str) -> str:
    """Return the template's columns without its wording: one column's bare text, or `name: value` per column joined by `separator`."""
    names = template_placeholders(template)
    if len(names) == 1:
        return f"{{{names[0]}}}"
    return f" {separator} ".join(f"{name}: {{{name}}}" for name in names)


def render_prompt(template: str, row: Mapping[str, Any]) -> str:
    """Return the template filled with the row's values; a missing value becomes empty text."""
    values = {name: _cell_text(row[name]) for name in template_placeholders(template)}
    return template.format_map(values)


def field_allowances(lengths: Mapping[str, int], budget: int) -> dict[str, int]:
    """Return the tokens each field keeps so that all fit `budget`.

    `context` fields are cut first; if that is not enough, every field gets an equal share, and
    a field shorter than its share stays whole and leaves the rest to the others.
    """
    if sum(lengths.values()) <= budget:
        return dict(lengths)
    kept = {name: n for name, n in lengths.items() if name not in CUT_FIRST_FIELDS}
    spare = max(0, budget - sum(kept.values()))
    allowances = {}
    for name in lengths:
        if name in CUT_FIRST_FIELDS:
            allowances[name] = min(lengths[name], spare)
            spare -= allowances[name]
    remaining = max(0, budget - sum(allowances.values()))
    for position, name in enumerate(sorted(kept, key=kept.__getitem__)):
        allowances[name] = min(kept[name], remaining // (len(kept) - position))
        remaining -= allowances[name]
    return {name: allowances[name] for name in lengths}


def render_prompts_within(
    template: str, rows: Sequence[Mapping[str, Any]], tokenizer: Any, budget: int
) -> tuple[list[str], int]:
    """Return each row's template filled with its values cut to `budget` tokens in all, and how many rows were cut."""
    names = template_placeholders(template)
    values = [{name: _cell_text(row[name]) for name in names} for row in rows]
    if not values:
        return [], 0
    # One tokenizer call per field over all rows: the fast tokenizer batches it in Rust.
    token_ids = {
        name: tokenizer(text=[row[name] for row in values], add_special_tokens=False)["input_ids"]
        for name in names
    }
    rendered, cut_rows = [], 0
    for index, row in enumerate(values):
        lengths = {name: len(token_ids[name][index]) for name in names}
        allowances = field_allowances(lengths, budget)
        cut = [name for name in names if allowances[name] < lengths[name]]
        for name in cut:
            row[name] = tokenizer.decode(token_ids[name][index][: allowances[name]])
        rendered.append(template.format_map(row))
        cut_rows += bool(cut)
    return rendered, cut_rows


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def uses_chat_template(tokenizer: Any) -> bool:
    """Return whether prompts go through the tokenizer's chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def training_record(prompt: str, answer: str, chat: ChatPrompt | None) -> dict[str, Any]:
    """Return one TRL prompt-completion example: chat messages, or plain text when there is no chat template."""
    if chat:
        return {
            "prompt": chat.messages(prompt),
            "completion": [{"role": "assistant", "content": answer}],
        }
    return {"prompt": prompt + PLAIN_PROMPT_SUFFIX, "completion": answer}


def prompt_token_ids(tokenizer: Any, prompt: str, chat: ChatPrompt | None) -> list[int]:
    """Return the token ids the model sees before its answer, tokenized exactly as TRL does in training."""
    return prompts_token_ids(tokenizer, [prompt], chat)[0]


def prompts_token_ids(
    tokenizer: Any, prompts: Sequence[str], chat: ChatPrompt | None
) -> list[list[int]]:
    """Return `prompt_token_ids` of each prompt, tokenized in one batched call."""
    if not prompts:
        return []
    if chat:
        encoded = tokenizer.apply_chat_template(
            [chat.messages(prompt) for prompt in prompts],
            tokenize=True,
            return_dict=True,
            add_generation_prompt=True,
        )
        return [list(ids) for ids in encoded["input_ids"]]
    texts = [prompt + PLAIN_PROMPT_SUFFIX for prompt in prompts]
    return [list(ids) for ids in tokenizer(text=texts)["input_ids"]]


def prompt_and_answer_token_ids(
    tokenizer: Any, prompt: str, answer: str, chat: ChatPrompt | None
) -> list[int]:
    """Return the token ids of a prompt followed by its answer, as TRL tokenizes a training example."""
    if chat:
        messages = [*chat.messages(prompt), {"role": "assistant", "content": answer}]
        return list(
            tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        )
    return list(tokenizer(text=prompt + PLAIN_PROMPT_SUFFIX + answer)["input_ids"])
