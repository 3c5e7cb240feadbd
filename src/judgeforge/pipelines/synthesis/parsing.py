"""Reading examples out of an LLM answer: JSON first, then the plain field-per-line format."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from judgeforge.config.data_generation import Postprocessing
from judgeforge.llm.types import SENTENCE_END
from judgeforge.pipelines.synthesis.prompts import PLAIN_SEPARATOR, ExampleShape

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_WRAPPING_QUOTES = ('"', "'", "“", "”")


class UnreadableAnswer(ValueError):
    """An answer with no example that matches the expected shape."""


def example_model(shape: ExampleShape) -> type[BaseModel]:
    """Return the pydantic model of one example: every field a string; a `label` is tolerated."""
    fields: dict[str, Any] = {field: (str, ...) for field in shape.fields}
    fields["label"] = (str | int | bool | None, None)
    return create_model("SyntheticExample", __config__=ConfigDict(extra="ignore"), **fields)


def parse_examples(text: str, shape: ExampleShape, json_only: bool) -> list[dict[str, Any]]:
    """Return the examples in an answer as dicts of field → value (and `label` when given).

    With `json_only` (JSON output was requested) anything but JSON is unreadable; otherwise
    JSON is still accepted and the plain field-per-line format is the fallback.
    """
    text = _FENCE.sub("", text.strip()).strip()
    if not text:
        raise UnreadableAnswer("empty answer")
    candidates = _json_candidates(text)
    if candidates is None and json_only:
        raise UnreadableAnswer("JSON was requested but the answer holds none")
    if candidates is None:
        candidates = _plain_candidates(text, shape)
    model = example_model(shape)
    examples = []
    for candidate in candidates:
        try:
            examples.append(model.model_validate(candidate).model_dump())
        except ValidationError:
            continue
    if not examples:
        raise UnreadableAnswer(f"no example with the fields {', '.join(shape.fields)}")
    return examples


def whole_sentences(text: str) -> str | None:
    """Return `text` up to the end of its last complete sentence; None when no sentence ends in it."""
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else None


def _json_candidates(text: str) -> list[Any] | None:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("examples"), list):
        return value["examples"]
    if isinstance(value, list):
        return value
    return [value]


def _plain_candidates(text: str, shape: ExampleShape) -> list[dict[str, str]]:
    blocks = [block.strip() for block in text.split(PLAIN_SEPARATOR) if block.strip()]
    if len(shape.fields) == 1:
        field = shape.fields[0]
        return [{field: _strip_label(block, field)} for block in blocks]
    return [_labelled_fields(block, shape) for block in blocks]


def _strip_label(block: str, field: str) -> str:
    value = re.sub(rf"^\s*{re.escape(field)}\s*:\s*", "", block, flags=re.IGNORECASE).strip()
    if len(value) >= 2 and value[0] in _WRAPPING_QUOTES and value[-1] in _WRAPPING_QUOTES:
        value = value[1:-1].strip()
    return value


def _labelled_fields(block: str, shape: ExampleShape) -> dict[str, str]:
    names = "|".join(re.escape(field) for field in shape.fields)
    pattern = re.compile(rf"^\s*\**({names})\**\s*:\s*", flags=re.IGNORECASE | re.MULTILINE)
    found: dict[str, str] = {}
    matches = list(pattern.finditer(block))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(block)
        field = next(f for f in shape.fields if f.lower() == match.group(1).lower())
        found.setdefault(field, block[match.end() : end].strip())
    return found


def postprocess(text: str, rules: Postprocessing) -> str:
    """Return a generated text cleaned as Oumi's postprocessing_params say: cut, extract, strip, add."""
    if rules.cut_prefix and rules.cut_prefix in text:
        text = text.split(rules.cut_prefix, 1)[1]
    if rules.cut_suffix and rules.cut_suffix in text:
        text = text.split(rules.cut_suffix, 1)[0]
    if rules.regex:
        match = re.search(rules.regex, text, flags=re.DOTALL)
        if match:
            text = match.group(1) if match.re.groups else match.group(0)
    if rules.strip_whitespace:
        text = text.strip()
    return f"{rules.added_prefix}{text}{rules.added_suffix}"


def postprocessed(
    example: Mapping[str, Any], rules: Mapping[str, Postprocessing]
) -> dict[str, Any]:
    """Return an example with each field that has rules cleaned by them (the others as they are)."""
    return {
        name: postprocess(value, rules[name]) if name in rules and isinstance(value, str) else value
        for name, value in example.items()
    }
