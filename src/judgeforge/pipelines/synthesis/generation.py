"""The generation loop: ask for what each class still lacks, validate, repeat within a budget."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from judgeforge.config.data_generation import (
    RAG_ROLES,
    ClassLabel,
    GenerationConfig,
    LLMConfig,
    MetricConfig,
)
from judgeforge.config.diversity import DiversityConfig
from judgeforge.config.labels import label_key
from judgeforge.llm import LLMRequest, LLMResponse
from judgeforge.llm.providers import PROVIDERS
from judgeforge.pipelines.ingestion.nodes import normalise_text
from judgeforge.pipelines.synthesis.parsing import (
    UnreadableAnswer,
    parse_examples,
    postprocessed,
    whole_sentences,
)
from judgeforge.pipelines.synthesis.plan import (
    PAIR_CLASS,
    PLAN_CALL_ID,
    call_steering,
    generator_name,
    row_plan_values,
    stable_seed,
)
from judgeforge.pipelines.synthesis.prompts import (
    COMPACT_CONTEXT_TOKENS,
    ExampleShape,
    compact_messages,
    generation_messages,
    generation_request,
    pair_messages,
    pair_request,
    render_example,
    segment_guidance,
)
from judgeforge.schema import ROW_ID


class RejectReason(StrEnum):
    """Why a synthetic example was set aside (in the order the generation report lists them)."""

    REQUEST_FAILED = "request_failed"
    INVALID_OUTPUT = "invalid_output"
    EMPTY_FIELD = "empty_field"
    TRUNCATED = "truncated"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    WRONG_LABEL = "wrong_label"
    ECHOES_PROMPT = "echoes_prompt"
    DUPLICATE = "duplicate"
    HOLDOUT_LEAK = "holdout_leak"
    COPIES_SEED = "copies_seed_example"
    PAIR_PARTNER_REJECTED = "pair_partner_rejected"


# The key of a pair's plan row made single (`single`) that holds the start of the ids of the
# follow-up calls copying it, in place of its plan call id.
FOLLOW_UP_STEM = "follow_up_stem"

# The reason given to a valid example whose class had its quota when it came: a follow-up round
# asks for more than is missing (see `examples_to_ask`), so a round may bring more than needed.
# It is kept with the rejects (the user sees it) but is not a rejected answer.
SURPLUS = "surplus"

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
    key: str
    plan_row: Mapping[str, Any]
    examples: int
    structured: bool
    # the fields the model writes (a rag call grounded in a segment gets the segment as context)
    shape: ExampleShape
    segment: str = ""
    # a near-miss pair call: the class of its second example (its first is `key`)
    pair_key: str = ""


@dataclass
class GenerationResult:
    """Accepted examples, rejects, and the counts a report needs."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    calls_per_class: dict[str, int] = field(default_factory=dict)
    calls_per_generator: dict[str, int] = field(default_factory=dict)
    surplus: int = 0
    rounds: int = 0
    # per class: the examples asked of it so far, and how many of them were valid (kept or surplus)
    asked_per_class: dict[str, int] = field(default_factory=dict)
    valid_per_class: dict[str, int] = field(default_factory=dict)
    debug_records: list[dict[str, Any]] = field(default_factory=list)


def fingerprint(example: Mapping[str, Any], fields: Sequence[str]) -> str:
    """Return the normalised text of an example's fields, for duplicate detection."""
    return "\x1f".join(normalise_text(str(example[f])) for f in fields)


def call_budget(quota: int, examples_per_call: int, attempts_per_example: float) -> int:
    """Return the most calls a class may use to reach its quota."""
    return math.ceil(math.ceil(quota / examples_per_call) * attempts_per_example)


def examples_to_ask(missing: int, valid: int, asked: int, attempts_per_example: float) -> int:
    """Return how many examples a follow-up round asks of a class that lacks `missing`, `valid` of its `asked` so far being valid.

    The missing count divided by the class's share of valid examples, so that one round rather
    than many fills the quota: each round waits for its slowest answer, and a round of a few
    calls leaves a batch nearly empty. Asking for exactly what is missing, round after round,
    costs as many calls on average (missing / share each time), in more rounds. The share counts
    one valid example more than seen (a class with no answer yet is asked exactly what it lacks)
    and is at least 1 / attempts_per_example, the share the call budget is sized for.
    """
    share = min(1, max(Fraction(valid + 1, asked + 1), 1 / Fraction(attempts_per_example)))
    return math.ceil(missing / share)


def field_token_lengths(
    seed_rows: pd.DataFrame,
    fields: Sequence[str],
    count_tokens: Callable[[Sequence[str]], list[int]],
) -> dict[str, float]:
    """Return each field's FIELD_LENGTH_PERCENTILE-th percentile length in tokens over the real rows."""
    if not len(seed_rows):
        return {f: DEFAULT_FIELD_TOKENS for f in fields}
    return {
        f: float(
            np.percentile(count_tokens(seed_rows[f].astype(str).tolist()), FIELD_LENGTH_PERCENTILE)
        )
        for f in fields
    }


def shots_within(
    row_ids: Sequence[str], tokens: Mapping[str, int], budget: int | None, unit: int = 1
) -> list[str]:
    """Return the leading `row_ids` whose tokens add up to at most `budget`, `unit` at a time (the first `unit` always)."""
    if budget is None:
        return list(row_ids)
    kept, used = [], 0
    for start in range(0, len(row_ids), unit):
        group = list(row_ids[start : start + unit])
        used += sum(tokens[row_id] for row_id in group)
        if kept and used > budget:
            break
        kept += group
    return kept


def answer_token_budget(field_tokens: Mapping[str, float], count: int, ceiling: int) -> int:
    """Return the token limit of an answer holding `count` examples with fields of about `field_tokens`."""
    per_example = sum(
        tokens * FIELD_BUDGET_HEADROOM + FIELD_OVERHEAD_TOKENS for tokens in field_tokens.values()
    )
    return int(
        max(
            MIN_ANSWER_TOKENS, min(ceiling, math.ceil(per_example * count + ANSWER_OVERHEAD_TOKENS))
        )
    )


def length_limits(seed_rows: pd.DataFrame, shape: ExampleShape) -> dict[str, tuple[int, int]]:
    """Return the (shortest, longest) accepted length of each field, from the real rows."""
    if not len(seed_rows):
        return {f: (MIN_FIELD_CHARS, 10_000) for f in shape.fields}
    lengths = {f: seed_rows[f].astype(str).str.len() for f in shape.fields}
    return {
        f: (
            max(MIN_FIELD_CHARS, int(lengths[f].min()) // MIN_LENGTH_DIVISOR),
            max(MAX_LENGTH_FLOOR, MAX_LENGTH_FACTOR * int(lengths[f].max())),
        )
        for f in shape.fields
    }


def word_ngrams(text: str, size: int = ECHO_NGRAM) -> set[tuple[str, ...]]:
    """Return the runs of `size` consecutive normalised words in a text."""
    words = normalise_text(text).split()
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def single_row(plan_row: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Return the plan row a single call for class `key` copies: a pair's row made single, any other row as it is.

    Both classes of a pair copy its row: made single for the pair's second class, the row names
    that class in the ids of its follow-ups (`follow_up_id`), so no two calls share an id.
    """
    if not plan_row.get(PAIR_CLASS):
        return plan_row
    first = key == str(plan_row["class"])
    shown = list(plan_row["context_ids"])[0 if first else 1 :: 2]
    stem = plan_row[PLAN_CALL_ID] if first else f"{plan_row[PLAN_CALL_ID]}/{key}"
    return {
        **plan_row,
        "class": key,
        PAIR_CLASS: "",
        "context_ids": shown,
        FOLLOW_UP_STEM: stem,
    }


def follow_up_id(row: Mapping[str, Any], round_: int, index: int) -> str:
    """Return the id of the `index`-th follow-up call of round `round_` that copies plan row `row`."""
    return f"{row.get(FOLLOW_UP_STEM, row[PLAN_CALL_ID])}/r{round_}/{index}"


def count_valid(call: Call, outcome: Sequence[str], result: GenerationResult) -> None:
    """Add a call's examples to the asked and valid counts of its class (a pair's: one to each of its two)."""
    valid = [entry in ("accepted", SURPLUS) for entry in outcome]
    if call.pair_key:
        for position, key in enumerate((call.key, call.pair_key)):
            result.asked_per_class[key] += 1
            result.valid_per_class[key] += position < len(valid) and valid[position]
    else:
        result.asked_per_class[call.key] += call.examples
        result.valid_per_class[call.key] += sum(valid)


class ExampleGenerator:
    """Drives rounds of generation calls until every class quota is met or its budget is spent."""

    def __init__(
        self,
        client: Any,
        metric: MetricConfig,
        llm: LLMConfig,
        generation: GenerationConfig,
        diversity: DiversityConfig,
        shape: ExampleShape,
        context_pool: pd.DataFrame,
        holdout: pd.DataFrame,
        label_column: str,
        seed: int,
        pool: Mapping[str, Any] | None = None,
        segments: pd.DataFrame | None = None,
    ):
        # the plan's `generator` column names the client of each call
        self.clients = {generator_name(llm, generation): client, **(pool or {})}
        self.label_column = label_column
        self.metric = metric
        self.generation = generation
        self.shape = shape
        self.seed = seed
        self.diversity = diversity
        self.context_rows = {str(row[ROW_ID]): row for row in context_pool.to_dict("records")}
        self.targets = {label_key(c.label): c for c in metric.class_labels or []}
        self.class_names = {label_key(c.label): c.name for c in metric.class_labels or []}
        self.temperature = llm.temperature
        reference = pd.concat([context_pool, holdout], ignore_index=True)
        self.field_tokens = field_token_lengths(reference, shape.fields, client.count_tokens)
        self.max_output_tokens = llm.max_output_tokens
        self.limits = length_limits(reference, shape)
        # each real row's field lengths in characters, and its class
        self.real_lengths = pd.DataFrame({f: reference[f].astype(str).str.len() for f in shape.fields})
        self.real_classes = reference[label_column].map(label_key) if len(reference) else pd.Series()
        self.holdout_prints = {fingerprint(row, shape.fields) for row in holdout.to_dict("records")}
        instructions = [
            metric.description or "",
            *[c.rubric or "" for c in metric.class_labels or []],
        ]
        self.instruction_ngrams = set().union(*(word_ngrams(text) for text in instructions))
        self.seed_prints = {
            fingerprint(row, shape.fields) for row in context_pool.to_dict("records")
        }
        # what each seed row costs as a shown example, for generation.context_token_budget
        shown = [
            render_example({f: str(row[f]) for f in shape.fields}, shape)
            for row in context_pool.to_dict("records")
        ]
        self.shot_tokens = dict(zip(self.context_rows, client.count_tokens(shown) if shown else []))
        self.taken: set[str] = set()
        self.segments = (
            {}
            if segments is None
            else dict(zip(segments["segment_id"].astype(str), segments["text"].astype(str)))
        )
        # rag: a segment is the context itself; other formats write about it
        self.context_field = (
            shape.fields[RAG_ROLES.index("context")] if shape.roles == RAG_ROLES else None
        )

    def run(
        self,
        plan: pd.DataFrame,
        quotas: Mapping[str, int],
        budgets: Mapping[str, int] | None = None,
        taken: Iterable[str] = (),
        refill: str | None = None,
    ) -> GenerationResult:
        """Return the accepted examples (at most each quota) and everything set aside.

        The first round sends the plan's calls (the plan asks for each quota exactly). While a
        class lacks examples and has budget left, the next round copies the plan rows of its
        calls that fell short (the values of the plan stay; only the call id and seed are new),
        asking for the missing examples divided by the class's share of valid ones
        (`examples_to_ask`); valid examples past a quota are set aside as SURPLUS. `budgets` (calls per class) defaults
        to `call_budget` of each quota; `taken` holds fingerprints of examples accepted
        elsewhere (other shards), which count as duplicates here. With `refill` (a round name),
        the plan rows are copies asking again for what is missing: call `i` gets the id
        `<plan_call_id>/<refill>/<i>` and a seed of its own, so its request is new.
        """
        result = GenerationResult(
            **{
                name: dict.fromkeys(quotas, 0)
                for name in ("calls_per_class", "asked_per_class", "valid_per_class")
            }
        )
        accepted = {key: 0 for key in quotas}
        self.taken.update(taken)
        if budgets is None:
            budgets = {
                key: call_budget(
                    q, self.generation.examples_per_call, self.generation.max_attempts_per_example
                )
                for key, q in quotas.items()
            }
        rows = plan.to_dict("records")
        if refill is None:
            calls = [self.planned_call(row) for row in rows]
        else:
            ids = [f"{row[PLAN_CALL_ID]}/{refill}/{i}" for i, row in enumerate(rows)]
            calls = [
                self._call(row, call_id, stable_seed(self.seed, call_id), int(row["examples"]))
                for call_id, row in zip(ids, rows)
            ]
        while calls:
            for call in calls:
                result.calls_per_class[call.key] += 1
                generator = call.plan_row["generator"]
                result.calls_per_generator[generator] = (
                    result.calls_per_generator.get(generator, 0) + 1
                )
            responses = self._send(calls)
            delivered = {}
            for call, response in zip(calls, responses):
                outcome = self._take(call, response, quotas, accepted, result)
                count_valid(call, outcome, result)
                delivered[call.call_id] = outcome.count("accepted")
            result.rounds += 1
            calls = self._follow_ups(calls, delivered, quotas, accepted, budgets, result)
        return result

    def planned_call(self, plan_row: Mapping[str, Any]) -> Call:
        """Return the first-round call a plan row describes (its request is built, not sent)."""
        return self._call(
            plan_row, plan_row[PLAN_CALL_ID], int(plan_row["seed"]), int(plan_row["examples"])
        )

    def _send(self, calls: Sequence[Call]) -> list[LLMResponse]:
        """Return the responses to `calls`, each sent through its plan row's generator (one generator after another)."""
        by_generator: dict[str, list[int]] = {}
        for index, call in enumerate(calls):
            by_generator.setdefault(call.plan_row["generator"], []).append(index)
        responses: list[Any] = [None] * len(calls)
        for name, indices in by_generator.items():
            answers = self._client(name).generate_sync([calls[i].request for i in indices])
            for index, answer in zip(indices, answers):
                responses[index] = answer
        return responses

    def _client(self, name: str) -> Any:
        if name not in self.clients:
            raise ValueError(
                f"the generation plan names generator {name}, which has no client (diversity.generators)"
            )
        return self.clients[name]

    def _follow_ups(
        self,
        previous: Sequence[Call],
        delivered: Mapping[str, int],
        quotas: Mapping[str, int],
        accepted: Mapping[str, int],
        budgets: Mapping[str, int],
        result: GenerationResult,
    ) -> list[Call]:
        """Return the next round: copies of the plan rows of calls that fell short, for classes still missing examples.

        A near-miss pair that fell short is asked again as it was; each class then asks for what
        it still lacks over its share of valid examples (`examples_to_ask`), within its budget.
        """
        per_call = self.generation.examples_per_call
        calls = []
        missing = {key: quota - accepted[key] for key, quota in quotas.items()}
        for call in previous:
            # a pair that fell short is asked again while both its classes still lack examples
            pair = (call.key, call.pair_key)
            if (
                call.pair_key
                and delivered[call.call_id] < call.examples
                and min(missing[k] for k in pair) > 0
                and budgets[call.key]
                > result.calls_per_class[call.key] + sum(c.key == call.key for c in calls)
            ):
                call_id = f"{call.call_id}/r{result.rounds}"
                calls.append(
                    self._call(
                        call.plan_row, call_id, stable_seed(self.seed, call_id), call.examples
                    )
                )
                for key in pair:
                    missing[key] -= 1
        for key in quotas:
            of_class = [
                (call, single_row(call.plan_row, key))
                for call in previous
                if key in (call.key, call.pair_key)
            ]
            count_so_far = sum(c.key == key for c in calls)
            short = [row for call, row in of_class if delivered[call.call_id] < call.examples] or [
                row for _, row in of_class
            ]
            if missing[key] <= 0 or not short:
                continue
            wanted = examples_to_ask(
                missing[key],
                result.valid_per_class[key],
                result.asked_per_class[key],
                self.generation.max_attempts_per_example,
            )
            count = min(
                math.ceil(wanted / per_call),
                budgets[key] - result.calls_per_class[key] - count_so_far,
            )
            for index in range(max(count, 0)):
                row = short[index % len(short)]
                call_id = follow_up_id(row, result.rounds, index)
                calls.append(
                    self._call(
                        row,
                        call_id,
                        stable_seed(self.seed, call_id),
                        min(per_call, wanted - index * per_call),
                    )
                )
        return calls

    def _call(self, plan_row: Mapping[str, Any], call_id: str, seed: int, count: int) -> Call:
        key = str(plan_row["class"])
        target = self.targets[key]
        structured = PROVIDERS[self._client(plan_row["generator"]).provider].structured_output
        budget = self.generation.context_token_budget or (
            None if structured else COMPACT_CONTEXT_TOKENS
        )
        # a pair call shows its examples in couples, one of each class
        unit = 2 if plan_row.get(PAIR_CLASS) else 1
        context = self._context_examples(
            shots_within(plan_row["context_ids"], self.shot_tokens, budget, unit)
        )
        segment = self.segments.get(plan_row["segment_id"], "")
        ask, guidance = call_steering(plan_row, self.diversity, target, count, segment)
        shape = (
            self.shape.without(self.context_field) if segment and self.context_field else self.shape
        )
        if segment and "{segment}" not in (plan_row["prompt_template"] or ""):
            guidance = "\n\n".join(
                filter(None, [guidance, segment_guidance(segment, bool(self.context_field))])
            )
        second = str(plan_row.get(PAIR_CLASS) or "")
        if second:
            return self._pair_call(plan_row, call_id, seed, context, guidance, structured)
        if structured:
            messages = generation_messages(
                self.metric,
                shape,
                target,
                context,
                count,
                self.generation.special_instructions,
                True,
                ask,
                guidance,
            )
            asked = count
        else:
            messages = compact_messages(
                self.metric,
                shape,
                target,
                context,
                count,
                self.generation.special_instructions,
                ask,
                guidance,
            )
            asked = 1  # the few-shot conversation asks for one example
        field_tokens = {f: self.field_tokens[f] for f in shape.fields}
        max_tokens = answer_token_budget(field_tokens, asked, self.max_output_tokens)
        request = generation_request(
            messages,
            shape,
            asked,
            structured,
            self.temperature,
            max_tokens,
            seed,
            self._real_lengths(key, shape.fields, seed),
        )
        return Call(call_id, target, request, key, plan_row, count, structured, shape, segment)

    def _pair_call(
        self,
        plan_row: Mapping[str, Any],
        call_id: str,
        seed: int,
        context: Sequence[tuple[str, dict[str, str]]],
        guidance: str | None,
        structured: bool,
    ) -> Call:
        """Return a near-miss pair call: two examples, the first of the row's class, the second of its pair class."""
        first, second = (
            self.targets[str(plan_row["class"])],
            self.targets[str(plan_row[PAIR_CLASS])],
        )
        if structured:
            messages = generation_messages(
                self.metric,
                self.shape,
                first,
                context,
                2,
                self.generation.special_instructions,
                True,
                pair_request(first, second),
                guidance,
            )
        else:
            messages = pair_messages(
                self.metric,
                self.shape,
                first,
                second,
                context,
                self.generation.special_instructions,
                guidance,
            )
        max_tokens = answer_token_budget(self.field_tokens, 2, self.max_output_tokens)
        request = generation_request(
            messages, self.shape, 2, structured, self.temperature, max_tokens, seed
        )
        return Call(
            call_id,
            first,
            request,
            str(plan_row["class"]),
            plan_row,
            2,
            structured,
            self.shape,
            pair_key=str(plan_row[PAIR_CLASS]),
        )

    def _real_lengths(self, key: str, fields: Sequence[str], seed: int) -> tuple[int, ...]:
        """Return the lengths of `fields` in one real row of class `key` (of any class when it
        has none), drawn by the call's seed: where they may end, so synthetic lengths follow real ones."""
        rows = self.real_lengths.loc[self.real_classes == key]
        if rows.empty:
            rows = self.real_lengths
        if rows.empty:
            return ()
        drawn = rows.iloc[int(np.random.default_rng(seed).integers(len(rows)))]
        return tuple(int(drawn[f]) for f in fields)

    def _context_examples(self, row_ids: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
        """Return the real examples the plan shows a call, as (class name, fields)."""
        rows = [self.context_rows[row_id] for row_id in row_ids]
        return [
            (
                self.class_names.get(str(row[self.label_column]), str(row[self.label_column])),
                {f: str(row[f]) for f in self.shape.fields},
            )
            for row in rows
        ]

    def _take(
        self,
        call: Call,
        response: LLMResponse,
        quotas: Mapping[str, int],
        accepted: dict[str, int],
        result: GenerationResult,
    ) -> list[str]:
        """Return what became of the call's answer, an entry per example ("accepted", SURPLUS or a reject reason); record them."""
        key = call.key
        outcome: list[str] = []
        if not response.ok:
            self._reject(
                result, call, RejectReason.REQUEST_FAILED, response.error or "", response.text
            )
            outcome.append(RejectReason.REQUEST_FAILED.value)
        else:
            try:
                examples = [
                    postprocessed(example, self.generation.postprocessing)
                    for example in parse_examples(
                        response.text, call.shape, json_only=call.structured
                    )
                ]
                if call.shape != self.shape:
                    examples = [
                        {**example, self.context_field: call.segment} for example in examples
                    ]
            except UnreadableAnswer as error:
                examples = []
                self._reject(result, call, RejectReason.INVALID_OUTPUT, str(error), response.text)
                outcome.append(RejectReason.INVALID_OUTPUT.value)
            else:
                # kept whole or not at all; an unreadable pair's answer was rejected above, once
                if call.pair_key:
                    return self._take_pair(call, response, examples, quotas, accepted, result)
            for position, example in enumerate(examples):
                cut_off = response.finish_reason == "length" and position == len(examples) - 1
                if cut_off and not call.structured and len(call.shape.fields) == 1:
                    example, cut_off = self._ended_at_a_sentence(example, call.shape.fields[0])
                reason, detail = self._check(example, key, cut_off, call.shape.fields)
                if reason is None and accepted[key] >= quotas[key]:
                    self._set_aside_surplus(result, call, response.text, [example], [key], [key])
                    outcome.append(SURPLUS)
                    continue
                if reason is not None:
                    self._reject(result, call, reason, detail, response.text, example)
                    outcome.append(reason.value)
                    continue
                self._accept(call, example, key, accepted, result)
                outcome.append("accepted")
        self._record_debug(call, response, outcome, result)
        return outcome

    def _accept(
        self,
        call: Call,
        example: Mapping[str, Any],
        key: str,
        accepted: dict[str, int],
        result: GenerationResult,
    ) -> None:
        """Record an accepted example of class `key` with its call's plan values."""
        self.taken.add(fingerprint(example, self.shape.fields))
        accepted[key] += 1
        result.accepted.append(
            {
                **{f: example[f].strip() for f in self.shape.fields},
                self.label_column: key,
                "call_id": call.call_id,
                **row_plan_values(call.plan_row, self.diversity, call.call_id),
            }
        )

    def _take_pair(
        self,
        call: Call,
        response: LLMResponse,
        examples: Sequence[Mapping[str, Any]],
        quotas: Mapping[str, int],
        accepted: dict[str, int],
        result: GenerationResult,
    ) -> list[str]:
        """Return what became of a near-miss pair's two examples: a pair is kept whole (one example per class) or not at all."""
        outcome: list[str] = []
        keys = (call.key, call.pair_key)
        if len(examples) < 2:
            self._reject(
                result,
                call,
                RejectReason.INVALID_OUTPUT,
                f"a near-miss pair needs 2 examples, the answer holds {len(examples)}",
                response.text,
                examples[0] if examples else None,
            )
            outcome.append(RejectReason.INVALID_OUTPUT.value)
        else:
            cut_off = response.finish_reason == "length" and len(examples) == 2
            checks = [
                self._check(examples[0], keys[0], False, call.shape.fields),
                self._check(examples[1], keys[1], cut_off, call.shape.fields),
            ]
            if checks[0][0] is None and fingerprint(examples[0], self.shape.fields) == fingerprint(
                examples[1], self.shape.fields
            ):
                checks[1] = (RejectReason.DUPLICATE, "the pair's two examples are the same text")
            full = [key for key in keys if accepted[key] >= quotas[key]]
            if all(reason is None for reason, _ in checks) and full:
                self._set_aside_surplus(result, call, response.text, examples[:2], keys, full)
                outcome += [SURPLUS, SURPLUS]
            elif all(reason is None for reason, _ in checks):
                for example, key in zip(examples, keys):
                    self._accept(call, example, key, accepted, result)
                outcome += ["accepted", "accepted"]
            else:
                for position, (reason, detail) in enumerate(checks):
                    if reason is None:
                        reason, detail = (
                            RejectReason.PAIR_PARTNER_REJECTED,
                            f"its pair's other example was rejected ({checks[1 - position][0]})",
                        )
                    self._reject(
                        result,
                        call,
                        reason,
                        detail,
                        response.text,
                        examples[position],
                        keys[position],
                    )
                    outcome.append(reason.value)
        self._record_debug(call, response, outcome, result)
        return outcome

    def _record_debug(
        self, call: Call, response: LLMResponse, outcome: list[str], result: GenerationResult
    ) -> None:
        """Keep the call's prompt, answer and outcome when generation.debug_save_prompts is on."""
        if self.generation.debug_save_prompts:
            result.debug_records.append(
                {
                    "call_id": call.call_id,
                    "class": call.target.name,
                    "messages": [
                        {"role": m.role, "content": m.content} for m in call.request.messages
                    ],
                    "response": response.text,
                    "error": response.error,
                    "from_cache": response.from_cache,
                    "outcome": outcome,
                }
            )

    def _ended_at_a_sentence(
        self, example: dict[str, Any], field: str
    ) -> tuple[dict[str, Any], bool]:
        """Return (the one-text example cut after its last whole sentence, whether it stays cut off).

        A small local model rarely ends a long text (SmolLM2-135M never ends a ~1,500-character
        one: it runs to the budget); its whole sentences up to there are a complete text, kept
        when they are as long as the shortest real one. A text without a sentence end stays cut off.
        """
        text = whole_sentences(str(example[field]))
        shortest = self.real_lengths[field].min() if len(self.real_lengths) else MIN_FIELD_CHARS
        if text is None or len(text) < shortest:
            return example, True
        return {**example, field: text}, False

    def _check(
        self, example: Mapping[str, Any], key: str, cut_off: bool, written: Sequence[str]
    ) -> tuple[RejectReason | None, str]:
        """Return (reject reason or None, detail) for one parsed example; lengths and echoes are checked on the `written` fields."""
        for f in written:
            value = str(example[f]).strip()
            if not value:
                return RejectReason.EMPTY_FIELD, f"field {f} is empty"
            shortest, longest = self.limits[f]
            if len(value) < shortest:
                return (
                    RejectReason.TOO_SHORT,
                    f"field {f} has {len(value)} characters (< {shortest})",
                )
            if len(value) > longest:
                return RejectReason.TOO_LONG, f"field {f} has {len(value)} characters (> {longest})"
            if word_ngrams(value) & self.instruction_ngrams:
                return (
                    RejectReason.ECHOES_PROMPT,
                    f"field {f} repeats the metric description or a rubric",
                )
        if cut_off:
            return RejectReason.TRUNCATED, "the answer hit the token limit"
        given = example.get("label")
        if given is not None and label_key(given) not in (
            key,
            label_key(self.class_names.get(key, key)),
        ):
            return (
                RejectReason.WRONG_LABEL,
                f"asked for class {self.class_names.get(key, key)}, the answer says {given}",
            )
        print_ = fingerprint(example, self.shape.fields)
        if print_ in self.holdout_prints:
            return RejectReason.HOLDOUT_LEAK, "same text as a holdout (test) row"
        if print_ in self.seed_prints:
            return RejectReason.COPIES_SEED, "same text as a seed example shown in the prompt"
        if print_ in self.taken:
            return RejectReason.DUPLICATE, "same text as an accepted synthetic example"
        return None, ""

    def _set_aside_surplus(
        self,
        result: GenerationResult,
        call: Call,
        raw: str,
        examples: Sequence[Mapping[str, Any]],
        keys: Sequence[str],
        full: Sequence[str],
    ) -> None:
        """Record valid examples (of classes `keys`) that came when the classes `full` had their quotas, with the rejects, as SURPLUS."""
        detail = f"valid, but class {' and '.join(self.class_names[key] for key in full)} already had its quota"
        for example, key in zip(examples, keys):
            self._reject(result, call, SURPLUS, detail, raw, example, key)
        result.surplus += len(examples)

    def _reject(
        self,
        result: GenerationResult,
        call: Call,
        reason: str,
        detail: str,
        raw: str,
        example: Mapping[str, Any] | None = None,
        key: str = "",
    ) -> None:
        record = {
            "call_id": call.call_id,
            "class": self.class_names[key] if key else call.target.name,
            "reason": str(reason),
            "detail": detail,
            "raw_answer": raw[:2000],
            "generator": call.plan_row["generator"],
        }
        record.update({f: str((example or {}).get(f, "")) for f in self.shape.fields})
        result.rejects.append(record)
