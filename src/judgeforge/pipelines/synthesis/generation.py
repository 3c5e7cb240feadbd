"""The generation loop: ask for what each class still lacks, validate, repeat within a budget."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from judgeforge.config.data_generation import ClassLabel, GenerationConfig, LLMConfig, MetricConfig
from judgeforge.config.labels import label_key
from judgeforge.llm import LLMRequest, LLMResponse
from judgeforge.pipelines.ingestion.nodes import normalise_text
from judgeforge.pipelines.synthesis.parsing import UnreadableAnswer, parse_examples
from judgeforge.pipelines.synthesis.prompts import (
    ExampleShape,
    compact_messages,
    generation_messages,
    generation_request,
)

# Reject reasons of synthetic examples.
REQUEST_FAILED = "request_failed"
INVALID_OUTPUT = "invalid_output"
EMPTY_FIELD = "empty_field"
TRUNCATED = "truncated"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
WRONG_LABEL = "wrong_label"
DUPLICATE = "duplicate"
HOLDOUT_LEAK = "holdout_leak"
COPIES_SEED = "copies_seed_example"
ECHOES_PROMPT = "echoes_prompt"
SYNTHETIC_REJECT_REASONS = (
    REQUEST_FAILED, INVALID_OUTPUT, EMPTY_FIELD, TRUNCATED, TOO_SHORT, TOO_LONG, WRONG_LABEL, ECHOES_PROMPT, DUPLICATE, HOLDOUT_LEAK, COPIES_SEED,
)
MIN_FIELD_CHARS = 3
# A generated field may be this many times shorter than the shortest real one (and ≥ the floor).
MIN_LENGTH_DIVISOR = 3
# Sharing this many consecutive words with the metric's description or a rubric means the
# model copied its instructions instead of writing an example.
ECHO_NGRAM = 6
# A generated field may be this many times longer than the longest real one (and ≥ the floor).
MAX_LENGTH_FACTOR = 3
MAX_LENGTH_FLOOR = 200
# Answer budgets fit this percentile of each field's real lengths: an outlier-long seed row
# no longer sizes every call, and a longer answer costs only its own row (rows leave a batch
# when they finish).
FIELD_LENGTH_PERCENTILE = 95
# A generated field may run this many times that length before its answer is cut off.
FIELD_BUDGET_HEADROOM = 1.5
# Per field: its name and line break, or its JSON key, quotes and comma.
FIELD_OVERHEAD_TOKENS = 8
# Per answer: the JSON wrapper or separators, and the end of turn.
ANSWER_OVERHEAD_TOKENS = 16
MIN_ANSWER_TOKENS = 32
# Field length assumed when there are no real rows to measure.
DEFAULT_FIELD_TOKENS = 60.0


@dataclass(frozen=True)
class Call:
    """One generation request and what it was for."""

    call_id: str
    target: ClassLabel
    request: LLMRequest


@dataclass
class GenerationResult:
    """Accepted examples, rejects, and the counts a report needs."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    calls_per_class: dict[str, int] = field(default_factory=dict)
    surplus: int = 0
    rounds: int = 0
    debug_records: list[dict[str, Any]] = field(default_factory=list)


def stable_seed(*parts: Any) -> int:
    """Return a 31-bit seed from parts, identical across processes (unlike `hash`)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def fingerprint(example: Mapping[str, Any], fields: Sequence[str]) -> str:
    """Return the normalised text of an example's fields, for duplicate detection."""
    return "\x1f".join(normalise_text(str(example[f])) for f in fields)


def call_budget(quota: int, examples_per_call: int, attempts_per_example: float) -> int:
    """Return the most calls a class may use to reach its quota."""
    return math.ceil(math.ceil(quota / examples_per_call) * attempts_per_example)


def field_token_lengths(
    seed_rows: pd.DataFrame, fields: Sequence[str], count_tokens: Callable[[Sequence[str]], list[int]]
) -> dict[str, float]:
    """Return each field's FIELD_LENGTH_PERCENTILE-th percentile length in tokens over the real rows."""
    if not len(seed_rows):
        return {f: DEFAULT_FIELD_TOKENS for f in fields}
    return {
        f: float(np.percentile(count_tokens(seed_rows[f].astype(str).tolist()), FIELD_LENGTH_PERCENTILE))
        for f in fields
    }


def answer_token_budget(field_tokens: Mapping[str, float], count: int, ceiling: int) -> int:
    """Return the token limit of an answer holding `count` examples with fields of about `field_tokens`."""
    per_example = sum(tokens * FIELD_BUDGET_HEADROOM + FIELD_OVERHEAD_TOKENS for tokens in field_tokens.values())
    return int(max(MIN_ANSWER_TOKENS, min(ceiling, math.ceil(per_example * count + ANSWER_OVERHEAD_TOKENS))))


def length_limits(seed_rows: pd.DataFrame, shape: ExampleShape) -> dict[str, tuple[int, int]]:
    """Return the (shortest, longest) accepted length of each field, from the real rows."""
    if not len(seed_rows):
        return {f: (MIN_FIELD_CHARS, 10_000) for f in shape.fields}
    lengths = {f: seed_rows[f].astype(str).str.len() for f in shape.fields}
    return {
        f: (max(MIN_FIELD_CHARS, int(lengths[f].min()) // MIN_LENGTH_DIVISOR), max(MAX_LENGTH_FLOOR, MAX_LENGTH_FACTOR * int(lengths[f].max())))
        for f in shape.fields
    }


def word_ngrams(text: str, size: int = ECHO_NGRAM) -> set[tuple[str, ...]]:
    """Return the runs of `size` consecutive normalised words in a text."""
    words = normalise_text(text).split()
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


class ExampleGenerator:
    """Drives rounds of generation calls until every class quota is met or its budget is spent."""

    def __init__(
        self,
        client: Any,
        metric: MetricConfig,
        llm: LLMConfig,
        generation: GenerationConfig,
        shape: ExampleShape,
        context_pool: pd.DataFrame,
        holdout: pd.DataFrame,
        label_column: str,
        seed: int,
    ):
        self.client = client
        self.label_column = label_column
        self.metric = metric
        self.generation = generation
        self.shape = shape
        self.seed = seed
        self.context_pool = context_pool
        self.class_names = {label_key(c.label): c.name for c in metric.class_labels or []}
        self.temperature = llm.temperature
        self.structured = getattr(client, "provider", "local") != "local"
        reference = pd.concat([context_pool, holdout], ignore_index=True)
        self.field_tokens = field_token_lengths(reference, shape.fields, client.count_tokens)
        self.max_output_tokens = llm.max_output_tokens
        self.limits = length_limits(reference, shape)
        self.holdout_prints = {fingerprint(row, shape.fields) for row in holdout.to_dict("records")}
        instructions = [metric.description or "", *[c.rubric or "" for c in metric.class_labels or []]]
        self.instruction_ngrams = set().union(*(word_ngrams(text) for text in instructions))
        self.seed_prints = {fingerprint(row, shape.fields) for row in context_pool.to_dict("records")}
        self.taken: set[str] = set()

    def run(self, quotas: Mapping[str, int]) -> GenerationResult:
        """Return the accepted examples (at most each quota) and everything set aside."""
        result = GenerationResult(calls_per_class={key: 0 for key in quotas})
        accepted = {key: 0 for key in quotas}
        budgets = {key: call_budget(q, self.generation.examples_per_call, self.generation.max_attempts_per_example) for key, q in quotas.items()}
        while True:
            calls = self._plan_round(quotas, accepted, budgets, result)
            if not calls:
                return result
            responses = asyncio.run(self.client.generate([call.request for call in calls]))
            for call, response in zip(calls, responses):
                self._take(call, response, quotas, accepted, result)
            result.rounds += 1

    def _plan_round(self, quotas: Mapping[str, int], accepted: dict[str, int], budgets: dict[str, int], result: GenerationResult) -> list[Call]:
        calls = []
        per_call = self.generation.examples_per_call
        for target in self.metric.class_labels or []:
            key = label_key(target.label)
            missing = quotas.get(key, 0) - accepted[key]
            if missing <= 0:
                continue
            count = min(math.ceil(missing / per_call), budgets[key] - result.calls_per_class[key])
            for index in range(count):
                calls.append(self._call(target, f"{key}/r{result.rounds}/c{index}", min(per_call, missing)))
            result.calls_per_class[key] += max(count, 0)
        return calls

    def _call(self, target: ClassLabel, call_id: str, count: int) -> Call:
        seed = stable_seed(self.seed, call_id)
        context = self._context_examples(label_key(target.label), np.random.default_rng(seed))
        if self.structured:
            messages = generation_messages(self.metric, self.shape, target, context, count, self.generation.special_instructions, True)
            asked = count
        else:
            messages = compact_messages(self.metric, self.shape, target, context, count, self.generation.special_instructions)
            asked = 1  # the few-shot conversation asks for one example
        max_tokens = answer_token_budget(self.field_tokens, asked, self.max_output_tokens)
        request = generation_request(messages, self.shape, asked, self.structured, self.temperature, max_tokens, seed)
        return Call(call_id, target, request)

    def _context_examples(self, key: str, rng: np.random.Generator) -> list[tuple[str, dict[str, str]]]:
        """Return real examples of the target class (any class when it has none), seeded."""
        same_class = self.context_pool[self.context_pool[self.label_column].astype(str) == key]
        pool = same_class if len(same_class) else self.context_pool
        size = min(self.generation.context_examples, len(pool))
        if size == 0:
            return []
        rows = pool.iloc[rng.choice(len(pool), size=size, replace=False)]
        return [
            (self.class_names.get(str(row[self.label_column]), str(row[self.label_column])), {f: str(row[f]) for f in self.shape.fields})
            for row in rows.to_dict("records")
        ]

    def _take(self, call: Call, response: LLMResponse, quotas: Mapping[str, int], accepted: dict[str, int], result: GenerationResult) -> None:
        key = label_key(call.target.label)
        outcome: list[str] = []
        if not response.ok:
            self._reject(result, call, REQUEST_FAILED, response.error or "", response.text)
            outcome.append(REQUEST_FAILED)
        else:
            try:
                examples = parse_examples(response.text, self.shape, json_only=self.structured)
            except UnreadableAnswer as error:
                examples = []
                self._reject(result, call, INVALID_OUTPUT, str(error), response.text)
                outcome.append(INVALID_OUTPUT)
            for position, example in enumerate(examples):
                cut_off = response.finish_reason == "length" and position == len(examples) - 1
                reason, detail = self._check(example, key, cut_off)
                if reason is None and accepted[key] >= quotas[key]:
                    result.surplus += 1
                    outcome.append("surplus")
                    continue
                if reason is not None:
                    self._reject(result, call, reason, detail, response.text, example)
                    outcome.append(reason)
                    continue
                self.taken.add(fingerprint(example, self.shape.fields))
                accepted[key] += 1
                result.accepted.append({**{f: example[f].strip() for f in self.shape.fields}, self.label_column: key, "call_id": call.call_id})
                outcome.append("accepted")
        if self.generation.debug_save_prompts:
            result.debug_records.append(
                {
                    "call_id": call.call_id,
                    "class": call.target.name,
                    "messages": [{"role": m.role, "content": m.content} for m in call.request.messages],
                    "response": response.text,
                    "error": response.error,
                    "from_cache": response.from_cache,
                    "outcome": outcome,
                }
            )

    def _check(self, example: Mapping[str, Any], key: str, cut_off: bool) -> tuple[str | None, str]:
        """Return (reject reason or None, detail) for one parsed example."""
        for f in self.shape.fields:
            value = str(example[f]).strip()
            if not value:
                return EMPTY_FIELD, f"field {f} is empty"
            shortest, longest = self.limits[f]
            if len(value) < shortest:
                return TOO_SHORT, f"field {f} has {len(value)} characters (< {shortest})"
            if len(value) > longest:
                return TOO_LONG, f"field {f} has {len(value)} characters (> {longest})"
            if word_ngrams(value) & self.instruction_ngrams:
                return ECHOES_PROMPT, f"field {f} repeats the metric description or a rubric"
        if cut_off:
            return TRUNCATED, "the answer hit the token limit"
        given = example.get("label")
        if given is not None and label_key(given) not in (key, label_key(self.class_names.get(key, key))):
            return WRONG_LABEL, f"asked for class {self.class_names.get(key, key)}, the answer says {given}"
        print_ = fingerprint(example, self.shape.fields)
        if print_ in self.holdout_prints:
            return HOLDOUT_LEAK, "same text as a holdout (test) row"
        if print_ in self.seed_prints:
            return COPIES_SEED, "same text as a seed example shown in the prompt"
        if print_ in self.taken:
            return DUPLICATE, "same text as an accepted synthetic example"
        return None, ""

    def _reject(self, result: GenerationResult, call: Call, reason: str, detail: str, raw: str, example: Mapping[str, Any] | None = None) -> None:
        record = {"call_id": call.call_id, "class": call.target.name, "reason": reason, "detail": detail, "raw_answer": raw[:2000]}
        record.update({f: str((example or {}).get(f, "")) for f in self.shape.fields})
        result.rejects.append(record)
