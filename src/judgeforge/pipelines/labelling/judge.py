"""The judge: `llmaj_source_prompt` applied to one row, its JSON answer checked, invalid answers asked again.

How a row reaches the judge: every `{column}` placeholder of the source prompt that names a
feature column is replaced by the row's value (other braces are left as written). A prompt with
no such placeholder gets the row appended as an `Input:` block, one `column: value` line per
feature column. The judge must answer `{"label": ..., "rationale": ...}` with `label` one of the
metric's label values (a class name is accepted too); anything else is invalid and asked again
with an attempt note, so the request (and its cache key) differs, at most
`labelling.invalid_answer_retries` times. A row whose answers all stay invalid is reported as
invalid: its label is never guessed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judgeforge.config.data_generation import MetricConfig
from judgeforge.config.labels import label_key
from judgeforge.llm import ChatMessage, LLMRequest

SYSTEM_PROMPT = (
    "You are a careful, consistent evaluator. Apply the evaluation instructions to the input "
    "and answer with JSON only."
)
# The answer has a label and one or two sentences why; 400 tokens leave room for both.
JUDGE_MAX_TOKENS = 400
OK = "ok"
INVALID = "invalid"
# How a verdict's detail starts when the judge's request itself failed (no answer to read).
REQUEST_FAILED = "request failed"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """The judge's outcome for one row: a label key and rationale, or why no valid answer came."""

    label: str | None
    rationale: str
    status: str
    attempts: int
    detail: str


def fill_prompt(source_prompt: str, features: Sequence[str], row: Mapping[str, Any]) -> str:
    """Return the source prompt with the row's feature values in its placeholders, or an Input block appended."""
    named = [name for name in _PLACEHOLDER.findall(source_prompt) if name in features]
    if named:
        return _PLACEHOLDER.sub(lambda m: str(row[m.group(1)]) if m.group(1) in features else m.group(0), source_prompt)
    block = "\n".join(f"{feature}: {row[feature]}" for feature in features)
    return f"{source_prompt.rstrip()}\n\nInput:\n{block}"


def answer_schema(label_keys: Sequence[str]) -> dict[str, Any]:
    """Return the JSON schema of a judge answer."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(label_keys)}, "rationale": {"type": "string"}},
        "required": ["label", "rationale"],
        "additionalProperties": False,
    }


def judge_request(metric: MetricConfig, features: Sequence[str], row: Mapping[str, Any], attempt: int, previous_problem: str) -> LLMRequest:
    """Return the request asking the judge to label one row (attempt 1, 2, … differ in their last line)."""
    choices = ", ".join(f'"{label_key(c.label)}" ({c.name})' for c in metric.class_labels or [])
    parts = [
        fill_prompt(metric.llmaj_source_prompt or "", features, row),
        f'Answer with JSON only: {{"label": one of {choices}, "rationale": "one or two sentences why"}}',
    ]
    if attempt > 1:
        parts.append(f"(Attempt {attempt}: the previous answer was invalid — {previous_problem}. Answer again, JSON only.)")
    return LLMRequest(
        messages=(ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", "\n\n".join(parts))),
        temperature=0.0,
        max_tokens=JUDGE_MAX_TOKENS,
        json_schema=answer_schema(metric.label_keys()),
        schema_name="judge_label",
    )


def parse_answer(text: str, metric: MetricConfig) -> tuple[str | None, str, str]:
    """Return (label key or None, rationale, problem) read from a judge answer; never guesses."""
    body = text.strip()
    fenced = _FENCE.match(body)
    try:
        answer = json.loads(fenced.group(1) if fenced else body)
    except json.JSONDecodeError:
        return None, "", "the answer is not JSON"
    if not isinstance(answer, dict) or "label" not in answer:
        return None, "", 'the answer has no "label" field'
    given = answer["label"]
    keys = metric.label_keys()
    by_name = {c.name.casefold(): label_key(c.label) for c in metric.class_labels or []}
    key = label_key(given) if given is not None else ""
    if key not in keys:
        key = by_name.get(str(given).strip().casefold(), "")
    if not key:
        return None, "", f"label {given!r} is not one of {', '.join(keys)}"
    return key, str(answer.get("rationale") or "").strip(), ""


def judge_rows(client: Any, metric: MetricConfig, features: Sequence[str], rows: Sequence[Mapping[str, Any]], retries: int) -> list[Verdict]:
    """Return one verdict per row: every row asked at once, invalid ones asked again up to `retries` times."""
    verdicts: list[Verdict | None] = [None] * len(rows)
    problems = [""] * len(rows)
    pending = list(range(len(rows)))
    for attempt in range(1, retries + 2):
        requests = [judge_request(metric, features, rows[i], attempt, problems[i]) for i in pending]
        responses = asyncio.run(client.generate(requests)) if requests else []
        still_invalid = []
        for index, response in zip(pending, responses):
            label, rationale, problem = parse_answer(response.text, metric) if response.ok else (None, "", f"{REQUEST_FAILED}: {response.error}")
            if label is not None:
                verdicts[index] = Verdict(label, rationale, OK, attempt, "")
            else:
                problems[index] = problem
                still_invalid.append(index)
        pending = still_invalid
        if not pending:
            break
    for index in pending:
        verdicts[index] = Verdict(None, "", INVALID, retries + 1, problems[index])
    return [v for v in verdicts if v is not None]
