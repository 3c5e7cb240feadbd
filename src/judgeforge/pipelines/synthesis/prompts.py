"""The generation prompt: metric, rubric, example shape, real examples and the output format."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from judgeforge.config.data_generation import RAG_ROLES, ClassLabel, MetricConfig
from judgeforge.llm import ChatMessage, LLMRequest

SYSTEM_PROMPT = (
    "You write realistic, varied examples for training a text classifier. "
    "Each example must clearly belong to the class you are asked for. "
    "Follow the output format exactly and write nothing else."
)
# Tokens of seed examples a few-shot conversation for a small local model shows at most (when
# generation.context_token_budget is null): past it, prefilling the prompt costs more CPU than
# decoding the answer, and long rows still show one or two whole examples (BENCHMARKS.md issue 15).
COMPACT_CONTEXT_TOKENS = 1024
# Separates examples in the plain-text format used with models that cannot do JSON output.
PLAIN_SEPARATOR = "###"
ROLE_HINTS = {
    "query": "the user's question or request",
    "context": "the retrieved passage (2-4 sentences) the response should rely on",
    "response": "the assistant's answer to the query",
}


@dataclass(frozen=True)
class ExampleShape:
    """The fields one example has (dataset column names) and what each holds."""

    fields: tuple[str, ...]
    roles: tuple[str, ...]

    def describe(self) -> str:
        """Return one line per field: its name and what it holds."""
        return "\n".join(f"- {field}: {ROLE_HINTS.get(role, 'text')}" for field, role in zip(self.fields, self.roles))

    def without(self, field: str) -> ExampleShape:
        """Return the shape less one field (one the call is given, not asked to write)."""
        kept = [(f, role) for f, role in zip(self.fields, self.roles) if f != field]
        return ExampleShape(tuple(f for f, _ in kept), tuple(role for _, role in kept))


def example_shape(input_format: str, features: Sequence[str]) -> ExampleShape:
    """Return the shape of one example: single text, a tuple of texts, or query/context/response."""
    roles = RAG_ROLES if input_format == "rag" else tuple(features)
    return ExampleShape(fields=tuple(features), roles=tuple(roles))


def json_schema(shape: ExampleShape, count: int) -> dict:
    """Return the JSON schema of an answer holding `count` examples."""
    item = {
        "type": "object",
        "properties": {field: {"type": "string"} for field in shape.fields},
        "required": list(shape.fields),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"examples": {"type": "array", "items": item, "minItems": count, "maxItems": count}},
        "required": ["examples"],
        "additionalProperties": False,
    }


def render_example(row: Mapping[str, str], shape: ExampleShape) -> str:
    """Return a real example written field by field."""
    return "\n".join(f"{field}: {row[field]}" for field in shape.fields)


def compact_messages(
    metric: MetricConfig,
    shape: ExampleShape,
    target: ClassLabel,
    context_rows: Sequence[tuple[str, Mapping[str, str]]],
    count: int,
    special_instructions: str | None,
    ask: str | None = None,
    guidance: str | None = None,
) -> tuple[ChatMessage, ...]:
    """Return a few-shot conversation for small local models: each real example is an earlier answer.

    `ask` (a rendered prompt template) replaces the final request; `guidance` (the call's plan
    values) is added to it: the real examples shown before were not written to them.

    A 135M model imitates earlier assistant turns far better than it follows a long prompt:
    with the class table and rubrics in one message it mostly echoes them or continues lists.
    """
    single = len(shape.fields) == 1
    system = " ".join(
        part for part in (metric.description, f"{target.name}: {target.rubric}" if target.rubric else None, special_instructions) if part
    )
    shot_ask = f"Write one new {target.name} example." + ("" if single else f" {_format_instructions(shape, 1, structured=False)}")
    turns = [ChatMessage("system", system)]
    for _, row in context_rows:
        turns += [ChatMessage("user", shot_ask), ChatMessage("assistant", row[shape.fields[0]] if single else render_example(row, shape))]
    final = " ".join(part for part in (ask or shot_ask, guidance) if part)
    turns.append(ChatMessage("user", final))
    return tuple(turns)


def generation_messages(
    metric: MetricConfig,
    shape: ExampleShape,
    target: ClassLabel,
    context_rows: Sequence[tuple[str, Mapping[str, str]]],
    count: int,
    special_instructions: str | None,
    structured: bool,
    ask: str | None = None,
    guidance: str | None = None,
) -> tuple[ChatMessage, ...]:
    """Return the chat messages asking for `count` new examples of class `target`.

    `ask` (a rendered prompt template) replaces the default request; `guidance` (the call's
    attributes, persona and language) follows it.
    """
    classes = "\n".join(f"- {c.name}: {c.rubric}" for c in metric.class_labels or [])
    shown = "\n\n".join(f"Example of class {name}:\n{render_example(row, shape)}" for name, row in context_rows)
    parts = [
        f"Metric: {metric.name}\n{metric.description}",
        f"Classes:\n{classes}",
        f"Each example has these fields:\n{shape.describe()}",
    ]
    if shown:
        parts.append(f"Real examples, for domain and style only (do not copy them):\n\n{shown}")
    noun = "example" if count == 1 else "examples"
    parts.append(
        ask
        or f"Write {count} new, different {noun} of class {target.name}: {target.rubric}"
        " Vary topic, wording, tone and length."
    )
    if guidance:
        parts.append(guidance)
    if special_instructions:
        parts.append(special_instructions.strip())
    parts.append(_format_instructions(shape, count, structured))
    return (ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", "\n\n".join(parts)))


def pair_request(first: ClassLabel, second: ClassLabel) -> str:
    """Return the request of a near-miss pair call: two examples, as alike as possible, one of each class."""
    return (
        f"Write two examples that differ as little as possible, changing only the few words that "
        f"decide the class: the first of class {first.name} ({first.rubric or first.name}), the "
        f"second of class {second.name} ({second.rubric or second.name})."
    )


def pair_messages(
    metric: MetricConfig,
    shape: ExampleShape,
    first: ClassLabel,
    second: ClassLabel,
    context_rows: Sequence[tuple[str, Mapping[str, str]]],
    special_instructions: str | None,
    guidance: str | None = None,
) -> tuple[ChatMessage, ...]:
    """Return the few-shot conversation of a near-miss pair call for small local models.

    The real examples come in alternating classes; each (first, second) couple is shown as an
    earlier answer in the pair layout (the two separated by the example separator), so the
    model sees the format it must write before it is asked for a minimal pair.
    """
    system = " ".join(part for part in (metric.description, special_instructions) if part)
    shot_ask = (
        f"Write one {first.name} example, then one {second.name} example, "
        f"separated by a line containing only {PLAIN_SEPARATOR}."
    )
    if len(shape.fields) > 1:
        shot_ask += " " + _format_instructions(shape, 2, structured=False)

    def answer(row: Mapping[str, str]) -> str:
        return row[shape.fields[0]] if len(shape.fields) == 1 else render_example(row, shape)

    turns = [ChatMessage("system", system)]
    for (_, one), (_, other) in zip(context_rows[0::2], context_rows[1::2]):
        turns += [
            ChatMessage("user", shot_ask),
            ChatMessage("assistant", f"{answer(one)}\n{PLAIN_SEPARATOR}\n{answer(other)}"),
        ]
    final = " ".join(part for part in (shot_ask, pair_request(first, second), guidance) if part)
    turns.append(ChatMessage("user", final))
    return tuple(turns)


def _format_instructions(shape: ExampleShape, count: int, structured: bool) -> str:
    if structured:
        skeleton = {"examples": [{field: "..." for field in shape.fields}]}
        return f"Answer with JSON only, in this form, with exactly {count} item(s): {json.dumps(skeleton)}"
    if len(shape.fields) == 1 and count == 1:
        return f"Answer with the new {shape.fields[0]} only, without quotes or any label."
    layout = "\n".join(f"{field}: ..." for field in shape.fields)
    separator = f"\nSeparate examples with a line containing only {PLAIN_SEPARATOR}." if count > 1 else ""
    return f"Write each field on its own line, starting with its name:\n{layout}{separator}"


def generation_request(
    messages: tuple[ChatMessage, ...],
    shape: ExampleShape,
    count: int,
    structured: bool,
    temperature: float,
    max_tokens: int,
    seed: int,
    field_chars: Sequence[int] = (),
) -> LLMRequest:
    """Return the request for one generation call; in a plain answer of one example each field
    may end at a sentence end once it holds its `field_chars` characters."""
    plain_one = not structured and count == 1
    return LLMRequest(
        messages=messages,
        temperature=temperature,
        max_tokens=max_tokens,
        json_schema=json_schema(shape, count) if structured else None,
        schema_name="synthetic_examples",
        seed=seed,
        stop=() if structured or count > 1 else plain_stops(shape),
        layout=() if structured or count > 1 or len(shape.fields) == 1 else plain_layout(shape),
        field_chars=tuple(field_chars) if plain_one else (),
    )


def plain_layout(shape: ExampleShape) -> tuple[str, ...]:
    """Return the line labels of a plain answer of one example, in the order its fields are written.

    SmolLM2 often ends a rag answer after its query and context (`invalid_output`); a local
    model handed the missing label writes the field instead.
    """
    return tuple(f"{field}:" for field in shape.fields)


def segment_guidance(segment: str, is_context: bool) -> str:
    """Return the prompt part that grounds a call in a document segment: as the examples' context, or as their subject."""
    if is_context:
        return (
            "Every new example uses this real passage as its context (it is given: do not "
            "write a context field). Write a query a user would ask about it and a response "
            f"that relies on it:\n<<<\n{segment}\n>>>"
        )
    return (
        "Write the new examples about what this real passage covers (its subject, facts and "
        f"terms), without copying it:\n<<<\n{segment}\n>>>"
    )


def plain_stops(shape: ExampleShape) -> tuple[str, ...]:
    """Return the texts that end a plain answer of one example: the example separator.

    Not a blank line or a repeated first field: the 135M model writes both inside examples
    it then completes (on rag rows either stop cut a quarter to a half of the answers before
    their last fields).
    """
    return (f"\n{PLAIN_SEPARATOR}",)
