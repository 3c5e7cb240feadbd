"""The generation plan: one row per LLM call, with everything that call will use, built before any call.

Shares are exact per class: each value of an attribute (language, persona, prompt variant)
gets the largest-remainder count of the class's calls, then the values are shuffled over the
calls with a seeded generator. Retry rounds do not sample again: a follow-up call copies the
plan row of a call that fell short, with a new call id and seed (generation.ExampleGenerator).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from judgeforge.config.data_generation import (
    ClassLabel,
    DatasetColumns,
    GenerationConfig,
    LLMConfig,
    MetricConfig,
    SamplingConfig,
)
from judgeforge.config.diversity import OPTIONAL_PLACEHOLDER, DiversityConfig, shares_with_remainder
from judgeforge.config.labels import label_key
from judgeforge.schema import ROW_ID

ATTRIBUTE_PREFIX = "attr_"
PLAN_CALL_ID = "plan_call_id"
# The plan's values every synthetic row keeps (besides the attr_<id> columns).
ROW_PLAN_COLUMNS = (
    PLAN_CALL_ID,
    "persona_id",
    "language",
    "prompt_variant",
    "generator",
    "topic",
    "segment_id",
)
# Joins the topics of a path from the tree's first level to a leaf.
TOPIC_SEPARATOR = " > "
# Near-miss pairs: the plan column naming a pair call's second class (empty on other calls),
# and the row column holding the call id both rows of a pair share.
PAIR_CLASS = "pair_class"
PAIR_ID = "pair_id"
# Share of the calls left to the attributes' own rates once the combinations are placed.
OTHER = "\x00other"


def stable_seed(*parts: Any) -> int:
    """Return a 31-bit seed from parts, identical across processes (unlike `hash`)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def largest_remainder(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Return integer counts proportional to `shares` that add up to `total` exactly."""
    weight = sum(shares.values())
    if weight <= 0:
        shares, weight = dict.fromkeys(shares, 1.0), float(len(shares))
    exact = {key: total * share / weight for key, share in shares.items()}
    counts = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] - counts[key]), key))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def spread(shares: Mapping[str, float], calls: int, rng: np.random.Generator) -> list[str]:
    """Return `calls` keys with exact largest-remainder counts, in a seeded random order."""
    counts = largest_remainder(shares, calls)
    keys = [key for key, count in counts.items() for _ in range(count)]
    return [keys[i] for i in rng.permutation(len(keys))]


def topic_paths(tree: Mapping[str, Any]) -> list[str]:
    """Return the path of every leaf of a saved topic tree ("a > b > c", the root left out)."""
    paths: list[str] = []

    def walk(node: Mapping[str, Any], path: list[str]) -> None:
        if not node.get("subtopics"):
            paths.append(TOPIC_SEPARATOR.join(path))
        for child in node.get("subtopics", []):
            walk(child, [*path, child["topic"]])

    if tree.get("root", {}).get("subtopics"):
        walk(tree["root"], [])
    return paths


def spread_evenly(keys: Sequence[str], calls: int, rng: np.random.Generator) -> list[str]:
    """Return `calls` keys in equal largest-remainder shares, the remainder going to seeded keys.

    With more keys than calls (many topics or segments), `spread`'s tie-break by name would
    give every class the same first keys; here each class draws its own.
    """
    if not keys:
        return [""] * calls
    base, extra = divmod(calls, len(keys))
    chosen = [keys[i] for i in sorted(rng.choice(len(keys), size=extra, replace=False))]
    placed = [key for key in keys for _ in range(base)] + chosen
    return [placed[i] for i in rng.permutation(len(placed))]


def expand_templates(diversity: DiversityConfig, seed: int) -> list[str]:
    """Return the prompt variants: the template with every `{{name}}` replaced, all combinations or N drawn."""
    template = diversity.prompt_template
    if template is None:
        return [""]
    expansion = diversity.prompt_expansion
    used = [
        name for name in expansion.placeholders if name in OPTIONAL_PLACEHOLDER.findall(template)
    ]
    combinations = list(itertools.product(*(expansion.placeholders[name] for name in used)))
    if not expansion.combinatorial and expansion.num_random_samples < len(combinations):
        rng = np.random.default_rng(stable_seed(seed, "prompt_expansion"))
        picked = sorted(rng.choice(len(combinations), expansion.num_random_samples, replace=False))
        combinations = [combinations[i] for i in picked]

    def fill(values: Sequence[str]) -> str:
        chosen = dict(zip(used, values))
        # a value's own braces must not read as placeholders afterwards
        return OPTIONAL_PLACEHOLDER.sub(
            lambda m: chosen[m.group(1)].replace("{", "{{").replace("}", "}}"), template
        )

    return [fill(values) for values in combinations]


def attribute_columns(
    diversity: DiversityConfig, calls: int, rng: np.random.Generator
) -> dict[str, list[str]]:
    """Return attr_<id> → value id per call: combinations at their joint rates, each attribute's rates overall."""
    combos = diversity.combination_sampling
    shares = {str(i): c.sample_rate for i, c in enumerate(combos)}
    shares[OTHER] = max(0.0, 1 - sum(shares.values()))
    placed = spread(shares, calls, rng) if combos else [OTHER] * calls
    columns = {}
    for attribute in diversity.sampled_attributes:
        fixed: list[str | None] = [
            None if slot == OTHER else combos[int(slot)].combination.get(attribute.id)
            for slot in placed
        ]
        target = largest_remainder(attribute.shares(), calls)
        for value in filter(None, fixed):
            target[value] -= 1
        free = [i for i, value in enumerate(fixed) if value is None]
        left = {value: max(0, count) for value, count in target.items()}
        values = spread(left if sum(left.values()) else attribute.shares(), len(free), rng)
        for position, value in zip(free, values):
            fixed[position] = value
        columns[f"{ATTRIBUTE_PREFIX}{attribute.id}"] = fixed
    return columns


def context_ids(
    pool: pd.DataFrame, label: str, key: str, size: int, rng: np.random.Generator
) -> list[str]:
    """Return the row ids of real examples shown to one call: the target class's rows (any when it has none)."""
    same_class = pool[pool[label].astype(str) == key]
    candidates = same_class if len(same_class) else pool
    size = min(size, len(candidates))
    if size == 0:
        return []
    return (
        candidates[ROW_ID]
        .astype(str)
        .iloc[rng.choice(len(candidates), size=size, replace=False)]
        .tolist()
    )


def near_miss_pairs(
    quotas: Mapping[str, int], class_labels: Sequence[ClassLabel], share: float
) -> dict[tuple[str, str], int]:
    """Return the pair calls of each two neighbouring classes (class_labels order, classes with a quota).

    Each class offers `share` of its quota, split evenly between its neighbours; two
    neighbours make as many pairs as the smaller of their offers to each other.
    """
    keys = [label_key(c.label) for c in class_labels if quotas.get(label_key(c.label), 0) > 0]
    sides = {key: (index > 0) + (index < len(keys) - 1) for index, key in enumerate(keys)}
    offers = {
        key: math.floor(share * quotas[key] / sides[key]) if sides[key] else 0 for key in keys
    }
    couples = {(a, b): min(offers[a], offers[b]) for a, b in itertools.pairwise(keys)}
    return {couple: count for couple, count in couples.items() if count > 0}


def planned_examples(plan: pd.DataFrame) -> dict[str, int]:
    """Return the examples the plan's calls ask for, per class (a pair call gives one to each of its classes)."""
    counts: dict[str, int] = {}
    for row in plan.to_dict("records"):
        second = row.get(PAIR_CLASS) or ""
        shares = {row["class"]: 1, second: 1} if second else {row["class"]: row["examples"]}
        for key, examples in shares.items():
            counts[str(key)] = counts.get(str(key), 0) + int(examples)
    return counts


def generator_name(llm: LLMConfig, generation: GenerationConfig) -> str:
    """Return provider/model of the generator (the generation override, else the primary llm)."""
    return f"{generation.llm_provider or llm.provider}/{generation.llm_model or llm.model}"


def build_generation_plan(
    quotas: Mapping[str, int],
    enhancement: pd.DataFrame,
    metric: MetricConfig,
    llm: LLMConfig,
    generation: GenerationConfig,
    diversity: DiversityConfig,
    columns: DatasetColumns,
    sampling: SamplingConfig,
    topic_tree: Mapping[str, Any] | None = None,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the generation plan: one row per first-round call, exact shares per class, seeded.

    Topics (the leaves of `topic_tree`) and document `segments` are spread evenly over each
    class's calls.
    """
    # the catalog keeps the last grown tree; only a run that asks for topics uses it
    topics = topic_paths(topic_tree or {}) if diversity.topic_tree or diversity.topics else []
    segment_ids = [] if segments is None else segments["segment_id"].astype(str).tolist()
    per_call = generation.examples_per_call
    variants = expand_templates(diversity, sampling.seed)
    personas = [p.id for p in diversity.all_personas]
    languages = {code: lang.sample_rate for code, lang in diversity.languages.items()}
    generators = {g.name: g.weight for g in diversity.generators} or {
        generator_name(llm, generation): 1.0
    }

    def sampled(calls: int, rng: np.random.Generator) -> dict[str, list[Any]]:
        """Return the persona, language, prompt variant, attribute values and generator of `calls` calls."""
        return {
            "persona_id": spread(dict.fromkeys(personas, 1.0), calls, rng)
            if personas
            else [""] * calls,
            "language": spread(shares_with_remainder(languages), calls, rng)
            if languages
            else [""] * calls,
            "prompt_variant": [
                int(v)
                for v in spread(dict.fromkeys(map(str, range(len(variants))), 1.0), calls, rng)
            ],
            **attribute_columns(diversity, calls, rng),
            "generator": spread(generators, calls, rng),
            "topic": spread_evenly(topics, calls, rng),
            "segment_id": spread_evenly(segment_ids, calls, rng),
        }

    pairs = near_miss_pairs(quotas, metric.class_labels or [], diversity.near_miss_share)
    paired = {key: sum(n for couple, n in pairs.items() if key in couple) for key in quotas}
    pairing = {PAIR_CLASS: ""} if pairs else {}
    rows: list[dict[str, Any]] = []
    for target in metric.class_labels or []:
        key = label_key(target.label)
        quota = quotas.get(key, 0) - paired.get(key, 0)
        calls = math.ceil(quota / per_call)
        if calls == 0:
            continue
        rng = np.random.default_rng(stable_seed(sampling.seed, "plan", key))
        per_class = sampled(calls, rng)
        for index in range(calls):
            call_id = f"{key}/c{index}"
            seed = stable_seed(sampling.seed, call_id)
            variant = per_class["prompt_variant"][index]
            rows.append(
                {
                    PLAN_CALL_ID: call_id,
                    "class": key,
                    "examples": min(per_call, quota - index * per_call),
                    "seed": seed,
                    "context_ids": context_ids(
                        enhancement,
                        columns.label_column,
                        key,
                        generation.context_examples,
                        np.random.default_rng(seed),
                    ),
                    "prompt_template": variants[variant],
                    **{name: values[index] for name, values in per_class.items()},
                    **pairing,
                }
            )
    for (first, second), calls in pairs.items():
        rng = np.random.default_rng(stable_seed(sampling.seed, "plan", first, second))
        per_pair = sampled(calls, rng)
        for index in range(calls):
            call_id = f"{first}~{second}/p{index}"
            seed = stable_seed(sampling.seed, call_id)
            shown = [
                context_ids(
                    enhancement,
                    columns.label_column,
                    key,
                    generation.context_examples,
                    np.random.default_rng(stable_seed(seed, key)),
                )
                for key in (first, second)
            ]
            rows.append(
                {
                    PLAN_CALL_ID: call_id,
                    "class": first,
                    "examples": 2,
                    "seed": seed,
                    # alternating: the examples of a real pair the few-shot prompt shows
                    "context_ids": [row_id for couple in zip(*shown) for row_id in couple],
                    "prompt_template": "",
                    **{name: values[index] for name, values in per_pair.items()},
                    PAIR_CLASS: second,
                }
            )
    return pd.DataFrame(rows, columns=plan_columns(diversity))


def plan_columns(diversity: DiversityConfig) -> list[str]:
    """Return the plan's columns, in order."""
    fixed = [PLAN_CALL_ID, "class", "examples", "seed", "context_ids", "persona_id", "language"]
    attributes = [f"{ATTRIBUTE_PREFIX}{a.id}" for a in diversity.sampled_attributes]
    pairing = [PAIR_CLASS] if diversity.near_miss_share > 0 else []
    return [
        *fixed,
        *attributes,
        "prompt_variant",
        "prompt_template",
        "generator",
        "topic",
        "segment_id",
        *pairing,
    ]


def row_plan_columns(diversity: DiversityConfig) -> list[str]:
    """Return the plan columns every synthetic row keeps (and `pair_id` when near-miss pairs are planned)."""
    pairing = [PAIR_ID] if diversity.near_miss_share > 0 else []
    attributes = [f"{ATTRIBUTE_PREFIX}{a.id}" for a in diversity.sampled_attributes]
    return [*ROW_PLAN_COLUMNS, *attributes, *pairing]


def row_plan_values(
    plan_row: Mapping[str, Any], diversity: DiversityConfig, call_id: str
) -> dict[str, Any]:
    """Return the plan values a synthetic row keeps from the plan row of its call (a pair's rows: the call id as pair_id)."""
    values = {name: plan_row.get(name) for name in row_plan_columns(diversity)}
    if PAIR_ID in values:
        values[PAIR_ID] = call_id if plan_row.get(PAIR_CLASS) else ""
    return values


@dataclass(frozen=True)
class Choice:
    """An attribute value as templates see it: `{tone}` is its name, `{tone.description}` its description."""

    id: str
    name: str
    description: str

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


class StrictFormatter(string.Formatter):
    """str.format that names the placeholder it cannot fill (validation catches these first)."""

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if key not in kwargs:
            raise KeyError(f"the prompt template names {{{key}}}, which judgeforge does not fill")
        return kwargs[key]


def template_values(
    plan_row: Mapping[str, Any],
    diversity: DiversityConfig,
    target: ClassLabel,
    count: int,
    segment: str = "",
) -> dict[str, Any]:
    """Return what a call's template placeholders stand for."""
    personas = {p.id: p.description for p in diversity.all_personas}
    language = plan_row["language"]
    values: dict[str, Any] = {
        "num_examples": count,
        "class_name": target.name,
        "class_rubric": target.rubric or "",
        "language": language,
        "language_name": diversity.languages[language].name if language else "",
        "persona_id": plan_row["persona_id"],
        "persona": personas.get(plan_row["persona_id"], ""),
        "topic": plan_row["topic"],
        "segment": segment,
    }
    for attribute in diversity.sampled_attributes:
        value = next(
            v
            for v in attribute.possible_values
            if v.id == plan_row[f"{ATTRIBUTE_PREFIX}{attribute.id}"]
        )
        values[attribute.id] = Choice(value.id, value.label, value.description)
    return values


def call_steering(
    plan_row: Mapping[str, Any],
    diversity: DiversityConfig,
    target: ClassLabel,
    count: int,
    segment: str = "",
) -> tuple[str | None, str | None]:
    """Return (the request replacing the default one, or None; guidance added to the prompt, or None).

    `segment` is the text of the plan row's document segment; the default guidance leaves it
    to the caller, which knows whether it is the examples' context or their subject.
    """
    values = template_values(plan_row, diversity, target, count, segment)
    if plan_row["prompt_template"]:
        return StrictFormatter().format(plan_row["prompt_template"], **values), None
    lines = []
    for attribute in diversity.sampled_attributes:
        choice = values[attribute.id]
        detail = f" ({choice.description})" if choice.description else ""
        lines.append(f"- {attribute.name or attribute.id}: {choice.name}{detail}")
    if values["topic"]:
        lines.append(f"- Topic: {values['topic']}")
    parts = ["Give the new examples these properties:\n" + "\n".join(lines)] if lines else []
    if values["persona"]:
        parts.append(f"Write them as this person would: {values['persona']}")
    if values["language_name"]:
        parts.append(f"Write them in {values['language_name']}.")
    return None, "\n".join(parts) or None
